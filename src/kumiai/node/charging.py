"""The node pays for a contribution analysis of a DP model itself, before any retraining.

The coordinator names the model, the released job and how many retrainings it asks for;
everything else comes from the node's own home: its newest agreement for the project (the
`contribution_analysis` term, not revoked, not expired), the released job's reservation in
its own spend log (σ, q, steps, rounds, δ — a job that never trained here is refused), and
the extra ε it computes itself (kumiai.domain.contribution_charge). The charge is reserved
against the agreement's ε cap and the lifetime budget like a job, and spent at once: paid
first, before any retraining result exists. A charge id already in the log is not charged
again, so a retry after a crash pays nothing twice.
"""

from typing import Any

from kumiai.domain.budget import BudgetDecision
from kumiai.domain.clock import utc_now
from kumiai.domain.contribution_charge import (
    CONTRIBUTION,
    ReleasedRun,
    charge_for,
    charge_refusal,
    current_agreement,
)
from kumiai.domain.errors import InvalidInput
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog


def charge_contribution(
    home: NodeHome,
    dataset: str,
    *,
    project: str,
    model: str,
    released_job: str,
    retrainings: int,
    charge_id: str,
) -> tuple[bool, str, float]:
    """(allowed, reason, ε charged). A refusal leaves the spend log as it was."""
    home.dataset(dataset)  # NotFound unless the dataset is this node's
    log = SpendLog(home, dataset)
    view = log.view()
    done = view.jobs.get(charge_id)
    if done is not None:
        same = done.details.get("released_job") == released_job and done.project == project
        if not (same and done.details.get("kind") == CONTRIBUTION):
            return False, f"{charge_id} already names another use of {dataset!r}", 0.0
        return True, f"{charge_id} was already charged ε={done.spent:.3f}", done.spent
    agreement = current_agreement(home.agreements(), project=project, dataset=dataset)
    refusal = charge_refusal(
        agreement,
        project=project,
        dataset=dataset,
        steward=home.member_name,
        steward_keys=home.steward_keys(),
        revoked=home.revoked(),
        now=utc_now(),
    )
    if refusal is not None or agreement is None:
        return False, str(refusal), 0.0
    held = view.jobs.get(released_job)
    if held is None or held.project != project or held.rounds < 1:
        return (
            False,
            f"job {released_job} of project {project!r} never trained on {dataset!r} "
            "(this node's spend log holds no round of it)",
            0.0,
        )
    try:
        run = ReleasedRun.from_reservation(held.details, held.rounds)
        charge = charge_for(run, retrainings)
    except InvalidInput as exc:
        return False, f"job {released_job}: {exc}", 0.0
    details: dict[str, Any] = {
        "kind": CONTRIBUTION,
        "model": model,
        "released_job": released_job,
        "retrainings": retrainings,
        "steps": charge.steps,
        "epsilon_job": charge.epsilon_job,
        "epsilon_total": charge.epsilon_total,
    }
    decision = pay_charge(
        log, charge_id, project, run, charge.extra, agreement.terms.epsilon_cap, details
    )
    if not decision.allowed:
        return False, f"the contribution analysis of {model}: {decision.reason}", charge.extra
    return True, f"ε={charge.extra:.3f} charged for {retrainings} retrainings", charge.extra


def pay_charge(
    log: SpendLog,
    charge_id: str,
    project: str,
    run: ReleasedRun,
    extra: float,
    cap: float | None,
    details: dict[str, Any],
) -> BudgetDecision:
    """Reserve a charge against the cap and the lifetime budget and spend it at once (a
    contribution analysis, a personalisation): paid before any work it pays for exists.
    The entry names the released run it extends and trains no federated round."""
    decision = log.reserve(
        job=charge_id,
        project=project,
        planned=extra,
        delta=run.delta,
        agreement_cap=cap,
        details={
            **details,
            "released": run.as_dict(),
            "noise_multiplier": run.noise_multiplier,
            "delta": run.delta,
            "rounds": 0,  # no federated round may ever train under a charge
        },
    )
    if decision.allowed and extra > 0:
        log.spend(job=charge_id, round_=0, epsilon=extra)
    return decision
