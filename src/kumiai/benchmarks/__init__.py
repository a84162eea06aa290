"""kumiai's benchmarks, reachable as `kumiai bench NAME --json` and from nowhere else.

Speed and quality targets live here, never in the test suite: these machines are noisy,
so each benchmark compares figures measured within one run.
"""

from collections.abc import Callable
from typing import Any

from kumiai.domain.errors import InvalidInput

Log = Callable[[str], None]


def _agent(**options: Any) -> Any:
    from kumiai.benchmarks.agent import run

    return run(**options)


def _heart_disease(**options: Any) -> Any:
    from kumiai.benchmarks.heart_disease import run

    return run(**options)


def _contribution(**options: Any) -> Any:
    from kumiai.benchmarks.contribution import run

    return run(**options)


def _industrial(**options: Any) -> Any:
    from kumiai.benchmarks.industrial import run

    return run(**options)


def _ledger(**options: Any) -> Any:
    from kumiai.benchmarks.ledger import run

    return run(**options)


def _privacy(**options: Any) -> Any:
    from kumiai.benchmarks.privacy import run

    return run(**options)


def _attacks(**options: Any) -> Any:
    from kumiai.benchmarks.attacks import run

    return run(**options)


def _overhead(**options: Any) -> Any:
    from kumiai.benchmarks.overhead import run

    return run(**options)


def _startup(**options: Any) -> Any:
    from kumiai.benchmarks.startup import run

    return run(**options)


BENCHMARKS: dict[str, Callable[..., Any]] = {
    "agent": _agent,
    "attacks": _attacks,
    "contribution": _contribution,
    "heart-disease": _heart_disease,
    "industrial": _industrial,
    "ledger": _ledger,
    "overhead": _overhead,
    "privacy": _privacy,
    "startup": _startup,
}
# Options only some benchmarks take; passing them elsewhere is a mistake, said as one.
ONLY_FOR = {"sizes": "ledger", "runs": "startup"}


def run_benchmark(
    name: str,
    *,
    seeds: int,
    rounds: int | None,
    sizes: tuple[int, ...],
    log: Log,
    runs: int | None = None,
) -> Any:
    if name not in BENCHMARKS:
        raise InvalidInput(f"no benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))}")
    if (
        seeds < 1
        or (rounds is not None and rounds < 1)
        or any(s < 2 for s in sizes)
        or (runs is not None and runs < 1)
    ):
        raise InvalidInput("--seeds, --rounds and --runs must be at least 1, --sizes at least 2")
    options: dict[str, Any] = {"seeds": seeds, "log": log}
    if (
        rounds is not None
    ):  # otherwise each benchmark's own (heart-disease 50, overhead 30, contribution 20)
        options["rounds"] = rounds
    for option, value in (("sizes", sizes), ("runs", runs)):
        if value:
            if ONLY_FOR[option] != name:
                raise InvalidInput(f"--{option} applies to `kumiai bench {ONLY_FOR[option]}` only")
            options[option] = value
    return BENCHMARKS[name](**options)
