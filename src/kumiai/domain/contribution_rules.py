"""When a model's contributions may be computed, and what retraining its coalitions costs.

Shapley needs v(S) for coalitions S, each a model trained by S alone. That retraining
must not reveal what the members' agreements forbid, and its privacy cost must be known
before it runs: this module decides both, from the model's settings and each site's
terms, without I/O. See docs/contribution.md.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from kumiai.domain.contribution import MAX_EXACT
from kumiai.domain.contribution_charge import ReleasedRun, charge_for
from kumiai.domain.training import TrainingSettings

# Retraining reproduces these exactly (local SGD, then a weighted average); the adaptive
# server optimisers (FedAdam, FedYogi) are not reproduced yet.
RETRAINABLE = ("fedavg", "fedprox")


@dataclass(frozen=True)
class SiteTerms:
    """What one participating site's agreement says about contribution analysis."""

    dataset: str
    # The agreement's contribution_analysis term: the steward accepts what retraining
    # reveals, the model of the coalition of its site alone. Nothing else stands for it.
    consents: bool


@dataclass(frozen=True)
class ContributionPlan:
    """What a contribution analysis would do, shown before it runs."""

    model: str
    members: tuple[str, ...]
    method: str  # "exact" | "sampled"
    coalitions: int  # at most this many coalition models trained, ∅ and all included
    rounds: int  # federated rounds per coalition model
    # Extra ε per dataset: for a DP-SGD model, the PLD composition of the released job and
    # its `retrainings` more runs at that site, minus the job's ε (what its node will
    # charge, kumiai.domain.contribution_charge); 0 for a model trained without DP.
    extra_epsilon: dict[str, float]
    refusal: str | None  # None: allowed
    retrainings: int = 0  # more runs of each site's data: the coalitions holding it, but one

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "members": list(self.members),
            "method": self.method,
            "coalitions": self.coalitions,
            "rounds": self.rounds,
            "extra_epsilon": self.extra_epsilon,
            "refusal": self.refusal,
            "retrainings": self.retrainings,
        }


def coalition_budget(members: int) -> int:
    """Sampled estimates train at most 10% of the 2^n coalitions (at least 4 per member)."""
    return max(2**members // 10, 4 * members)


def plan_contribution(
    model: str,
    settings: TrainingSettings,
    terms: Mapping[str, SiteTerms],
    runs: Mapping[str, ReleasedRun] | None = None,
) -> ContributionPlan:
    """The plan, with the first reason to refuse it (or None).

    `runs`: for a model trained with DP-SGD, how the released job trained each site, as
    its node logged it; a site without one cannot be charged, so the plan is refused.
    """
    members = tuple(sorted(terms))
    n = len(members)
    exact = n <= MAX_EXACT
    coalitions = 2**n if exact else coalition_budget(n)
    # A site is in 2^(n-1) coalitions; the grand coalition is the released model, already paid.
    holding = 2 ** (n - 1) if exact else coalitions
    retrainings = max(holding - 1, 0)
    runs = runs or {}
    extra = {d: _extra(settings, runs.get(d), retrainings) for d in members}
    refusal = _refusal(settings, terms, runs)
    return ContributionPlan(
        model=model,
        members=members,
        method="exact" if exact else "sampled",
        coalitions=coalitions,
        rounds=settings.rounds,
        extra_epsilon=extra,
        refusal=refusal,
        retrainings=retrainings if settings.private else 0,
    )


def _extra(settings: TrainingSettings, run: ReleasedRun | None, retrainings: int) -> float:
    """The charge when the site's run is known; else basic composition, shown with a refusal."""
    if not settings.private:
        return 0.0
    if run is not None:
        return charge_for(run, retrainings).extra
    return retrainings * settings.epsilon if settings.epsilon is not None else float("inf")


def _refusal(
    settings: TrainingSettings, terms: Mapping[str, SiteTerms], runs: Mapping[str, ReleasedRun]
) -> str | None:
    if not terms:
        return "the model has no participating datasets to share its value among"
    if settings.strategy not in RETRAINABLE:
        return (
            f"the model was trained with {settings.strategy}; coalition retraining reproduces "
            f"only {', '.join(RETRAINABLE)}"
        )
    if settings.private and settings.dp_level == "client":
        return (
            "the model was trained with client-level DP: the coordinator added one noise per "
            "round over every member's update, so each coalition would need its own noised "
            "run and member-level accounting; not yet supported (record-level DP-SGD is)"
        )
    lacking = sorted(d for d, t in terms.items() if not t.consents)
    if lacking:
        return (
            f"the agreements of {', '.join(lacking)} do not consent: the coalition of one "
            "site alone reveals that site's own update, which secure aggregation hides. "
            "Ask again with kumiai request --allow-contribution-analysis, and have the "
            "stewards sign"
        )
    unknown = sorted(d for d in terms if settings.private and d not in runs)
    if unknown:
        return (
            f"the nodes of {', '.join(unknown)} hold no record of the released job's DP-SGD "
            "run on their data, so they cannot charge its retraining"
        )
    return None
