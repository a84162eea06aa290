"""`dataset show`, `project show`, `agreement show`: one record and what surrounds it.

Registered on the governance sub-apps in main.py; kept apart so that governance.py stays
the home of the commands that change things. Each command imports the service and Rich
itself, so that `--help` loads neither.
"""

from typing import TYPE_CHECKING, Any

import typer

from kumiai.interfaces.cli.context import consortium, number, when
from kumiai.interfaces.cli.jobs import job_document
from kumiai.interfaces.cli.output import JSON_OPTION, plain, print_json
from kumiai.interfaces.cli.remote import remote_document

if TYPE_CHECKING:
    from rich.table import Table

    from kumiai.services.agreements import RequestInfo
    from kumiai.services.projects import ProjectInfo
    from kumiai.services.views import ProjectView


def _requests_table(requests: "tuple[RequestInfo, ...]", title: str) -> "Table":
    from rich.markup import escape
    from rich.table import Table

    columns = ("request", "project", "dataset", "kinds", "rounds", "ε cap", "releases", "status")
    table = Table(*columns, title=title)
    for r in requests:
        status = r.status + (f": {r.refusal_reason}" if r.refusal_reason else "")
        table.add_row(
            r.id,
            r.project,
            r.dataset,
            ",".join(r.job_kinds),
            str(r.max_rounds),
            number(r.epsilon_cap),
            f"statistics {r.aggregate_statistics}"
            + (f", ≥{r.min_cohort} rows" if r.min_cohort else "")
            + ("; contribution analysis" if r.contribution_analysis else ""),
            escape(status),
        )
    return table


def dataset_show(
    ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show a dataset: its schema, hash, budget and every project that asked to use it."""
    if remote_document(as_json, "/datasets/{}", name):
        return
    from kumiai.services import views

    view = views.dataset_view(consortium(ctx), name)
    if as_json:
        print_json(view)
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    d = view.dataset
    console.print(
        f"[bold]{d.name}[/] on {d.member}'s node · {d.rows} rows · target {escape(d.target)} · "
        f"{d.sensitivity} · registered {when(view.registered_at)} UTC\n"
        f"sha256 {d.sha256} · lifetime ε {number(view.lifetime_epsilon)}"
    )
    columns = Table("column", "type", title="schema")
    for column, kind in d.schema.items():
        columns.add_row(column, kind)
    console.print(columns)
    console.print(_requests_table(view.requests, "data-use requests"))


def _approver(project: "ProjectInfo") -> str:
    if project.approved_by_motion:
        return f"the board ({project.approved_by_motion})"
    return project.approved_by or "—"


def project_document(view: "ProjectView") -> dict[str, Any]:
    """`project show --json`: its jobs as `kumiai jobs --json` lists them (no rounds)."""
    document = plain(view)
    assert isinstance(document, dict)
    document["jobs"] = [job_document(j, with_rounds=False) for j in view.jobs]
    return document


def project_show(
    ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show a project: purpose, members, requests, agreements, jobs, models, money, milestones."""
    if remote_document(as_json, "/projects/{}", name):
        return
    from kumiai.services import views

    view = views.project_view(consortium(ctx), name)
    if as_json:
        print_json(project_document(view))
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    p = view.project
    console.print(
        f"[bold]{p.name}[/] · {escape(p.title)} · {p.status} · proposed by {p.proposed_by} "
        f"{when(p.created_at)} UTC · approved by {_approver(p)}\n"
        f"purpose: {escape(p.purpose)}\nmembers: {', '.join(p.members)}"
    )
    console.print(_requests_table(view.requests, "data-use requests"))
    agreements = Table("agreement", "dataset", "steward", "expires", "revoked", title="agreements")
    for a in view.agreements:
        revoked = when(a.revoked_at) if a.revoked_at else "—"
        agreements.add_row(a.id, a.dataset, a.steward, when(a.expires_at), revoked)
    console.print(agreements)
    jobs = Table("job", "status", "rounds", "started", title="jobs")
    for j in view.jobs:
        jobs.add_row(j.id, j.status, f"{j.completed_rounds}/{j.planned_rounds}", when(j.created_at))
    console.print(jobs)
    models = Table("model", "strategy", "accuracy", "AUC", "created", title="models")
    for m in view.models:
        overall = m.metrics["overall"]
        models.add_row(
            m.id,
            m.strategy,
            number(overall.get("accuracy")),
            number(overall.get("auc")),
            when(m.created_at),
        )
    console.print(models)
    from kumiai.interfaces.cli.association import budget_lines, milestone_table

    budget_lines(view.budget)
    if view.milestones:
        console.print(milestone_table(view.milestones, title="milestones"))


def agreement_show(
    ctx: typer.Context, agreement_id: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show an agreement: the terms its steward signed, as the node checks them."""
    if remote_document(as_json, "/agreements/{}", agreement_id):
        return
    from kumiai.services import views

    view = views.agreement_view(consortium(ctx), agreement_id)
    if as_json:
        print_json(view)
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    a = view.agreement
    revoked = (
        f"revoked {when(a.revoked_at)} UTC: {escape(a.revocation_reason or '')}"
        if a.revoked_at
        else "not revoked"
    )
    console.print(
        f"[bold]{a.id}[/] (request {a.request_id}) · {a.project} on {a.dataset} · signed by "
        f"{a.steward} {when(a.signed_at)} UTC with key {view.key_fingerprint} · {revoked}"
    )
    terms = Table("term", "value", title="signed terms")
    for key, value in sorted(view.terms.items()):
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        terms.add_row(key, escape(text))
    console.print(terms)
