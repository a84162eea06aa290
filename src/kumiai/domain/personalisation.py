"""Personalisation: what a node may fine-tune on its own rows, and whether a site gains.

After a federated model is released, each site may fine-tune it on its own training rows
(a few epochs of the family's local SGD) so that it fits the site's own patients or
machines. The personalised model stays at the node; only its scores on the site's own test
rows leave, as the same aggregates the node already releases for any evaluation.

The rule, checked by the coordinator before it asks and again by the node on its own
agreement:

- 1 to `MAX_EPOCHS` epochs (default `DEFAULT_EPOCHS`): more would forget the federation;
- only a model trained without differential privacy, under an agreement that requires none
  (no ε cap): DP-SGD fine-tuning is not counted by the node's spend log yet, and fine-tuning
  a private model without DP would spend privacy no budget records, so it is refused;
- only under the node's own signed, unrevoked, unexpired agreement for the project that
  permits `train` jobs and lets evaluation aggregates leave as they are (`allowed`); a
  `dp` or `forbidden` agreement keeps them at home, so there is nothing to report.

Example: a model released from 50 rounds of FedAvg without DP, fine-tuned for 5 epochs at
a hospital whose agreement allows `train,evaluate` and no ε cap: allowed. The same model at
a hospital whose agreement caps ε at 3: refused ("requires differential privacy"). A model
trained at ε=1 with `personalisation_epochs=5` (σ calibrated for 30 rounds and 5 epochs),
fine-tuned for 5 epochs at a hospital whose cap is 1: allowed, and its log then sums to the
joint composition of both, at most 1.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kumiai.domain.agreement import SignedAgreement, standing_refusal
from kumiai.domain.contribution_charge import CONTRIBUTION, ReleasedRun
from kumiai.domain.disclosure import ALLOWED
from kumiai.domain.job import JobKind
from kumiai.domain.privacy import epsilon_for
from kumiai.domain.training import TrainingSettings

DEFAULT_EPOCHS = 5
MAX_EPOCHS = 20
PERSONALISATION = "personalisation"  # the kind of a spend-log charge and of its job row


MAX_PROXIMAL_MU = 1e3


def model_refusal(
    model: str, settings: TrainingSettings, epochs: int, proximal_mu: float | None = None
) -> str | None:
    """Why the released model `model`, trained with `settings`, may not be fine-tuned.

    `proximal_mu`: fit to the site's own optimum with a pull of μ back to the released model
    (L-BFGS, no epochs), only for a model trained without DP: a fit to the optimum takes as
    many steps as it needs, which no DP-SGD charge can plan.
    """
    if proximal_mu is not None:
        if not (isinstance(proximal_mu, int | float) and not isinstance(proximal_mu, bool)) or not (
            0 <= proximal_mu <= MAX_PROXIMAL_MU
        ):
            return (
                f"the proximal pull (--proximal-mu) must be a number from 0 to "
                f"{MAX_PROXIMAL_MU:g}, not {proximal_mu!r} (try 0.01)"
            )
        if settings.private:
            return (
                f"model {model} was trained under differential privacy; a proximal fit runs to "
                "the optimum without noise, so it is refused (leave out --proximal-mu: the "
                "nodes fine-tune it with DP-SGD epochs, charged in their spend logs)"
            )
    if not 1 <= epochs <= MAX_EPOCHS:
        return (
            f"personalisation runs 1 to {MAX_EPOCHS} local epochs, not {epochs}; more would "
            "forget what the federation learnt (try the default, "
            f"{DEFAULT_EPOCHS})"
        )
    if settings.private and settings.dp_level != "record":
        return (
            f"model {model} was trained under client-level differential privacy, whose noise "
            "the coordinator added; no node holds a σ to fine-tune it under, so personalising "
            "it is refused (personalise a model trained with record-level DP-SGD or without DP)"
        )
    return None


def agreement_refusal(
    agreement: SignedAgreement | None,
    *,
    project: str,
    dataset: str,
    steward: str,
    steward_keys: tuple[str, ...],
    revoked: frozenset[str],
    now: datetime,
    private: bool = False,
) -> str | None:
    """Why the node must not fine-tune on `dataset` under its newest agreement, or None.

    `private`: the model was trained with DP-SGD and is fine-tuned with it; the ε cap is
    then checked by the spend log's reservation, not refused here.
    """
    standing = standing_refusal(
        agreement, project=project, dataset=dataset, steward=steward,
        steward_keys=steward_keys, revoked=revoked, now=now,
    )  # fmt: skip
    if standing is not None or agreement is None:
        return standing
    terms = agreement.terms
    if JobKind.TRAIN not in terms.job_kinds:
        return (
            f"agreement {terms.agreement_id} does not permit training on {dataset!r}, and "
            "fine-tuning trains; ask for a request with --kinds train,evaluate"
        )
    if terms.epsilon_cap is not None and not private:
        return (
            f"agreement {terms.agreement_id} requires differential privacy (ε cap "
            f"{terms.epsilon_cap:g}), and personalisation fine-tunes without it"
        )
    if terms.aggregate_statistics != ALLOWED:
        return (
            f"agreement {terms.agreement_id} lets evaluation scores leave only as "
            f"{terms.aggregate_statistics!r}, so a personalised model's scores stay at home"
        )
    return None


def sites_gaining(
    local: Mapping[str, float | None], consortium: Sequence[Mapping[str, float | None]]
) -> int:
    """How many sites score at least as well with the best consortium model as alone.

    `local[site]` is the site's own model on its own test rows; each mapping in `consortium`
    is one consortium model (federated or personalised) on each site's own test rows. A
    missing or undefined (None) score never counts as a gain. Example: local {a: 0.8,
    b: 0.9}, federated {a: 0.85, b: 0.88}, personalised {a: 0.7, b: 0.9}: a gains (0.85 ≥
    0.8), b gains (0.9 ≥ 0.9): 2.
    """
    gaining = 0
    for site, alone in local.items():
        scores = [s for model in consortium if (s := model.get(site)) is not None]
        gaining += alone is not None and bool(scores) and max(scores) >= alone
    return gaining


@dataclass(frozen=True)
class PersonalisationCharge:
    """The extra ε of `epochs` epochs of DP-SGD fine-tuning at one site, and its figures."""

    epochs: int
    steps: int  # the DP-SGD steps of this fine-tuning
    earlier_steps: int  # steps already charged against the same released job here
    epsilon_before: float  # the job and every earlier charge against it, composed
    epsilon_after: float  # the same with this fine-tuning's steps

    @property
    def extra(self) -> float:
        return max(self.epsilon_after - self.epsilon_before, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "steps": self.steps,
            "earlier_steps": self.earlier_steps,
            "epsilon_before": self.epsilon_before,
            "epsilon_after": self.epsilon_after,
        }


def steps_per_epoch(run: ReleasedRun) -> int:
    """One epoch of DP-SGD at sampling rate q: 1/q expected lots (n rows, lots of q·n)."""
    return max(1, round(1.0 / run.sample_rate))


def earlier_steps(charges: Iterable[Mapping[str, Any]], released_job: str) -> int:
    """DP-SGD steps already charged against `released_job` at this node (contribution
    retrainings and earlier fine-tunings), from the details of its spend-log charges."""
    return sum(
        int(d.get("steps", 0))
        for d in charges
        if d.get("released_job") == released_job
        and d.get("kind") in (PERSONALISATION, CONTRIBUTION)
    )


def charge_for(run: ReleasedRun, epochs: int, earlier: int = 0) -> PersonalisationCharge:
    """ε(job + earlier + new steps) − ε(job + earlier steps), at the job's σ and q.

    The node's log adds ε across its lines, so charging the increment makes the job's line
    and its charges sum to exactly the joint composition of every step these rows went
    through. Example: σ=1.1, q=0.05 (20 steps an epoch), 3 rounds of 20 steps trained,
    δ=1e-5, 5 epochs of fine-tuning: ε of 60 steps is 2.34, of 160 steps 3.57 (PLD), so
    the node charges 1.23, where a separate run of 100 steps would cost 2.89 alone.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number of at least 1, got {epochs!r}")
    steps = epochs * steps_per_epoch(run)
    before = run.trained * run.steps_per_round + earlier
    sigma, q, delta, accountant = run.noise_multiplier, run.sample_rate, run.delta, run.accountant
    return PersonalisationCharge(
        epochs=epochs,
        steps=steps,
        earlier_steps=earlier,
        epsilon_before=epsilon_for(sigma, q, before, delta, accountant),
        epsilon_after=epsilon_for(sigma, q, before + steps, delta, accountant),
    )
