"""`kumiai model …`: show a model version, audit it at the nodes, print its card.

`kumiai model NAME` keeps meaning `kumiai model show NAME`. `card` only reads and loads no
NumPy; `audit` asks every node (docs/model-cards.md). Services load inside each command.
"""

import click
import typer
from typer.core import TyperGroup

from kumiai.domain.errors import InvalidInput
from kumiai.interfaces.cli.context import consortium
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_document


class _ShowByDefault(TyperGroup):
    """`kumiai model heart-v1` is `kumiai model show heart-v1`, as before the group existed."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


model_app = typer.Typer(
    cls=_ShowByDefault,
    help="A released model version: show it, audit it at the nodes, print its card.",
    no_args_is_help=True,
)


@model_app.command("card")
def model_card(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="A released model version, e.g. heart-v1."),
    form: str = typer.Option("md", "--format", help="md (Markdown) or json."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the model card: intended use, sites, metrics and gaps, calibration, privacy."""
    if form not in ("md", "json"):
        raise InvalidInput(f"--format {form!r} is not known; use md or json")
    if remote_document(as_json or form == "json", "/models/{}/card", model_id):
        return
    from kumiai.domain.model_card import card_markdown
    from kumiai.services.model_cards import model_card as build

    card = build(consortium(ctx), model_id)
    if as_json or form == "json":
        print_json(card)
        return
    print(card_markdown(card), end="")


@model_app.command("audit")
def model_audit(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="A released model version, e.g. heart-v1."),
    attribute: str = typer.Option(
        None, "--attribute", help="A categorical column to break the figures down by, e.g. sex."
    ),
    by: str = typer.Option(None, help="The project member asking (default: its proposer)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Have every site measure the model at its node for the card; record it in the ledger."""
    from kumiai.services.model_audit import audit_model

    done = audit_model(consortium(ctx), model_id, attribute=attribute, by=by)
    if as_json:
        print_json({"model": done.model, "entry": done.entry, **done.payload})
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("site", "attack AUC", "ε lower bound", "accounted ε", "verdict")
    for dataset, s in sorted(done.payload["sites"].items()):
        accounted = s["accounted_epsilon"]
        table.add_row(
            dataset,
            f"{s['membership']['auc']:.3f}",
            f"{s['epsilon_lower_bound']:.3f}",
            "—" if accounted is None else f"{accounted:.3f}",
            s["verdict"],
        )
    for dataset, reason in sorted(done.payload["refused"].items()):
        table.add_row(dataset, "refused", escape(reason), "", "")
    console.print(table)
    console.print(
        f"recorded in ledger entry {done.entry}; `kumiai model card {model_id}` shows the card"
    )
