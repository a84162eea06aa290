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
a hospital whose agreement caps ε at 3: refused ("requires differential privacy").
"""

from collections.abc import Mapping, Sequence
from datetime import datetime

from kumiai.domain.agreement import SignedAgreement, standing_refusal
from kumiai.domain.disclosure import ALLOWED
from kumiai.domain.job import JobKind
from kumiai.domain.training import TrainingSettings

DEFAULT_EPOCHS = 5
MAX_EPOCHS = 20


def model_refusal(model: str, settings: TrainingSettings, epochs: int) -> str | None:
    """Why the released model `model`, trained with `settings`, may not be fine-tuned."""
    if not 1 <= epochs <= MAX_EPOCHS:
        return (
            f"personalisation runs 1 to {MAX_EPOCHS} local epochs, not {epochs}; more would "
            "forget what the federation learnt (try the default, "
            f"{DEFAULT_EPOCHS})"
        )
    if settings.private:
        return (
            f"model {model} was trained under differential privacy; fine-tuning it on a "
            "site's rows would spend privacy that no node's budget counts yet, so "
            "personalising a private model is refused (personalise a model trained without DP)"
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
) -> str | None:
    """Why the node must not fine-tune on `dataset` under its newest agreement, or None."""
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
    if terms.epsilon_cap is not None:
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
