"""kumiai's benchmarks, reachable as `kumiai bench NAME --json`.

Speed and quality targets live here, never in the test suite: these machines are noisy,
so each benchmark compares figures measured within one run.
"""

from collections.abc import Callable
from typing import Any

from kumiai.domain.errors import InvalidInput

Log = Callable[[str], None]


def _heart_disease(**options: Any) -> Any:
    from benchmarks.heart_disease import run

    return run(**options)


def _ledger(**options: Any) -> Any:
    from benchmarks.ledger import run

    return run(**options)


def _privacy(**options: Any) -> Any:
    from benchmarks.privacy import run

    return run(**options)


def _attacks(**options: Any) -> Any:
    from benchmarks.attacks import run

    return run(**options)


BENCHMARKS: dict[str, Callable[..., Any]] = {
    "attacks": _attacks,
    "heart-disease": _heart_disease,
    "ledger": _ledger,
    "privacy": _privacy,
}


def run_benchmark(name: str, *, seeds: int, rounds: int, sizes: tuple[int, ...], log: Log) -> Any:
    if name not in BENCHMARKS:
        raise InvalidInput(f"no benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))}")
    if seeds < 1 or rounds < 1 or any(s < 2 for s in sizes):
        raise InvalidInput("--seeds and --rounds must be at least 1, --sizes at least 2")
    options: dict[str, Any] = {"seeds": seeds, "rounds": rounds, "log": log}
    if sizes:
        options["sizes"] = sizes
    return BENCHMARKS[name](**options)
