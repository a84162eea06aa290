"""`kumiai personalise MODEL`: every site fine-tunes a released model at its own node.

Only each site's scores on its own test rows come back; the personalised models stay at
the nodes (docs/privacy.md#personalisation). Services load inside the command.
"""

import typer

from kumiai.interfaces.cli.context import consortium
from kumiai.interfaces.cli.output import JSON_OPTION, print_json


def personalise(
    ctx: typer.Context,
    model_id: str = typer.Argument(..., help="A released model version, e.g. heart-v1."),
    epochs: int | None = typer.Option(
        None,
        help="Local epochs of fine-tuning at each node, 1 to 20 (default: the slice a DP job "
        "reserved, else 5).",
    ),
    by: str = typer.Option(None, help="The project member asking (default: its proposer)."),
    proximal_mu: float | None = typer.Option(
        None,
        help="A model trained without DP: fit each site's rows to the optimum with this pull "
        "back to the model (e.g. 0.01) instead of epochs of SGD.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fine-tune a released model at each site's node; print each site's scores.

    A DP-SGD model is fine-tuned with DP-SGD; each node charges the extra ε first.
    """
    from kumiai.services.personalise import personalise as run

    result = run(consortium(ctx), model_id, epochs=epochs, by=by, proximal_mu=proximal_mu)
    sites = {d: s.as_dict() for d, s in result.scores.items()}
    if as_json:
        print_json(
            {
                "model": result.model,
                "epochs": result.epochs,
                "sites": sites,
                "refused": result.refused,
                "charged": result.charged,
                "job": result.job,
                "proximal_mu": result.proximal_mu,
            }
        )
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("dataset", "test rows", "accuracy", "AUC", title=f"{result.model} personalised")
    for dataset, score in sorted(sites.items()):
        auc = score["auc"]
        table.add_row(
            dataset,
            str(score["examples"]),
            f"{score['accuracy']:.3f}",
            "—" if auc is None else f"{auc:.3f}",
        )
    for dataset, reason in sorted(result.refused.items()):
        table.add_row(dataset, "refused", reason, "")
    console.print(table)
    for dataset, epsilon in sorted(result.charged.items()):
        console.print(f"{dataset}: ε={epsilon:.3f} charged in its node's spend log")
    console.print("the personalised models stay at the nodes; recorded in the ledger")
