"""`kumiai budget`: each dataset's privacy budget, as the coordinator mirrors the nodes' logs."""

from typing import TYPE_CHECKING

import typer

from kumiai.interfaces.cli.context import consortium, number
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_document

if TYPE_CHECKING:
    from rich.table import Table

    from kumiai.services.privacy import BudgetLine

budget_app = typer.Typer(help="Privacy budgets per dataset.", invoke_without_command=True)


def budget_table(lines: "list[BudgetLine]") -> "Table":
    from rich.table import Table

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


def budget_document(line: "BudgetLine") -> dict[str, object]:
    """`left` is a property, so the dataclass alone would leave it out."""
    return {
        "dataset": line.dataset,
        "member": line.member,
        "lifetime": line.lifetime,
        "spent": line.spent,
        "committed": line.committed,
        "left": line.left,
        "by_project": line.by_project,
        "by_level": line.by_level,
    }


@budget_app.command("show")
def budget(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Per dataset: lifetime budget, spent, committed by running jobs, spend per project."""
    if remote_document(as_json, "/budget"):
        return
    from kumiai.services import privacy

    lines = privacy.budgets(consortium(ctx))
    if as_json:
        print_json([budget_document(line) for line in lines])
    else:
        from kumiai.interfaces.cli.context import console

        console.print(budget_table(lines))


@budget_app.callback(invoke_without_command=True)
def budget_default(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Privacy budgets per dataset (`kumiai budget`); `kumiai budget set` changes one."""
    if ctx.invoked_subcommand is None:
        budget(ctx, as_json)


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    dataset: str = typer.Argument(...),
    epsilon: float = typer.Option(..., help="Lifetime ε budget across all projects."),
) -> None:
    """The steward sets a dataset's lifetime ε budget, kept and enforced on its own node."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import privacy

    value = privacy.set_budget(consortium(ctx), dataset, epsilon)
    console.print(f"Dataset [bold]{dataset}[/] may spend at most ε={value:g} over its lifetime.")
