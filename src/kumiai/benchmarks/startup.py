"""Start-up time of the commands that only read, as a user runs them.

Each command runs in a fresh `python -m kumiai` process against a small consortium with one
finished job and its model: wall-clock seconds, the median of `runs` runs, interleaved so
that a burst of load on the machine spreads over every command. Target: 0.5 s each.
Bytecode is cached (in a private prefix, after one untimed warm-up run per command) as it
is for an installed package, even where PYTHONDONTWRITEBYTECODE is set. The test suite
checks what these commands import (never Flower, Ray, dp-accounting or scikit-learn),
never how long they take.
"""

import os
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
        "ledger show": ["ledger", "show"],
        "ledger prove": ["ledger", "prove", "1"],
        "ledger export": ["ledger", "export", str(export)],
        "ledger verify": ["ledger", "verify", str(export)],
    }


def _seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv[3:])}` failed: {result.stderr.strip()[-500:]}")
    return elapsed


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
        kumiai = [sys.executable, "-m", "kumiai"]
        for args in table.values():  # warm-up: `ledger export` first, `verify` reads its file
            _seconds(kumiai + args, env)
        times: dict[str, list[float]] = {name: [] for name in table}
        interpreter: list[float] = []
        for attempt in range(runs):
            log(f"run {attempt + 1} of {runs}")
            interpreter.append(_seconds([sys.executable, "-c", "pass"], env))
            for name, args in table.items():
                times[name].append(_seconds(kumiai + args, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "target_seconds": TARGET_SECONDS,
        "runs": runs,
        "python_seconds": statistics.median(interpreter),  # the interpreter alone, for scale
        "commands": {
            name: {"seconds": round(seconds, 3), "meets_target": seconds <= TARGET_SECONDS}
            for name, seconds in medians.items()
        },
        "all_meet_target": all(s <= TARGET_SECONDS for s in medians.values()),
        "slowest": max(medians, key=lambda name: medians[name]),
    }
