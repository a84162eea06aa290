"""`docs/operations.md`, "Run a consortium across organisations", followed literally: the
fenced blocks marked `<!-- walkthrough: run -->` (commands that return) and
`<!-- walkthrough: background -->` (a terminal left running) are run in the doc's order, in
an empty directory, with `kumiai` and `python` those of this environment. Only what a reader
types for themselves is filled in: the request ids (`REQ_A`, `REQ_B`) and free ports in
place of the doc's fixed ones, so that parallel runs do not collide.
"""

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import kumiai
from kumiai.adapters.flower.supervised import Supervised
from kumiai.services.deployment import connected, free_port

pytestmark = pytest.mark.deployment

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SECTION = "## Run a consortium across organisations"
MARK = re.compile(r"<!-- walkthrough: (run|background) -->\n```\n(.*?)```", re.S)
PORTS = ("8443", "9092", "9101", "9102")  # the doc's ports, each replaced by a free one


@dataclass(frozen=True)
class Step:
    kind: str  # "run" or "background"
    command: str  # one shell command, continuation lines joined


def walkthrough(text: str) -> list[Step]:
    """The section's marked blocks, one step per command, comments dropped."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    steps = []
    for kind, block in MARK.findall(text[start : end if end != -1 else None]):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                steps.append(Step(kind, command.split("  #")[0].strip()))
    return steps


def test_the_walkthrough_has_every_terminal_in_order() -> None:
    """The extraction finds the walkthrough, so the long test below cannot pass vacuously."""
    steps = walkthrough(DOC.read_text())
    background = [s.command for s in steps if s.kind == "background"]
    assert background == [
        "kumiai --home coord coordinator serve --port 8443 --superlink-port 9092",
        "kumiai node serve --home st-mary --superlink 127.0.0.1:9092 --runtime-port 9101",
        "kumiai node serve --home kita --superlink 127.0.0.1:9092 --runtime-port 9102",
    ]
    commands = [s.command for s in steps]
    assert commands[0].startswith("python -c ")
    verify = commands.index("kumiai ledger verify ledger.jsonl --keys keys.json")
    first_join = min(i for i, c in enumerate(commands) if "node init" in c)
    assert commands.index(background[0]) < first_join
    train = next(i for i, c in enumerate(commands) if " train " in c)
    assert commands.index(background[2]) < train < verify


def _tools(folder: Path) -> dict[str, str]:
    """`kumiai` and `python` on PATH, as for a reader who installed kumiai."""
    folder.mkdir()
    for name, run in (("kumiai", f'"{sys.executable}" -m kumiai'), ("python", sys.executable)):
        tool = folder / name
        tool.write_text(f'#!/bin/sh\nexec {run} "$@"\n')
        tool.chmod(0o755)
    source = str(Path(kumiai.__file__).resolve().parents[1])
    return {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": source,
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }


def _ready(step: str, where: Path, log: Path) -> bool:
    if " node serve " in f" {step} ":
        return connected(where / step.split("--home ")[1].split()[0])
    return "Serving coord at" in log.read_text(errors="replace")


def test_a_newcomer_runs_a_coordinator_and_two_nodes_as_written(
    tmp_path: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    env = _tools(tmp_path / "bin")
    here = tmp_path / "walk"
    here.mkdir()
    ports = {port: str(free_port()) for port in PORTS}
    ids: dict[str, str] = {}
    for number, step in enumerate(walkthrough(DOC.read_text())):
        command = re.sub(r"\b(8443|9092|9101|9102)\b", lambda m: ports[m[1]], step.command)
        command = command.replace("REQ_A", ids.get("st-mary-heart", "REQ_A"))
        command = command.replace("REQ_B", ids.get("kita-heart", "REQ_B"))
        if step.kind == "background":
            log = tmp_path / f"terminal-{number}.log"
            terminal = ["bash", "-c", f"cd {shlex.quote(str(here))} && exec {command}"]
            process = Supervised("terminal", terminal, log, env)
            process.start()
            stopped_at_end.append(process)
            ready = functools.partial(_ready, step.command, here, log)
            process.wait_until(ready, 120, "ready")
            continue
        done = subprocess.run(
            ["bash", "-c", command], cwd=here, env=env, capture_output=True, text=True,
            timeout=420, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{step.command}\n{done.stdout}\n{done.stderr}"
        if command.endswith("requests --json"):
            ids = {r["dataset"]: r["id"] for r in json.loads(done.stdout)}
        if " ledger verify " in command:
            assert done.stdout.startswith("verified ledger.jsonl: "), done.stdout

    def read(*args: str) -> list:  # type: ignore[type-arg]
        out = subprocess.run(
            ["kumiai", "--home", "coord", *args, "--json"], cwd=here, env=env,
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return json.loads(out.stdout)

    models = read("models")
    assert [(m["id"], m["lineage"]["datasets"]) for m in models] == [
        ("heart-v1", ["kita-heart", "st-mary-heart"])
    ], models
    spent = {row["dataset"]: row["spent"] for row in read("budget")}
    assert set(spent) == {"kita-heart", "st-mary-heart"}
    assert all(0.9 < epsilon <= 1.0 for epsilon in spent.values()), spent
    for node in ("st-mary", "kita"):  # the node's own signed record of the spend
        assert (here / node / "privacy" / f"{node}-heart.spend.jsonl").stat().st_size > 0
