"""Start-up time of the commands that only read, as a user runs them.

Each command runs in a fresh `python -m kumiai` process against a small consortium with one
finished job and its model: wall-clock and CPU seconds, the medians of `runs` runs,
interleaved so that a burst of load on the machine spreads over every command. Target:
0.5 s each (wall-clock).
Floors are timed the same way in the same run (the bare interpreter, `import typer`, and
`import typer, sqlalchemy.orm`), so figures from a loaded machine can still be compared.
Bytecode is cached (in a private prefix, after one untimed warm-up run per command) as it
is for an installed package, even where PYTHONDONTWRITEBYTECODE is set. The test suite
checks what these commands import (never Flower, Ray, dp-accounting or scikit-learn),
never how long they take.
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from kumiai.services.agreements import list_agreements
from kumiai.services.demo import DEMO_SETTINGS, build_demo_consortium

TARGET_SECONDS = 0.5
TRAINING = replace(DEMO_SETTINGS, rounds=2)  # enough for a job, rounds, a model and spend


def commands(job: str, model: str, agreement: str, export: Path) -> dict[str, list[str]]:
    """The read-only commands, named as a user types them, with real arguments."""
    return {
        "--help": ["--help"],
        "member list": ["member", "list"],
        "dataset list": ["dataset", "list"],
        "dataset show": ["dataset", "show", "cleveland-clinic-heart"],
        "project list": ["project", "list"],
        "project show": ["project", "show", "heart-disease"],
        "requests": ["requests"],
        "agreement list": ["agreement", "list"],
        "agreement show": ["agreement", "show", agreement],
        "jobs": ["jobs"],
        "job": ["job", job],
        "models": ["models"],
        "model": ["model", model],
        "budget": ["budget"],
        "budget show": ["budget", "show"],
        "ledger show": ["ledger", "show"],
        "ledger prove": ["ledger", "prove", "1"],
        "ledger export": ["ledger", "export", str(export)],
        "ledger verify": ["ledger", "verify", str(export)],
    }


FLOORS = {
    # What no command can beat, measured in the same run: the interpreter, the CLI framework,
    # and the CLI framework with the ORM that every command reading the database needs.
    "python -c pass": "pass",
    "import typer": "import typer",
    "import typer, sqlalchemy.orm": "import typer, sqlalchemy.orm",
}


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of `argv` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv[1:])}` failed: {result.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _medians(samples: list[tuple[float, float]]) -> dict[str, Any]:
    return {
        "median_seconds": round(statistics.median(s[0] for s in samples), 3),
        "median_cpu_seconds": round(statistics.median(s[1] for s in samples), 3),
    }


def run(*, runs: int = 5, log: Any, **_: Any) -> dict[str, Any]:
    from kumiai.services.training import train  # lazy: Flower and Ray, for the setup only

    with tempfile.TemporaryDirectory(prefix="kumiai-startup-bench-") as tmp:
        home = Path(tmp) / "consortium"
        log("building a small consortium and training one 2-round job (Ray starts once)…")
        demo = build_demo_consortium(home)
        outcome = train(demo.consortium, demo.project, TRAINING)
        agreement = list_agreements(demo.consortium)[0].id
        table = commands(outcome.job_id, outcome.model_id, agreement, Path(tmp) / "ledger.jsonl")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(KUMIAI_HOME=str(home), COLUMNS="120", PYTHONPYCACHEPREFIX=str(Path(tmp) / "pyc"))
        argvs = {name: [sys.executable, "-c", code] for name, code in FLOORS.items()}
        argvs.update(
            {name: [sys.executable, "-m", "kumiai", *args] for name, args in table.items()}
        )
        for argv in argvs.values():  # warm-up: `ledger export` first, `verify` reads its file
            _time(argv, env)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in argvs}
        for attempt in range(runs):
            log(f"run {attempt + 1} of {runs}")
            for name, argv in argvs.items():
                samples[name].append(_time(argv, env))
    figures = {name: _medians(values) for name, values in samples.items()}
    timed = {name: figures[name] for name in table}
    for figure in timed.values():
        figure["target"] = TARGET_SECONDS
        figure["target_met"] = figure["median_seconds"] <= TARGET_SECONDS
    return {
        "target_seconds": TARGET_SECONDS,
        "runs": runs,
        "floors": {name: figures[name] for name in FLOORS},
        "commands": timed,
        "all_meet_target": all(f["target_met"] for f in timed.values()),
        "slowest": max(timed, key=lambda name: timed[name]["median_seconds"]),
    }
