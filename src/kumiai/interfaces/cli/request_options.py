"""The options of a data-use request, shared by `kumiai request` and `kumiai node request`:
one wording, one set of defaults, whichever side of the API a researcher asks from."""

from datetime import datetime

import typer

DATASET = typer.Option(..., help="The dataset to use.")
KINDS = typer.Option("train,evaluate", help="Job kinds: train, evaluate, statistics.")
ROUNDS = typer.Option(50, help="Most rounds any one job may run.")
EXPIRES = typer.Option("", help="Expiry (ISO date); default 180 days from now.")
EPSILON = typer.Option(None, help="ε cap for the project on this dataset (DP required).")
PLAIN_AGGREGATION = typer.Option(
    False, help="Let jobs run without secure aggregation (the coordinator sees updates)."
)
STATISTICS = typer.Option(
    "allowed",
    help="Aggregate statistics (summaries, scores) that may leave the node: allowed, dp "
    "(noised, paid from the ε budget) or forbidden.",
)
MIN_COHORT = typer.Option(
    0, help="Fewest training or test rows a site may release aggregates over."
)
CONTRIBUTION_ANALYSIS = typer.Option(
    False,
    help="Let the board compute this dataset's share of a model's value, by retraining "
    "coalitions that include this site alone (docs/contribution.md).",
)


def expiry(expires: str) -> datetime:
    """The request's expiry: the given ISO date, or 180 days from now."""
    from datetime import timedelta

    from kumiai.domain.clock import parse_iso, utc_now

    return parse_iso(expires, "expiry") if expires else utc_now() + timedelta(days=180)
