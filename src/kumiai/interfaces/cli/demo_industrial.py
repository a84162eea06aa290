"""`kumiai demo industrial`: four factories predict machine failures (docs/industrial.md)."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kumiai.interfaces.cli.context import number

if TYPE_CHECKING:
    from rich.table import Table

    from kumiai.services.demo_industrial import IndustrialReport


def gain_table(report: "IndustrialReport") -> "Table":
    """Each factory on its own test rows: alone, federated, personalised; who gains."""
    from rich.table import Table

    table = Table(
        "factory", "test rows", "failures", "local", "federated", "personalised", "gains",
        title="PR-AUC on each factory's own test rows (same split for every model)",
    )  # fmt: skip
    for row in report.gains:
        table.add_row(
            row.dataset.removesuffix("-log"),
            str(row.test_rows),
            str(row.failures),
            number(row.local),
            number(row.federated),
            number(row.personalised),
            "[green]yes" if row.gains else "[red]no",
        )
    return table


def demo_industrial(
    dir_: Path = typer.Option(
        Path("kumiai-demo-industrial"), "--dir", help="A fresh directory for the consortium."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="A 3-round training job: the whole story, weaker figures."
    ),
) -> None:
    """Four factories and a university: analytics, a federated MLP, per-site gain, a card."""
    # Lazy: the demo trains, which loads Flower and Ray; other commands must start fast.
    from dataclasses import replace

    from rich.markup import escape

    from kumiai.interfaces.cli.analyse import print_outcome
    from kumiai.interfaces.cli.context import console
    from kumiai.interfaces.cli.demo import ledger_lines
    from kumiai.interfaces.cli.progress import RichTrainingProgress
    from kumiai.services.demo_industrial import (
        DEMO_SETTINGS,
        EPSILON_CAP,
        MIN_COHORT,
        QUICK_ROUNDS,
        run_industrial_demo,
    )
    from kumiai.services.industrial import FACTORIES, PROJECT, THEME

    settings = replace(DEMO_SETTINGS, rounds=QUICK_ROUNDS) if quick else DEMO_SETTINGS
    console.print(
        f"Building the factory consortium in [bold]{dir_}[/]: {', '.join(FACTORIES)} and a "
        f"university. Project [bold]{PROJECT}[/] under theme {THEME[0]}; every steward "
        f"allows train, evaluate and statistics, ε cap {EPSILON_CAP:g}, minimum cohort "
        f"{MIN_COHORT}."
    )
    label = f"{PROJECT} · {settings.model} · DP ε={settings.epsilon:g}"
    with RichTrainingProgress(console, settings.rounds, label) as progress:
        report = run_industrial_demo(
            dir_, settings, progress, step=lambda what: console.print(f"[dim]→ {what}…")
        )
    odrl = report.odrl
    console.print(
        f"Agreement {odrl.terms['agreement_id']} ({odrl.steward}) exported as an ODRL 2.2 "
        f"policy to {report.policy} and imported back: signature valid, "
        f"{odrl.stored} to the agreement held here."
    )
    print_outcome(console, PROJECT, report.analysis)
    console.print(gain_table(report))
    console.print(
        f"[bold]{report.sites_gaining} of {len(report.gains)}[/] factories gain: the best "
        "consortium model (federated or personalised) scores at least the PR-AUC the factory "
        "reaches alone."
    )
    if report.personalise_refused:
        console.print(f"[yellow]personalisation refused[/]: {escape(report.personalise_refused)}")
    for dataset, reason in sorted(report.personalise_refusals.items()):
        console.print(f"[yellow]{dataset}[/] refused to personalise: {escape(reason)}")
    # As `kumiai model card` prints it: Markdown, to read or to paste.
    console.print(report.card_path.read_text(), markup=False, highlight=False, soft_wrap=True)
    ledger_lines(report.ledger)
    model = report.outcome.model_id
    console.print(
        f"Outputs in {dir_}: the model card {report.card_path}, the ODRL policy "
        f"{report.policy}, the ledger export {report.export}.\n"
        f"Explore: kumiai --home {dir_} model card {model}   |   kumiai --home {dir_} budget"
        f"   |   kumiai --home {dir_} ledger show --type analysis.released"
    )
