"""`kumiai analyse PROJECT`: DP counts, means, histograms, quantiles and crosstabs across sites.

The queries come from options or a JSON file; each node checks the signed job, charges the
ε in its own spend log and draws the noise (docs/analytics.md). Services and Rich load
inside the command.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kumiai.domain.errors import InvalidInput
from kumiai.interfaces.cli.context import consortium
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.training import read_public_domain

if TYPE_CHECKING:
    from rich.console import Console

    from kumiai.services.analysis import AnalysisOutcome


def _query_file(path: Path) -> list[object]:
    """The queries of a JSON file: a list of queries, or {"queries": [...]}."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"query file {path} cannot be read as JSON ({exc})") from None
    items = doc.get("queries") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InvalidInput(
            f"query file {path} holds no list of queries; write "
            '{"queries": [{"kind": "mean", "column": "age", "low": 0, "high": 120}]}'
        )
    return items


def _cell(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def analyse(
    ctx: typer.Context,
    project: str = typer.Argument(..., help="The project whose agreed datasets are analysed."),
    epsilon: float = typer.Option(
        None, help="Total ε per site for the whole analysis, split evenly across the queries."
    ),
    count: bool = typer.Option(False, "--count", help="Count the rows across sites."),
    mean: list[str] = typer.Option([], help="COLUMN[:LOW:HIGH], e.g. age:0:120."),
    histogram: list[str] = typer.Option([], help="COLUMN[:LOW:HIGH]:BINS, e.g. chol:0:600:12."),
    quantiles: list[str] = typer.Option(
        [], help="COLUMN[:LOW:HIGH]:P1,P2, e.g. age:0:120:0.25,0.5,0.75 (from a DP histogram)."
    ),
    crosstab: list[str] = typer.Option(
        [], help="A,B: two categorical columns, levels from --public-domain ('target': labels)."
    ),
    queries: Path = typer.Option(None, help="A JSON file of queries instead of (or with) these."),
    public_domain: Path = typer.Option(
        None,
        help='Public bounds and levels: {"bounds": {"age": [0, 120]}, "levels": {"sex": '
        '["Female", "Male"]}} — from a codebook, never from the data.',
    ),
    secure: bool = typer.Option(
        None,
        "--secure/--plain",
        help="Secure aggregation: the coordinator sees only the sites' sum (default: on when "
        "any agreement requires it).",
    ),
    dataset: list[str] = typer.Option(
        [], help="Only this dataset of the project (repeat for more; default: all)."
    ),
    by: str = typer.Option(None, help="The project member asking (default: its proposer)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """DP analytics across sites: every node charges its ε and adds its noise itself."""
    from kumiai.domain.analysis import Query, make_analysis, parse_queries
    from kumiai.domain.disclosure import PublicDomain
    from kumiai.services.analysis import analyse as run

    domain = PublicDomain.from_json(read_public_domain(public_domain) or "{}")
    asked = parse_queries(
        count=count,
        means=mean,
        histograms=histogram,
        quantiles=quantiles,
        crosstabs=crosstab,
        bounds=domain.bounds,
        levels=domain.levels,
    )
    if queries is not None:
        asked += [Query.from_dict(item) for item in _query_file(queries)]
    outcome = run(
        consortium(ctx),
        project,
        make_analysis(asked, epsilon),
        secure=secure,
        by=by,
        datasets=tuple(dataset),
    )
    if as_json:
        print_json(outcome.as_dict())
        return
    from kumiai.interfaces.cli.context import console

    print_outcome(console, project, outcome)


def print_outcome(console: "Console", project: str, outcome: "AnalysisOutcome") -> None:
    """The figures with their intervals, who took part and who refused (also `kumiai demo`)."""
    from rich.markup import escape
    from rich.table import Table

    level = f"{outcome.confidence:.0%}"
    aggregation = "secure aggregation" if outcome.secure else "plain aggregation"
    table = Table(
        "query",
        "ε",
        "figure",
        "value",
        f"{level} interval",
        "note",
        title=f"{project}: job {outcome.job_id}, ε={outcome.epsilon:g} per site, {aggregation}",
    )
    for result in outcome.results:
        # Escaped: column names such as "Tool wear [min]" would read as Rich markup.
        name, epsilon = escape(result.query.name), f"{result.epsilon:.3g}"
        for figure in result.figures:
            interval = "—" if figure.low is None else f"{_cell(figure.low)} – {_cell(figure.high)}"
            label, note = escape(figure.label), escape(figure.note)
            table.add_row(name, epsilon, label, _cell(figure.value), interval, note)
            name = epsilon = ""
    console.print(table)
    console.print(f"sites: {', '.join(outcome.sites)}")
    for dataset, reason in sorted(outcome.refused.items()):
        console.print(f"[yellow]refused[/] {dataset}: {reason}")
    if outcome.min_cohort:
        console.print(
            f"counts below the minimum cohort ({outcome.min_cohort}) are suppressed; "
            "recorded in the ledger as analysis.released"
        )
