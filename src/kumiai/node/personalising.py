"""The node fine-tunes a released model on its own rows and keeps the result.

The coordinator sends the released model (its settings, feature plan and parameters: what
every member may already read) and the number of epochs. The node checks the rule
(kumiai.domain.personalisation) against its own newest agreement for the project, its own
revocations and clock, and the agreement's minimum cohort; then fine-tunes, stores the
personalised parameters in its home (`personalised/MODEL/DATASET.npz`) and hands back only
the aggregate scores of its test rows. No row and no personalised parameter leaves.
"""

from kumiai.adapters.files import write_atomic
from kumiai.adapters.storage.arrays import arrays_from_bytes, arrays_to_bytes
from kumiai.domain.clock import utc_now
from kumiai.domain.contribution_charge import current_agreement
from kumiai.domain.disclosure import cohort_refusal
from kumiai.domain.metrics import SiteScore
from kumiai.domain.personalisation import agreement_refusal, model_refusal
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.training import TrainingSettings
from kumiai.node.home import NodeHome
from kumiai.node.worker import NodeWorker


def personalise(
    home: NodeHome,
    dataset: str,
    *,
    project: str,
    model: str,
    settings: TrainingSettings,
    plan: FeaturePlan,
    parameters: bytes,
    epochs: int,
) -> tuple[bool, str, SiteScore | None]:
    """(allowed, reason, scores of the personalised model on this site's test rows)."""
    home.dataset(dataset)  # NotFound unless the dataset is this node's
    agreement = current_agreement(home.agreements(), project=project, dataset=dataset)
    refusal = model_refusal(model, settings, epochs) or agreement_refusal(
        agreement,
        project=project,
        dataset=dataset,
        steward=home.member_name,
        steward_keys=home.steward_keys(),
        revoked=home.revoked(),
        now=utc_now(),
    )
    if refusal is not None or agreement is None:  # agreement_refusal refuses a missing one
        return False, str(refusal), None
    worker = NodeWorker(home.root)
    train_rows, test_rows = worker.cohort(dataset, settings)
    small = cohort_refusal(
        agreement.terms.agreement_id, agreement.terms.min_cohort, train_rows, test_rows
    )
    if small is not None:
        return False, small, None
    arrays, score = worker.personalise(
        dataset, settings, plan, arrays_from_bytes(parameters), epochs
    )
    write_atomic(
        home.root / "personalised" / model / f"{dataset}.npz", arrays_to_bytes(arrays), mode=0o600
    )
    return True, f"fine-tuned {epochs} epochs on {train_rows} rows", score
