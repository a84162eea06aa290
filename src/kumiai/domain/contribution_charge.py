"""What a contribution analysis of a DP-trained model costs one site, and when its node pays.

Retraining coalitions reuses each site's rows. A site in h coalitions is retrained h − 1
more times (the grand coalition is the released model), each run with the released job's
σ, sampling rate and steps at that site. The site's rows have then been through one
Poisson-subsampled Gaussian mechanism composed over all those steps, and its tight ε is the
PLD composition of every step together, not the sum of each run's ε. The node's spend log
adds ε across jobs, so the analysis is charged the difference, ε_total − ε_job: the log then
sums to exactly the joint composition. See docs/contribution.md and docs/privacy.md.

The node reads every number here from its own spend log and agreements; the coordinator's
only input is how many retrainings it asks for. Nothing here does I/O (dp-accounting is
loaded on first use, by kumiai.domain.privacy).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kumiai.domain.agreement import SignedAgreement, standing_refusal
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import epsilon_for

CONTRIBUTION = "contribution"  # the kind of the job row that mirrors a charge


@dataclass(frozen=True)
class ReleasedRun:
    """How the released job trained one site, as that site's node reserved and logged it."""

    noise_multiplier: float
    sample_rate: float
    steps_per_round: int
    rounds: int  # rounds the job planned: what each coalition retraining runs
    trained: int  # rounds the site actually trained in the released job
    clipping_norm: float
    delta: float
    accountant: str

    @classmethod
    def from_reservation(cls, details: Mapping[str, Any], trained: int) -> "ReleasedRun":
        """From a reserve record's details; InvalidInput unless it was record-level DP-SGD."""
        needed = ("noise_multiplier", "sample_rate", "steps_per_round", "rounds", "delta")
        if any(k not in details for k in needed) or details.get("level", "record") != "record":
            raise InvalidInput(
                "it was not trained with record-level DP-SGD on this dataset (client-level "
                "DP noises at the coordinator, so no node holds the noise a retraining needs)"
            )
        return cls(
            noise_multiplier=float(details["noise_multiplier"]),
            sample_rate=float(details["sample_rate"]),
            steps_per_round=int(details["steps_per_round"]),
            rounds=int(details["rounds"]),
            trained=int(trained),
            clipping_norm=float(details["clipping_norm"]),
            delta=float(details["delta"]),
            accountant=str(details["accountant"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps_per_round": self.steps_per_round,
            "rounds": self.rounds,
            "trained": self.trained,
            "clipping_norm": self.clipping_norm,
            "delta": self.delta,
            "accountant": self.accountant,
        }


@dataclass(frozen=True)
class Charge:
    """The extra ε of `retrainings` more runs at one site, and the figures it comes from."""

    retrainings: int
    steps: int  # DP-SGD steps the retrainings add
    epsilon_job: float  # the released job's training ε at this site
    epsilon_total: float  # job and retrainings, composed together (PLD by default)

    @property
    def extra(self) -> float:
        # Composition never costs less than its part; max() only guards rounding on the grid.
        return max(self.epsilon_total - self.epsilon_job, 0.0)


def charge_for(run: ReleasedRun, retrainings: int) -> Charge:
    """ε_total − ε_job for `retrainings` more runs of the released job's steps at this site.

    Example: σ=1.1, q=0.05, 20 steps a round, 3 rounds, δ=1e-5; a site in 4 of 8 coalitions
    is retrained 3 times: ε_total is the PLD of 240 steps (4.33), ε_job of 60 (2.34), and
    the charge is their difference, 1.99, where basic composition would charge 3 × 2.34.
    """
    if isinstance(retrainings, bool) or not isinstance(retrainings, int) or retrainings < 0:
        raise InvalidInput(f"retrainings must be a whole number of at least 0, got {retrainings!r}")
    job_steps = run.trained * run.steps_per_round
    steps = retrainings * run.rounds * run.steps_per_round
    sigma, q, delta, accountant = run.noise_multiplier, run.sample_rate, run.delta, run.accountant
    return Charge(
        retrainings=retrainings,
        steps=steps,
        epsilon_job=epsilon_for(sigma, q, job_steps, delta, accountant),
        epsilon_total=epsilon_for(sigma, q, job_steps + steps, delta, accountant),
    )


def current_agreement(
    agreements: Iterable[SignedAgreement], *, project: str, dataset: str
) -> SignedAgreement | None:
    """The newest agreement the node holds for this project and dataset (None: none)."""
    mine = [a for a in agreements if a.terms.project == project and a.terms.dataset == dataset]
    return max(mine, key=lambda a: a.terms.signed_at) if mine else None


def charge_refusal(
    agreement: SignedAgreement | None,
    *,
    project: str,
    dataset: str,
    steward: str,
    steward_keys: tuple[str, ...],
    revoked: frozenset[str],
    now: datetime,
) -> str | None:
    """Why the node must not pay for a contribution analysis under this agreement, or None.

    `agreement` is the node's own newest copy for the project and dataset; the revocations,
    keys and clock are the node's own too.
    """
    standing = standing_refusal(
        agreement, project=project, dataset=dataset, steward=steward,
        steward_keys=steward_keys, revoked=revoked, now=now,
        missing="; the steward must sign a request made with --allow-contribution-analysis",
    )  # fmt: skip
    if standing is not None or agreement is None:
        return standing
    terms = agreement.terms
    if not terms.contribution_analysis:
        return (
            f"agreement {terms.agreement_id} does not carry the contribution_analysis term; "
            "ask again with kumiai request --allow-contribution-analysis, and have the "
            "steward sign"
        )
    return None
