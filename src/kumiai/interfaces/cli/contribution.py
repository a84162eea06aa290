"""`kumiai contributions MODEL`: each member's Shapley share of a released model.

The plan (coalitions to retrain, extra ε per dataset, or the refusal) is shown before
anything runs; `--plan` stops there. Services load inside the command, so `--help` and
the rest of the CLI stay fast.
"""

import typer

from kumiai.interfaces.cli.context import consortium
from kumiai.interfaces.cli.output import JSON_OPTION, print_json


def contributions(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="A released model version, e.g. heart-v1."),
    metric: str = typer.Option("auc", help="Utility of a coalition's model: auc or accuracy."),
    plan_only: bool = typer.Option(False, "--plan", help="Show the plan and its cost only."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Share a model's value among its members (Shapley); record it in lineage and ledger."""
    from kumiai.domain.errors import InvalidInput
    from kumiai.interfaces.cli.context import errors
    from kumiai.services import contribution

    home = consortium(ctx)
    plan = contribution.plan_model_contributions(home, model_id)
    if not as_json or plan_only:
        if as_json:
            print_json(plan.as_dict())
            return
        charged = (
            f" ({plan.retrainings} more DP-SGD runs per site, charged at each node first)"
            if plan.retrainings
            else ""
        )
        errors.print(
            f"{plan.model}: {plan.method} Shapley over {len(plan.members)} members, at most "
            f"{plan.coalitions} coalition models of {plan.rounds} rounds; extra ε{charged}: "
            + ", ".join(f"{d} {e:.4g}" for d, e in plan.extra_epsilon.items()),
            highlight=False,
        )
    if plan.refusal is not None:
        raise InvalidInput(f"contributions to {plan.model} are refused: {plan.refusal}")
    if plan_only:
        return
    result = contribution.compute_contributions(home, plan, metric)
    if as_json:
        print_json(result.as_dict())
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    shares = result.shares
    table = Table("member (dataset)", "share", "± s.e.", title=f"{plan.model} · {metric}")
    for name, share in sorted(shares.shares.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{share:+.4f}", f"{shares.standard_errors.get(name, 0.0):.4f}")
    console.print(table)
    console.print(
        f"v(∅) {shares.empty:.4f} → v(all) {shares.grand:.4f} (released model: "
        f"{result.released}); {shares.evaluations} coalitions evaluated; recorded in the ledger"
    )
    if result.job is not None:
        console.print(
            f"charged at the nodes (job {result.job}): "
            + ", ".join(f"{d} ε={e:.4g}" for d, e in result.charged_epsilon.items())
        )
