"""`kumiai demo`: a whole consortium in a fresh directory, trained and compared.

`kumiai demo` is the heart-disease story; `kumiai demo industrial` the factories'
(interfaces.cli.demo_industrial, registered here so the group stays one line in main.py).
"""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kumiai.interfaces.cli.budget import budget_table
from kumiai.interfaces.cli.context import number
from kumiai.interfaces.cli.demo_industrial import demo_industrial

if TYPE_CHECKING:
    from rich.table import Table

    from kumiai.domain.audit import AuditReport
    from kumiai.domain.metrics import SiteScore
    from kumiai.services.demo import DemoReport


def _cells(score: "SiteScore | None") -> tuple[str, str]:
    return ("—", "—") if score is None else (number(score.accuracy), number(score.auc))


def comparison_table(report: "DemoReport") -> "Table":
    """Local-only, federated and pooled scores per hospital, on the same test rows."""
    from rich.table import Table

    from kumiai.domain.metrics import combine  # lazy: numpy; only the demo needs it

    outcome = report.outcome
    table = Table(
        "hospital",
        "n",
        "local acc",
        "AUC",
        "fed. acc",
        "AUC",
        "pooled acc",
        "AUC",
        title="Test accuracy and AUC per hospital, same split for every model",
    )
    table.columns[0].no_wrap = True
    table.columns[4].min_width = 8  # room for 'refused'
    for dataset, local in report.local.items():
        fed = outcome.sites.get(dataset)
        if dataset in outcome.refused:
            fed_cells = ("[yellow]refused", "—")
        elif fed is None:
            fed_cells = ("—", "—")
        else:
            fed_cells = (number(fed["accuracy"]), number(fed["auc"]))
        table.add_row(
            dataset.removesuffix("-heart"),
            str(local.examples),
            *_cells(local),
            *fed_cells,
            *_cells(report.pooled.get(dataset)),
        )
    took_part = combine([report.local[d] for d in outcome.sites])
    table.add_row(
        "[bold]all taking part",
        str(took_part.examples),
        *_cells(took_part),
        number(outcome.overall.get("accuracy")),
        number(outcome.overall.get("auc")),
        *_cells(combine(list(report.pooled.values()))),
    )
    return table


def _association_lines(report: "DemoReport") -> None:
    """Contribution shares, the spin-out's licence and the royalties, verified offline."""
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    story = report.association
    budget = story.budget
    spent = ", ".join(f"{c} ¥{y:,}" for c, y in sorted(budget.spent_yen.items()) if y)
    console.print(
        f"Project {budget.project} (theme {budget.theme}): the board allocated "
        f"¥{budget.allocated_yen:,} and a compute quota of {budget.compute.site_rounds} "
        f"site-rounds ({budget.compute.used} used); "
        f"spent {spent}; ¥{budget.left_yen:,} left. Milestone [bold]{story.milestone}[/] was "
        f"met by the released model and accepted by board vote."
    )
    shares = story.contributions.shares
    charged = story.contributions.charged_epsilon
    table = Table(
        "hospital", "Shapley share (AUC)", "extra ε charged", "royalty (yen)",
        title=f"Each hospital's contribution to {report.outcome.model_id}, and its royalty",
    )  # fmt: skip
    payouts = story.revenue.payouts
    for dataset, share in sorted(shares.shares.items()):
        member = dataset.removesuffix("-heart")  # the demo names each dataset after its member
        table.add_row(
            member,
            f"{share:+.4f}",
            number(charged.get(dataset)),
            f"{payouts.get(member, 0):,}",
        )
    console.print(table)
    revenue = story.revenue
    console.print(
        f"The board spun out [bold]{story.spinout}[/] and licensed the model to it "
        f"({story.licence}, royalty 5%). It reported ¥{revenue.revenue_yen:,} for "
        f"{revenue.period}: royalty ¥{revenue.royalty_yen:,}, of which the association keeps "
        f"¥{revenue.association_yen:,} under its charter and the hospitals share the rest by "
        "contribution."
    )
    check = story.royalties
    verdict = "[green]match to the yen[/]" if check.ok else "[red]do NOT match[/]"
    console.print(
        f"Royalties recomputed offline from {check.export} alone: {check.distributions} "
        f"distribution(s) {verdict} (kumiai royalties verify {check.export})."
    )


def ledger_lines(audit: "AuditReport") -> None:
    """The offline verification's verdict: its counts and root, or each finding."""
    from rich.markup import escape

    from kumiai.interfaces.cli.context import console

    if audit.ok:
        console.print(
            f"[green]Ledger verified offline[/]: {audit.entries} signed entries, "
            f"{audit.heads} signed tree heads, {audit.cosignatures} cosignatures by the "
            f"members' nodes; root {audit.root[:16]}…"
        )
    else:
        for finding in audit.findings:
            console.print(f"[red]ledger problem[/] {escape(str(finding))}")


demo_app = typer.Typer(
    help="A whole consortium in a fresh directory, trained and compared: `kumiai demo` (four "
    "hospitals) or `kumiai demo industrial` (four factories).",
    invoke_without_command=True,
)


@demo_app.callback()
def demo(
    ctx: typer.Context,
    dir_: Path = typer.Option(
        Path("kumiai-demo"), "--dir", help="A fresh directory for the demo consortium."
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Then serve the API and the dashboard on 127.0.0.1 (plain HTTP)."
    ),
    port: int = typer.Option(8000, help="The port for --serve."),
) -> None:
    """Four hospitals, a university and a company train a heart-disease model together."""
    if ctx.invoked_subcommand is not None:
        return
    # Lazy: the demo trains, which loads Flower and Ray; other commands must start fast.
    from rich.markup import escape

    from kumiai.interfaces.cli.context import console
    from kumiai.interfaces.cli.progress import RichTrainingProgress
    from kumiai.services.demo import DEMO_SETTINGS, HOSPITALS, PROJECT, run_demo

    console.print(
        f"Building the demo consortium in [bold]{dir_}[/]: {', '.join(HOSPITALS)}, "
        f"a university and a company. Every member signs the charter and the board "
        f"approves project [bold]{PROJECT}[/] by vote. One hospital's steward refuses."
    )
    label = f"{PROJECT} · {DEMO_SETTINGS.strategy} · DP ε={DEMO_SETTINGS.epsilon:g}"
    with RichTrainingProgress(console, DEMO_SETTINGS.rounds, label) as progress:
        report = run_demo(dir_, DEMO_SETTINGS, progress)
    console.print(comparison_table(report))
    console.print(budget_table(report.budgets))
    for dataset, reason in report.demo.refused.items():
        console.print(
            f"[yellow]{dataset}[/]: its steward refused the request "
            f'("{escape(reason)}"), so its node refused the job.'
        )
    _association_lines(report)
    outcome = report.outcome
    ledger_lines(report.audit)
    console.print(
        f"Model [bold]{outcome.model_id}[/] released from job {outcome.job_id}. Local = each "
        "hospital alone; pooled = the participating hospitals' rows in one place, a yardstick "
        "only this one-machine demo can build.\n"
        f"Explore: kumiai --home {dir_} models   |   kumiai --home {dir_} job {outcome.job_id}"
        f"   |   kumiai --home {dir_} ledger show"
    )
    if serve:
        from kumiai.interfaces.web.server import dashboard_url, serve_local

        console.print(
            f"Dashboard: [bold]{dashboard_url(port)}[/] (the API at /, its routes at /docs); "
            "plain HTTP on this machine only; Ctrl-C stops."
        )
        serve_local(dir_, port)


demo_app.command("industrial")(demo_industrial)
