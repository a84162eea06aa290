"""Privacy as the coordinator can see it: planned ε before a job, budgets for display.

The nodes decide and record (kumiai.node.worker, kumiai.node.spendlog); the
coordinator estimates plans from the catalogue's row counts so that bad parameters are
refused before any node is contacted, and mirrors budgets for the `kumiai budget` view.
"""

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import DatasetRow, PrivacySpendRow
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import PrivacyPlan, check_lifetime
from kumiai.domain.releasing import HOLDING
from kumiai.domain.training import TrainingSettings, plan_privacy_for
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import all_rows, get, project_datasets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _train_rows(rows: int, settings: TrainingSettings) -> int:
    """The training rows a node with `rows` registered rows will have (same split rule)."""
    return rows - math.ceil(rows * settings.test_fraction)


def estimate_plan(rows: int, settings: TrainingSettings) -> PrivacyPlan:
    """The privacy plan a node with `rows` registered rows will make."""
    return plan_privacy_for(settings, _train_rows(rows, settings))[0]


def _dataset_rows(consortium: Consortium, project: str) -> dict[str, int]:
    with transaction(consortium.sessions) as session:
        return {d.name: d.rows for d in project_datasets(session, project)}


def resolve_settings(
    consortium: Consortium, project: str, settings: TrainingSettings
) -> TrainingSettings:
    """Fix what the coordinator must decide for all nodes at once before a job starts.

    Client-level DP adds one noise for everyone, so σ is calibrated here, to the smallest
    default δ among the project's datasets: every node's own ε then meets the target.
    """
    if not (settings.private and settings.dp_level == "client"):
        return settings
    if settings.noise_multiplier is not None:
        return settings
    sizes = _dataset_rows(consortium, project)
    if not sizes:
        return settings  # the job start refuses a project without datasets
    # The most rows give the smallest default δ = 1/(10·n), hence the largest ε for a σ.
    largest = max(sizes, key=lambda name: _train_rows(sizes[name], settings))
    try:
        plan = estimate_plan(sizes[largest], settings)
    except InvalidInput as exc:
        raise InvalidInput(f"dataset {largest!r} ({sizes[largest]} rows): {exc}") from None
    return replace(settings, noise_multiplier=plan.noise_multiplier)


@dataclass(frozen=True)
class JobPrivacy:
    """A job's privacy, planned once: what was asked, the settings the nodes get, each plan."""

    requested: TrainingSettings
    settings: TrainingSettings  # σ fixed for client-level DP; otherwise as requested
    plans: dict[str, PrivacyPlan]  # planned ε per dataset (empty without DP)


def plan_job_privacy(
    consortium: Consortium, project: str, settings: TrainingSettings
) -> JobPrivacy:
    """Plan a job's privacy once, before any node is contacted.

    InvalidInput names a bad parameter. The CLI shows the plans and passes them to
    `services.training.train`, which runs with them instead of planning again.
    """
    if not settings.private:
        return JobPrivacy(settings, settings, {})
    resolved = resolve_settings(consortium, project, settings)
    plans = {}
    for name, rows in _dataset_rows(consortium, project).items():
        try:
            plans[name] = estimate_plan(rows, resolved)
        except InvalidInput as exc:
            raise InvalidInput(f"dataset {name!r} ({rows} rows): {exc}") from None
    return JobPrivacy(settings, resolved, plans)


def plan_privacy(
    consortium: Consortium, project: str, settings: TrainingSettings
) -> dict[str, PrivacyPlan]:
    """Planned ε per dataset of a project's next job (`plan_job_privacy`'s plans)."""
    return plan_job_privacy(consortium, project, settings).plans


BUDGET_SET = "privacy.budget-set"


def set_budget(consortium: Consortium, dataset: str, epsilon: float) -> float:
    """The steward sets a dataset's lifetime ε budget on its own node; the catalogue mirrors
    it, and the steward's node signs the figure into the ledger (`privacy.budget-set`) in the
    same transaction, so the mirror can never show a budget the node did not set.

    A node on its own machine set the budget in its home before it asked (SubmittedNode), so
    the figure is checked here as well: the coordinator never mirrors a meaningless one."""
    lifetime = check_lifetime(epsilon)
    with transaction(consortium.sessions) as session:
        row = get(session, DatasetRow, dataset)
        consortium.node(row.member).set_budget(dataset, lifetime)
        row.epsilon_budget = lifetime
        payload = {"dataset": dataset, "member": row.member, "epsilon": lifetime}
        consortium.ledger.append(
            session, Act(row.member, BUDGET_SET, payload, member=row.member, dataset=dataset)
        )
        return lifetime


@dataclass
class BudgetLine:
    dataset: str
    member: str
    lifetime: float | None
    spent: float
    committed: float
    by_project: dict[str, float] = field(default_factory=dict)  # spent per project
    by_level: dict[str, float] = field(default_factory=dict)  # spent per DP level

    @property
    def left(self) -> float | None:
        return None if self.lifetime is None else self.lifetime - self.spent - self.committed


def budgets(consortium: Consortium) -> list[BudgetLine]:
    """Per dataset: lifetime budget, spent, committed by running jobs, spend per project
    and per level (record-level DP-SGD or client-level DP-FedAvg, both counted per row).

    Read from the coordinator's mirror; the nodes' spend logs are the record.
    """
    with transaction(consortium.sessions) as session:
        lines = {
            d.name: BudgetLine(d.name, d.member, d.epsilon_budget, 0.0, 0.0)
            for d in all_rows(session, DatasetRow, DatasetRow.name)
        }
        for spend in all_rows(session, PrivacySpendRow, PrivacySpendRow.job_id):
            line = lines[spend.dataset]
            line.spent += spend.spent
            if spend.status in HOLDING:
                line.committed += max(spend.planned - spend.spent, 0.0)
            line.by_project[spend.project] = line.by_project.get(spend.project, 0.0) + spend.spent
            line.by_level[spend.level] = line.by_level.get(spend.level, 0.0) + spend.spent
    return list(lines.values())


def mirror_charge(
    consortium: Consortium, session: "Session", member: str, dataset: str, job: str, project: str
) -> None:
    """A charge the node logged (a contribution analysis, a personalisation) mirrored as
    that job's privacy spend, as `kumiai budget` shows it: record-level, no federated round."""
    spend = consortium.node(member).budget(dataset).jobs[job]
    session.merge(
        PrivacySpendRow(
            job_id=job,
            dataset=dataset,
            project=project,
            planned=spend.reserved,
            spent=spend.spent,
            delta=float(spend.details.get("delta", 0.0)),
            noise_multiplier=float(spend.details.get("noise_multiplier", 0.0)),
            rounds=0,
            status="running",
            level="record",
        )
    )
