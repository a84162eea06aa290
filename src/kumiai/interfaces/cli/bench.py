"""`kumiai bench NAME`: the benchmarks in kumiai.benchmarks, with their figures as JSON."""

import json

import typer

from kumiai.domain.errors import InvalidInput


def bench(
    name: str = typer.Argument(..., help="Benchmark name, e.g. heart-disease."),
    seeds: int = typer.Option(5, help="Repetitions with different split seeds."),
    rounds: int = typer.Option(
        None, help="Federated rounds per run (default: the benchmark's own, e.g. 50, 30)."
    ),
    sizes: str = typer.Option("", help="Ledger sizes, e.g. 100000,1000000 (ledger only)."),
    runs: int = typer.Option(None, help="Timed runs per command, median kept (startup only)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object only."),
) -> None:
    """Run a benchmark; progress goes to stderr, results to stdout."""
    from kumiai.benchmarks import run_benchmark  # lazy: benchmarks load Flower and Ray
    from kumiai.interfaces.cli.context import console, errors

    try:
        parsed = tuple(int(s) for s in sizes.split(",") if s.strip())
    except ValueError:
        raise InvalidInput(f"--sizes {sizes!r} is not a comma-separated list of integers") from None
    result = run_benchmark(
        name,
        seeds=seeds,
        rounds=rounds,
        sizes=parsed,
        runs=runs,
        log=(lambda line: errors.print(line, highlight=False)),
    )
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        console.print_json(json.dumps(result, sort_keys=True))
