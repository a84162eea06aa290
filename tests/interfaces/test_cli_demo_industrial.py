"""The tables `kumiai demo industrial` prints, without running the demo."""

from types import SimpleNamespace

from rich.console import Console

from kumiai.domain.analysis import HISTOGRAM, Query
from kumiai.domain.analysis_results import Figure, QueryResult
from kumiai.interfaces.cli.analyse import print_outcome
from kumiai.interfaces.cli.demo_industrial import gain_table
from kumiai.services.analysis import AnalysisOutcome
from kumiai.services.demo_industrial import SiteGain


def test_a_column_name_in_brackets_is_printed_as_written_not_read_as_markup() -> None:
    query = Query(HISTOGRAM, "Tool wear [min]", low=0.0, high=250.0, bins=1)
    figures = [Figure("[0, 250)", 9996.0, 9984.0, 10008.0, "[b]not bold[/b]")]
    outcome = AnalysisOutcome(
        "job-1", 1.0, True, 0.95, ["a-log", "b-log"], [QueryResult(query, 1.0, [1.0], figures)]
    )
    console = Console(record=True, width=200)
    print_outcome(console, "failure-prediction", outcome)
    text = console.export_text()
    assert "histogram(Tool wear [min])" in text
    assert "[0, 250)" in text and "[b]not bold[/b]" in text
    assert "9984 – 10008" in text


def test_the_gain_table_shows_every_factory_and_a_dash_where_none_was_personalised() -> None:
    gains = [
        SiteGain("kawasaki-works-log", 728, 38, 0.772, 0.409, None, False),
        SiteGain("nagoya-plant-log", 750, 21, 0.719, 0.701, 0.75, True),
    ]
    console = Console(record=True, width=200)
    console.print(gain_table(SimpleNamespace(gains=gains)))  # type: ignore[arg-type]
    lines = console.export_text().splitlines()
    rows = [[cell.strip() for cell in line.split("│")[1:8]] for line in lines if line[0] == "│"]
    assert rows == [
        ["kawasaki-works", "728", "38", "0.772", "0.409", "—", "no"],
        ["nagoya-plant", "750", "21", "0.719", "0.701", "0.750", "yes"],
    ]
