"""When a model's contributions may be computed, and what retraining its coalitions costs.

Shapley needs v(S) for coalitions S, each a model trained by S alone. That retraining
must not reveal what the members' agreements forbid, and its privacy cost must be known
before it runs: this module decides both, from the model's settings and each site's
terms, without I/O. See docs/contribution.md.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from kumiai.domain.contribution import MAX_EXACT
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
    # Extra ε per dataset: (coalitions holding it, minus the released one) x the job's ε,
    # by basic composition; 0 for a model trained without differential privacy.
    extra_epsilon: dict[str, float]
    refusal: str | None  # None: allowed

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "members": list(self.members),
            "method": self.method,
            "coalitions": self.coalitions,
            "rounds": self.rounds,
            "extra_epsilon": self.extra_epsilon,
            "refusal": self.refusal,
        }


def coalition_budget(members: int) -> int:
    """Sampled estimates train at most 10% of the 2^n coalitions (at least 4 per member)."""
    return max(2**members // 10, 4 * members)


def plan_contribution(
    model: str, settings: TrainingSettings, terms: Mapping[str, SiteTerms]
) -> ContributionPlan:
    """The plan, with the first reason to refuse it (or None)."""
    members = tuple(sorted(terms))
    n = len(members)
    exact = n <= MAX_EXACT
    coalitions = 2**n if exact else coalition_budget(n)
    # A site is in 2^(n-1) coalitions; the grand coalition is the released model, already paid.
    holding = 2 ** (n - 1) if exact else coalitions
    job_epsilon = settings.epsilon if settings.private else 0.0
    extra = {
        d: (holding - 1) * job_epsilon if job_epsilon is not None else float("inf") for d in members
    }
    refusal = _refusal(settings, terms, extra)
    return ContributionPlan(
        model=model,
        members=members,
        method="exact" if exact else "sampled",
        coalitions=coalitions,
        rounds=settings.rounds,
        extra_epsilon=extra,
        refusal=refusal,
    )


def _refusal(
    settings: TrainingSettings, terms: Mapping[str, SiteTerms], extra: Mapping[str, float]
) -> str | None:
    if not terms:
        return "the model has no participating datasets to share its value among"
    if settings.strategy not in RETRAINABLE:
        return (
            f"the model was trained with {settings.strategy}; coalition retraining reproduces "
            f"only {', '.join(RETRAINABLE)}"
        )
    if settings.private:
        spend = ", ".join(f"{d} {e:.3g}" for d, e in sorted(extra.items()))
        return (
            "the model was trained with differential privacy: retraining its coalitions "
            f"would spend extra ε at every node ({spend}), which must be reserved at the "
            "nodes like any job's; not yet supported"
        )
    lacking = sorted(d for d, t in terms.items() if not t.consents)
    if lacking:
        return (
            f"the agreements of {', '.join(lacking)} do not consent: the coalition of one "
            "site alone reveals that site's own update, which secure aggregation hides. "
            "Ask again with kumiai request --allow-contribution-analysis, and have the "
            "stewards sign"
        )
    return None
