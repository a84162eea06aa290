"""`kumiai theme`, `funds`, `spend`, `milestone`, and `project theme` / `project budget`.

Thin calls into services.themes, services.funds, services.spend and services.milestones;
the board's decisions (ranking, allocating, accepting) are motions, proposed here for
convenience and voted with `kumiai motion vote`. Each command imports its service and Rich
itself, so that `--help` loads neither.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import typer
from typer.core import TyperGroup

from kumiai.interfaces.cli.context import consortium, when
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_document

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.table import Table

    from kumiai.services.milestones import MilestoneInfo
    from kumiai.services.spend import BudgetInfo
    from kumiai.services.themes import ThemeInfo


def _default_to(command: str) -> type[TyperGroup]:
    """A group whose first word, when not one of its commands, goes to `command`:
    `kumiai spend heart` is `kumiai spend show heart`, `kumiai funds` is `funds list`."""

    class DefaultGroup(TyperGroup):
        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
                args = [command, *args]
            return super().parse_args(ctx, args)

    return DefaultGroup


theme_app = typer.Typer(help="Research themes and the board's priorities.", no_args_is_help=True)
funds_app = typer.Typer(
    help="Money received into sources and allocated to projects (default: list).",
    cls=_default_to("list"),
)
spend_app = typer.Typer(
    help="A project's spend, budget against actual (`kumiai spend PROJECT`).",
    cls=_default_to("show"),
)
milestone_app = typer.Typer(
    help="Project milestones, evidence and acceptance.", no_args_is_help=True
)


def yen(amount: int) -> str:
    return f"¥{amount:,}"


def _proposed(info: Any) -> None:
    from kumiai.interfaces.cli.context import console

    console.print(
        f"Motion [bold]{info.id}[/] ({info.decision}) proposed; seats vote with "
        f"`kumiai motion vote {info.id} yes --by SEAT` until {when(info.closes_at)} UTC"
    )


# -- themes --------------------------------------------------------------------------------
@theme_app.command("add")
def theme_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A short name, e.g. medical."),
    title: str = typer.Option(..., help="A readable title, e.g. 'Medical AI'."),
    description: str = typer.Option("", help="What the theme covers."),
    by: str = typer.Option(..., help="A board seat holder (any member before the charter)."),
) -> None:
    """Add a research theme; the seat holder's node signs it."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import themes

    info = themes.add_theme(consortium(ctx), name=name, title=title, description=description, by=by)
    console.print(f"Theme [bold]{info.name}[/] ({info.title}) added by {info.created_by}.")


def _theme_lines(info: "ThemeInfo") -> None:
    from kumiai.interfaces.cli.context import console

    rank = f"priority {info.rank} (by {info.ranked_by})" if info.rank else "not ranked yet"
    console.print(f"Theme [bold]{info.name}[/]: {info.title}; {rank}")
    if info.description:
        console.print(info.description)
    console.print(f"Projects: {', '.join(info.projects) or 'none yet'}")


@theme_app.command("list")
def theme_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the themes, the board's priorities first."""
    if remote_document(as_json, "/themes"):
        return
    from kumiai.services import themes

    listing = themes.list_themes(consortium(ctx))
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("priority", "theme", "title", "projects")
    for t in listing:
        table.add_row(str(t.rank or "—"), t.name, t.title, ", ".join(t.projects) or "—")
    console.print(table)


@theme_app.command("show")
def theme_show(
    ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show a theme, its priority and its projects."""
    if remote_document(as_json, "/themes/{}", name):
        return
    from kumiai.services import themes

    info = themes.show_theme(consortium(ctx), name)
    if as_json:
        print_json(info)
        return
    _theme_lines(info)


@theme_app.command("rank")
def theme_rank(
    ctx: typer.Context,
    ranking: str = typer.Argument(..., help="Every theme, best first: 'medical,agents,...'."),
    by: str = typer.Option(..., help="The seat holder proposing the motion."),
) -> None:
    """Propose a set-priorities motion ranking every theme."""
    from kumiai.services import motions

    names = [t.strip() for t in ranking.split(",") if t.strip()]
    info = motions.propose_motion(
        consortium(ctx), decision="set-priorities", payload={"ranking": names}, proposer=by
    )
    _proposed(info)


def project_theme(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    theme: str = typer.Argument(...),
    by: str = typer.Option(..., help="The project's lead member, or a seat holder."),
) -> None:
    """Put a project under a theme."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import themes

    themes.set_project_theme(consortium(ctx), project, theme, by)
    console.print(f"Project {project} is under theme [bold]{theme}[/].")


# -- funds ---------------------------------------------------------------------------------
@funds_app.command("list")
def funds_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Each source: received, allocated and the balance; then the totals."""
    if remote_document(as_json, "/funds"):
        return
    from kumiai.services import funds

    books = funds.list_funds(consortium(ctx))
    if as_json:
        print_json(books)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("source", "kind", "received", "allocated", "balance", "allocated to")
    for s in books.sources:
        to = ", ".join(f"{a.project} {yen(a.amount_yen)}" for a in s.allocations) or "—"
        table.add_row(
            s.source,
            s.kind,
            yen(s.received_yen),
            yen(s.allocated_yen),
            yen(s.unallocated_yen),
            to,
        )
    table.add_row(
        "total", "", yen(books.received_yen), yen(books.allocated_yen), yen(books.unallocated_yen)
    )
    console.print(table)


@funds_app.command("receive")
def funds_receive(
    ctx: typer.Context,
    source: str = typer.Option(..., help="The source's name, e.g. nedo-grant or dues-2026."),
    kind: str = typer.Option(..., help="dues, grant or investor."),
    from_: str = typer.Option(..., "--from", help="Who paid: a member or an outside body."),
    amount: str = typer.Option(..., help="Whole yen, e.g. 5000000."),
    note: str = typer.Option("", help="A note for the books."),
) -> None:
    """Record money received (the coordinator, which keeps the books, signs it)."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import funds

    info = funds.receive_funds(
        consortium(ctx), source=source, kind=kind, payer=from_, amount=amount, note=note
    )
    console.print(
        f"Received {yen(info.receipts[-1].amount_yen)} into {info.source}; its balance is "
        f"{yen(info.unallocated_yen)}."
    )


@funds_app.command("allocate")
def funds_allocate(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    amount: str = typer.Option(..., help="Whole yen."),
    source: str = typer.Option(..., help="The source it comes from (see `kumiai funds`)."),
    site_rounds: str = typer.Option(None, help="A compute quota: rounds x sites."),
    by: str = typer.Option(..., help="The seat holder proposing the motion."),
) -> None:
    """Propose an allocate-funds motion; the money moves when it passes."""
    from kumiai.services import motions

    payload: dict[str, Any] = {"project": project, "amount": amount, "source": source}
    if site_rounds is not None:
        payload["site_rounds"] = site_rounds
    _proposed(
        motions.propose_motion(
            consortium(ctx), decision="allocate-funds", payload=payload, proposer=by
        )
    )


# -- spend and budget ----------------------------------------------------------------------
def budget_lines(info: "BudgetInfo") -> None:
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    console.print(
        f"Project [bold]{info.project}[/] (theme {info.theme or '—'}, lead {info.lead}): "
        f"budget {yen(info.allocated_yen)}, spent {yen(info.total_spent_yen)}, "
        + (
            f"[red]overspent by {yen(-info.left_yen)}[/]"
            if info.overspent
            else f"left {yen(info.left_yen)}"
        )
    )
    table = Table("category", "actual")
    for category, amount in info.spent_yen.items():
        table.add_row(category, yen(amount))
    console.print(table)
    q = info.compute
    if q.site_rounds is None:
        console.print(f"Compute: no quota; {q.used} site-rounds used")
    else:
        console.print(f"Compute quota: {q.site_rounds} site-rounds, {q.used} used, {q.left} left")


def _show_budget(ctx: typer.Context, project: str, as_json: bool) -> None:
    if remote_document(as_json, "/projects/{}/spend", project):
        return
    from kumiai.services import spend

    info = spend.project_budget(consortium(ctx), project)
    if as_json:
        print_json(info)
        return
    budget_lines(info)


@spend_app.command("show")
def spend_show(
    ctx: typer.Context, project: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """A project's budget against actual, by category, and what is left."""
    _show_budget(ctx, project, as_json)


def project_budget(
    ctx: typer.Context, project: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """A project's budget against actual (the same as `kumiai spend PROJECT`)."""
    _show_budget(ctx, project, as_json)


@spend_app.command("record")
def spend_record(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    category: str = typer.Option(..., help="personnel, compute, data, equipment or other."),
    amount: str = typer.Option(..., help="Whole yen."),
    description: str = typer.Option(..., help="What it paid for."),
    on: str = typer.Option(None, help="The day it was spent, YYYY-MM-DD (default today)."),
    by: str = typer.Option(..., help="The project's lead member; its node signs."),
) -> None:
    """Record money a project spent (its lead member only)."""
    from kumiai.services import spend

    info = spend.record_spend(
        consortium(ctx),
        project=project,
        category=category,
        amount=amount,
        description=description,
        spent_on=on,
        by=by,
    )
    budget_lines(info)


# -- milestones ----------------------------------------------------------------------------
@milestone_app.command("add")
def milestone_add(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    name: str = typer.Argument(..., help="A short name, e.g. first-model."),
    title: str = typer.Option(..., help="What is promised."),
    due: str = typer.Option(..., help="The due date, YYYY-MM-DD."),
    by: str = typer.Option(..., help="The project's lead member; its node signs."),
) -> None:
    """Set a milestone for a project."""
    from kumiai.services import milestones

    _milestone_lines(
        milestones.add_milestone(
            consortium(ctx), project=project, name=name, title=title, due=due, by=by
        )
    )


@milestone_app.command("evidence")
def milestone_evidence(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    name: str = typer.Argument(...),
    model: list[str] = typer.Option([], help="A model version of the project."),
    job: list[str] = typer.Option([], help="A job of the project."),
    document: list[Path] = typer.Option([], help="A file: its SHA-256 is recorded, not the file."),
    by: str = typer.Option(None, help="The project's lead member (default: the lead)."),
) -> None:
    """Attach evidence to a milestone."""
    from kumiai.services import milestones

    info = milestones.add_evidence(
        consortium(ctx),
        project=project,
        name=name,
        by=by,
        models=tuple(model),
        jobs=tuple(job),
        documents=tuple(document),
    )
    _milestone_lines(info)


@milestone_app.command("accept")
def milestone_accept(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    name: str = typer.Argument(...),
    reject: bool = typer.Option(False, "--reject", help="Propose to reject it instead."),
    by: str = typer.Option(..., help="The seat holder proposing the motion."),
) -> None:
    """Propose an accept-milestone motion (or, with --reject, one that rejects it)."""
    from kumiai.services import motions

    payload: dict[str, Any] = {"project": project, "milestone": name}
    if reject:
        payload["reject"] = True
    _proposed(
        motions.propose_motion(
            consortium(ctx), decision="accept-milestone", payload=payload, proposer=by
        )
    )


def _milestone_lines(info: "MilestoneInfo") -> None:
    from kumiai.interfaces.cli.context import console

    timing = f"[red]{info.timing}[/]" if info.late else info.timing
    console.print(
        f"Milestone [bold]{info.project}/{info.name}[/]: {info.title}; due {info.due}, "
        f"{info.status}, {timing}" + (f" (by {info.motion})" if info.motion else "")
    )
    for e in info.evidence:
        ref = f"{e.name} sha256:{e.ref}" if e.kind == "document" else e.ref
        console.print(f"  evidence: {e.kind} {ref}")


@milestone_app.command("list")
def milestone_list(
    ctx: typer.Context,
    project: str = typer.Argument(None, help="One project (default: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List milestones; a milestone past its due date and not accepted shows as late."""
    if remote_document(as_json, "/milestones", project=project):
        return
    from kumiai.services import milestones

    listing = milestones.list_milestones(consortium(ctx), project)
    if as_json:
        print_json(listing)
        return
    from kumiai.interfaces.cli.context import console

    console.print(milestone_table(listing))


def milestone_table(listing: "Sequence[MilestoneInfo]", title: str | None = None) -> "Table":
    """Milestones as rows; one past its due date and not accepted shows as late, in red."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        "project", "milestone", "due", "status", "timing", "evidence", "title", title=title
    )
    for m in listing:
        timing = f"[red]{m.timing}[/]" if m.late else m.timing
        table.add_row(
            m.project, m.name, m.due, m.status, timing, str(len(m.evidence)), escape(m.title)
        )
    return table


@milestone_app.command("show")
def milestone_show(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    name: str = typer.Argument(...),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a milestone, its evidence and the board's decision."""
    if remote_document(as_json, "/milestones/{}/{}", project, name):
        return
    from kumiai.services import milestones

    info = milestones.show_milestone(consortium(ctx), project, name)
    if as_json:
        print_json(info)
        return
    _milestone_lines(info)
