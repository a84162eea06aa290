"""Training jobs and model versions: thin calls into the services."""

import typer
from rich.markup import escape
from rich.table import Table

from kumiai.domain.privacy import PrivacyPlan
from kumiai.domain.training import STRATEGIES, TrainingSettings
from kumiai.interfaces.cli.context import console, consortium, number, when
from kumiai.interfaces.cli.progress import RichTrainingProgress
from kumiai.services import jobs, models, privacy
from kumiai.services.privacy import BudgetLine, plan_privacy
from kumiai.services.training import TrainingOutcome
from kumiai.services.training import train as run_training


def site_table(title: str, outcome: TrainingOutcome) -> Table:
    table = Table("site", "test rows", "accuracy", "AUC", title=title)
    for dataset, m in outcome.sites.items():
        table.add_row(dataset, str(m["examples"]), number(m["accuracy"]), number(m["auc"]))
    table.add_row(
        "[bold]all sites",
        str(outcome.overall.get("examples")),
        number(outcome.overall.get("accuracy")),
        number(outcome.overall.get("auc")),
    )
    for dataset in outcome.refused:
        table.add_row(dataset, "—", "[yellow]refused", "—")
    return table


def train(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    strategy: str = typer.Option("fedavg", help=", ".join(STRATEGIES)),
    rounds: int = typer.Option(20, help="Federated rounds."),
    local_epochs: int = typer.Option(1, help="Local epochs per round."),
    lr: float = typer.Option(0.1, help="Local SGD learning rate."),
    batch_size: int = typer.Option(32),
    l2: float = typer.Option(1e-3, help="L2 penalty."),
    mu: float = typer.Option(0.0, help="FedProx proximal term (0 = Flower's default 0.1)."),
    server_lr: float = typer.Option(0.1, help="FedAdam/FedYogi server learning rate."),
    seed: int = typer.Option(0, help="Seed of the train/test split and local shuffles."),
    test_fraction: float = typer.Option(0.25, help="Share of each site's rows held out."),
    by: str = typer.Option(None, help="The member starting the job (default: the proposer)."),
    epsilon: float = typer.Option(None, help="DP: target ε per dataset (per row) for the job."),
    noise_multiplier: float = typer.Option(None, help="DP with this σ instead of a target ε."),
    clipping: float = typer.Option(
        1.0, help="DP clipping norm: per example (record level) or per update (client level)."
    ),
    dp_level: str = typer.Option(
        "record",
        help="record: DP-SGD at each node. client: DP-FedAvg, each node clips its update and "
        "the coordinator adds the noise (for projects with many members).",
    ),
    delta: float = typer.Option(None, help="DP δ (default at each node: 1/(10·rows))."),
    accountant: str = typer.Option("pld", help="pld (default) or rdp."),
) -> None:
    """Train a federated model on every site whose steward agreed; others refuse at the node."""
    settings = TrainingSettings(
        strategy=strategy,
        rounds=rounds,
        local_epochs=local_epochs,
        learning_rate=lr,
        batch_size=batch_size,
        l2=l2,
        proximal_mu=mu,
        server_learning_rate=server_lr,
        seed=seed,
        test_fraction=test_fraction,
        epsilon=epsilon,
        noise_multiplier=noise_multiplier,
        clipping_norm=clipping,
        delta=delta,
        accountant=accountant,
        dp_level=dp_level,
    )
    home = consortium(ctx)
    plans = plan_privacy(home, project, settings)
    if plans:
        console.print(planned_privacy_table(plans))
    else:
        console.print("No differential privacy (use --epsilon to add it).")
    with RichTrainingProgress(console, rounds, f"{project} · {strategy}") as progress:
        outcome = run_training(home, project, settings, progress, by=by)
    console.print(
        site_table(f"{outcome.model_id} (job {outcome.job_id}, {outcome.rounds} rounds)", outcome)
    )


def planned_privacy_table(plans: dict[str, PrivacyPlan]) -> Table:
    client = any(plan.level == "client" for plan in plans.values())
    columns = ["dataset", "planned ε (per row)", "δ", "σ (noise)", "sample rate", "steps"]
    table = Table(
        *columns + (["member ε"] if client else []),
        title=(
            "Planned privacy spend, client level: nodes clip, the coordinator adds the noise"
            if client
            else "Planned privacy spend (each node re-plans and checks its own budget)"
        ),
    )
    for dataset, plan in plans.items():
        cells = [
            dataset,
            f"{plan.epsilon:.3f}",
            f"{plan.delta:.2e}",
            f"{plan.noise_multiplier:.3f}",
            f"{plan.sample_rate:.3f}",
            str(plan.steps),
        ]
        table.add_row(*cells + ([number(plan.member_epsilon)] if client else []))
    return table


def budget_table(lines: list[BudgetLine]) -> Table:
    table = Table(
        "dataset",
        "lifetime ε",
        "spent",
        "committed",
        "left",
        "spent per project",
        "spent per level",
        title="Privacy budgets per row (mirror of the nodes' spend logs)",
    )
    table.columns[0].no_wrap = True
    for b in lines:
        table.add_row(
            b.dataset,
            number(b.lifetime),
            f"{b.spent:.3f}",
            f"{b.committed:.3f}",
            number(b.left),
            ", ".join(f"{p}: {e:.3f}" for p, e in b.by_project.items()) or "—",
            ", ".join(f"{lv}: {e:.3f}" for lv, e in sorted(b.by_level.items())) or "—",
        )
    return table


def budget(ctx: typer.Context) -> None:
    """Per dataset: lifetime budget, spent, committed by running jobs, spend per project."""
    console.print(budget_table(privacy.budgets(consortium(ctx))))


def budget_default(ctx: typer.Context) -> None:
    """Privacy budgets per dataset (`kumiai budget`); `kumiai budget set` changes one."""
    if ctx.invoked_subcommand is None:
        budget(ctx)


def budget_set(
    ctx: typer.Context,
    dataset: str = typer.Argument(...),
    epsilon: float = typer.Option(..., help="Lifetime ε budget across all projects."),
) -> None:
    """The steward sets a dataset's lifetime ε budget, kept and enforced on its own node."""
    value = privacy.set_budget(consortium(ctx), dataset, epsilon)
    console.print(f"Dataset [bold]{dataset}[/] may spend at most ε={value:g} over its lifetime.")


def jobs_list(ctx: typer.Context, project: str = typer.Argument(None)) -> None:
    """List jobs; a job whose process died shows as failed, with its finished rounds kept."""
    table = Table("job", "project", "status", "rounds", "sites", "started", "error")
    for j in jobs.list_jobs(consortium(ctx), project):
        sites = ", ".join(f"{s.dataset}:{s.status}" for s in j.sites)
        table.add_row(
            j.id,
            j.project,
            j.status,
            f"{j.completed_rounds}/{j.planned_rounds}",
            sites,
            when(j.created_at),
            j.error or "",
        )
    console.print(table)


def job_show(ctx: typer.Context, job_id: str = typer.Argument(...)) -> None:
    """Show one job: each site's participation and reason, and every round's metrics."""
    j = jobs.job_detail(consortium(ctx), job_id)
    console.print(
        f"[bold]{j.id}[/] · {j.project} · {j.kind} · {j.status} · "
        f"{j.completed_rounds}/{j.planned_rounds} rounds"
    )
    if j.error:
        console.print(f"[red]{escape(j.error)}")
    sites = Table("dataset", "member", "status", "reason", title="sites")
    for s in j.sites:
        sites.add_row(s.dataset, s.member, s.status, s.reason or "")
    console.print(sites)
    client = any(r.get("member_epsilon") is not None for r in j.rounds)
    rounds = Table(
        "round",
        "train loss",
        "accuracy",
        "AUC",
        "ε spent (max, per row)",
        *(["member ε (Flower, RDP)"] if client else []),
        "seconds",
        title="rounds",
    )
    for r in j.rounds:
        rounds.add_row(
            str(r["round"]),
            number(r["train_loss"]),
            number(r["overall"].get("accuracy")),
            number(r["overall"].get("auc")),
            number(max(r.get("epsilon", {}).values(), default=None)),
            *([number(r.get("member_epsilon"))] if client else []),
            number(r["seconds"], 2),
        )
    console.print(rounds)


def models_list(ctx: typer.Context, project: str = typer.Argument(None)) -> None:
    """List released model versions with their overall metrics and lineage."""
    table = Table("model", "strategy", "job", "sites", "accuracy", "AUC", "agreements", "created")
    for m in models.list_models(consortium(ctx), project):
        overall = m.metrics["overall"]
        table.add_row(
            m.id,
            m.strategy,
            m.job_id,
            ", ".join(m.lineage["datasets"]),
            number(overall.get("accuracy")),
            number(overall.get("auc")),
            ", ".join(m.lineage["agreements"].values()),
            when(m.created_at),
        )
    console.print(table)


def model_show(ctx: typer.Context, model_id: str = typer.Argument(...)) -> None:
    """Show a model version: metrics per site, and its lineage (job, agreements, refusals)."""
    m = models.model_detail(consortium(ctx), model_id)
    table = Table("site", "test rows", "accuracy", "AUC", title=f"{m.id} · {m.strategy}")
    for dataset, s in m.metrics["sites"].items():
        table.add_row(dataset, str(s["examples"]), number(s["accuracy"]), number(s["auc"]))
    overall = m.metrics["overall"]
    table.add_row(
        "[bold]all sites",
        str(overall["examples"]),
        number(overall["accuracy"]),
        number(overall["auc"]),
    )
    console.print(table)
    console.print(
        f"job {m.job_id}; agreements: "
        + ", ".join(f"{d}={a}" for d, a in m.lineage["agreements"].items())
    )
    for dataset, reason in m.lineage["refused"].items():
        console.print(f"[yellow]refused[/] {dataset}: {escape(reason)}")
