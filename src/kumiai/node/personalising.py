"""The node fine-tunes a released model on its own rows and keeps the result.

The coordinator sends the released model (its settings, feature plan and parameters: what
every member may already read), the number of epochs and, for a model trained with DP-SGD,
the job that trained it and an id for the charge. The node checks the rule
(kumiai.domain.personalisation) against its own newest agreement for the project, its own
revocations and clock, and the agreement's minimum cohort. For a private model it then
reads σ, q and the clipping norm from its **own** spend log's reservation for that job (a
job that never trained here, or another project's, is refused), charges the extra ε
against the agreement's cap and the lifetime budget, and spends it before it fine-tunes.
It stores the personalised parameters in its home (`personalised/MODEL/DATASET.npz`) and
hands back only the aggregate scores of its test rows. No row and no personalised parameter
leaves. A refusal leaves the home as it was.
"""

import math
from typing import Any

from kumiai.adapters.files import write_atomic
from kumiai.adapters.storage.arrays import arrays_from_bytes, arrays_to_bytes
from kumiai.domain.clock import utc_now
from kumiai.domain.contribution_charge import ReleasedRun, current_agreement
from kumiai.domain.disclosure import cohort_refusal
from kumiai.domain.errors import InvalidInput
from kumiai.domain.metrics import SiteScore
from kumiai.domain.personalisation import (
    PERSONALISATION,
    agreement_refusal,
    charge_for,
    earlier_steps,
    model_refusal,
)
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.training import TrainingSettings
from kumiai.node.charging import pay_charge
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
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
    job: str = "",
    charge_id: str = "",
    proximal_mu: float | None = None,
) -> tuple[bool, str, SiteScore | None]:
    """(allowed, reason, scores of the personalised model on this site's test rows)."""
    home.dataset(dataset)  # NotFound unless the dataset is this node's
    agreement = current_agreement(home.agreements(), project=project, dataset=dataset)
    refusal = model_refusal(model, settings, epochs, proximal_mu) or agreement_refusal(
        agreement,
        project=project,
        dataset=dataset,
        steward=home.member_name,
        steward_keys=home.steward_keys(),
        revoked=home.revoked(),
        now=utc_now(),
        private=settings.private,
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
    private: dict[str, Any] | None = None
    done = f"fine-tuned {epochs} epochs on {train_rows} rows"
    if proximal_mu is not None:
        done = f"fitted to {train_rows} rows with a pull μ={proximal_mu:g} to the model"
    if settings.private:
        paid, reason, private = _charge(
            home, dataset, project=project, model=model, settings=settings, epochs=epochs,
            job=job, charge_id=charge_id, cap=agreement.terms.epsilon_cap,
        )  # fmt: skip
        if not paid:
            return False, reason, None
        done = f"{done} under DP-SGD; {reason}"
    arrays, score = worker.personalise(
        dataset, settings, plan, arrays_from_bytes(parameters), epochs, private, proximal_mu
    )
    write_atomic(
        home.root / "personalised" / model / f"{dataset}.npz", arrays_to_bytes(arrays), mode=0o600
    )
    return True, done, score


def _charge(
    home: NodeHome,
    dataset: str,
    *,
    project: str,
    model: str,
    settings: TrainingSettings,
    epochs: int,
    job: str,
    charge_id: str,
    cap: float | None,
) -> tuple[bool, str, dict[str, Any] | None]:
    """Pay for DP fine-tuning in the node's own log: (paid, reason, the DP-SGD plan)."""
    if not charge_id:
        return False, "a private model's fine-tuning needs a charge id for the spend log", None
    log = SpendLog(home, dataset)
    view = log.view()
    if charge_id in view.jobs:
        return False, f"{charge_id} already names another use of {dataset!r}", None
    held = view.jobs.get(job)
    if held is None or held.project != project or held.rounds < 1:
        return (
            False,
            f"job {job} of project {project!r} never trained on {dataset!r} (this node's "
            "spend log holds no round of it)",
            None,
        )
    try:
        run = ReleasedRun.from_reservation(held.details, held.rounds)
    except InvalidInput as exc:
        return False, f"job {job}: {exc}", None
    # The plan this node makes for the model's own settings must be the one it reserved for
    # the job: a coordinator naming another job (other σ, q, rounds or clipping) is refused.
    mine, per_round = NodeWorker(home.root).privacy_plan(dataset, settings)
    reserved = (run.noise_multiplier, run.sample_rate, run.steps_per_round, run.rounds)
    planned = (mine.noise_multiplier, mine.sample_rate, per_round, settings.rounds)
    if run.clipping_norm != mine.clipping_norm or not all(
        math.isclose(a, b, rel_tol=1e-9) for a, b in zip(reserved, planned, strict=True)
    ):
        return (
            False,
            f"job {job} did not train model {model} on {dataset!r}: its reservation (σ="
            f"{run.noise_multiplier:.4g}, q={run.sample_rate:.4g}, {run.rounds} rounds, "
            f"clipping {run.clipping_norm:g}) is not the plan of the model's settings (σ="
            f"{mine.noise_multiplier:.4g}, q={mine.sample_rate:.4g}, {settings.rounds} "
            f"rounds, clipping {mine.clipping_norm:g})",
            None,
        )
    earlier = earlier_steps((j.details for j in view.jobs.values()), job)
    charge = charge_for(run, epochs, earlier)
    details = {"kind": PERSONALISATION, "model": model, "released_job": job, **charge.as_dict()}
    decision = pay_charge(log, charge_id, project, run, charge.extra, cap, details)
    if not decision.allowed:
        return False, f"the personalisation of {model}: {decision.reason}", None
    sgd = {
        "steps_per_round": charge.steps,
        "sample_rate": run.sample_rate,
        "noise_multiplier": run.noise_multiplier,
        "clipping_norm": run.clipping_norm,
    }
    return True, f"ε={charge.extra:.3f} charged for {charge.steps} steps", sgd
