"""`kumiai jobs`, `job`, `models`, `model`: reading jobs and released model versions back.

These only read (`jobs --recover` excepted) and never load Flower. Each command imports
its service and Rich itself, so that `--help` loads neither.
"""

from typing import TYPE_CHECKING, Any

import typer

from kumiai.interfaces.cli.context import consortium, number, warn_held, when
from kumiai.interfaces.cli.output import JSON_OPTION, plain, print_json
from kumiai.interfaces.cli.remote import remote_document

if TYPE_CHECKING:
    from kumiai.services.jobs import JobInfo


def job_document(job: "JobInfo", with_rounds: bool) -> dict[str, Any]:
    document = plain(job)
    assert isinstance(document, dict)
    if not with_rounds:
        del document["rounds"]  # a listing does not read them; absent, not empty
    return document


def jobs_list(
    ctx: typer.Context,
    project: str = typer.Argument(None),
    recover: bool = typer.Option(
        False,
        "--recover",
        help="First mark interrupted jobs failed and release the ε their nodes reserved.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List jobs; a job whose process died shows as interrupted, its finished rounds kept."""
    if not recover and remote_document(as_json, "/jobs", project=project):
        return
    from kumiai.services import jobs

    home = consortium(ctx)
    if recover:
        from kumiai.interfaces.cli.context import errors

        for job_id in jobs.recover_interrupted_jobs(home):
            errors.print(f"Job {job_id} marked failed; its nodes' reserved ε released.")
        warn_held(jobs.held_reservations(home))
    listing = jobs.list_jobs(home, project)
    if as_json:
        print_json([job_document(j, with_rounds=False) for j in listing])
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("job", "project", "kind", "status", "rounds", "sites", "started", "error")
    for j in listing:
        sites = ", ".join(f"{s.dataset}:{s.status}" for s in j.sites)
        status = f"[yellow]{j.status}" if j.status == jobs.INTERRUPTED else j.status
        table.add_row(
            j.id,
            j.project,
            j.kind,
            status,
            f"{j.completed_rounds}/{j.planned_rounds}",
            sites,
            when(j.created_at),
            escape(j.error or ""),
        )
    console.print(table)


def job_show(
    ctx: typer.Context, job_id: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show one job: each site's participation and reason, and every round's metrics."""
    if remote_document(as_json, "/jobs/{}", job_id):
        return
    from kumiai.services import jobs

    j = jobs.job_detail(consortium(ctx), job_id)
    if as_json:
        print_json(job_document(j, with_rounds=True))
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    console.print(
        f"[bold]{j.id}[/] · {j.project} · {j.kind} · {j.status} · "
        f"{j.completed_rounds}/{j.planned_rounds} rounds"
    )
    if j.error:
        console.print(f"[red]{escape(j.error)}")
    sites = Table("dataset", "member", "status", "reason", title="sites")
    for s in j.sites:
        sites.add_row(s.dataset, s.member, s.status, escape(s.reason or ""))
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


def models_list(
    ctx: typer.Context, project: str = typer.Argument(None), as_json: bool = JSON_OPTION
) -> None:
    """List released model versions with their overall metrics and lineage."""
    if remote_document(as_json, "/models", project=project):
        return
    from kumiai.services import models

    listing = models.list_models(consortium(ctx), project)
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("model", "strategy", "job", "sites", "accuracy", "AUC", "agreements", "created")
    for m in listing:
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


def model_show(
    ctx: typer.Context, model_id: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show a model version: metrics per site, and its lineage (job, agreements, refusals)."""
    if remote_document(as_json, "/models/{}", model_id):
        return
    from kumiai.services import models

    m = models.model_detail(consortium(ctx), model_id)
    if as_json:
        print_json(m)
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

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
