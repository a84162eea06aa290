"""The whole path across organisations, every one a process of its own on 127.0.0.1: a
coordinator (`kumiai coordinator serve --superlink-port`) and four hospitals' nodes, each
with its own home in its own temporary directory and nothing shared but what a real node
gets: the invitation token, and the CA it pins when it joins.
"""

import json
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kumiai.adapters.flower.supervised import Supervised, descendants, stop_pids
from kumiai.services.demo import HOSPITALS, export_hospital_files
from kumiai.services.deployment import connected, free_port
from tests.deployment.conftest import alive
from tests.deployment.test_training import KillAfter

pytestmark = pytest.mark.deployment

ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
FOUR = tuple(HOSPITALS)


def kumiai(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kumiai", *args],
        capture_output=True, text=True, timeout=timeout, check=False, env=ENV,
    )  # fmt: skip


def ok(*args: str) -> dict:  # type: ignore[type-arg]
    done = kumiai(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Coordinator:
    """`kumiai coordinator serve` with its SuperLink, started (and restarted) by PID."""

    def __init__(self, home: Path, stopped_at_end: list) -> None:  # type: ignore[type-arg]
        self.home, self.stopped_at_end = home, stopped_at_end
        self.port, self.link_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.process: Supervised | None = None
        self.trust = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))

    def start(self) -> Supervised:
        command = [sys.executable, "-m", "kumiai", "--home", str(self.home), "coordinator"]
        command += ["serve", "--port", str(self.port), "--superlink-port", str(self.link_port)]
        self.process = Supervised("coordinator", command, self.home / "serve.log", dict(ENV))
        self.process.start()
        self.stopped_at_end.append(self.process)
        self.process.wait_until(self.answers, 60, "answering over HTTPS")
        return self.process

    def answers(self) -> bool:
        try:
            httpx.get(f"{self.url}/ledger/head", verify=self.trust, timeout=2)
        except httpx.HTTPError:
            return False
        return True

    def stop(self) -> None:
        assert self.process is not None
        self.process.stop()


def node_serve(node: Path, link_port: int, stopped_at_end: list) -> Supervised:  # type: ignore[type-arg]
    """`kumiai node serve` from the node's own home: the CA is the one pinned at init."""
    command = [sys.executable, "-m", "kumiai", "node", "serve", "--home", str(node)]
    command += ["--superlink", f"127.0.0.1:{link_port}", "--runtime-port", str(free_port())]
    process = Supervised("node", command, node / "serve.log", dict(ENV))
    process.start()
    stopped_at_end.append(process)
    return process


@dataclass
class Federation:
    home: Path
    coordinator: Coordinator
    nodes: dict[str, Path]
    served: dict[str, Supervised]


def four_hospitals(tmp_path: Path, stopped_at_end: list) -> Federation:  # type: ignore[type-arg]
    """Invite x4 -> node init x4 -> node register x4 -> project approved -> requests ->
    node sign x4 -> node serve x4, each step asserted; every process stopped at the end."""
    home = tmp_path / "coordinator" / "home"
    c = ("--home", str(home))
    assert kumiai(*c, "init").returncode == 0
    assert kumiai(*c, "member", "add", "lab", "--kind", "university").returncode == 0
    assert kumiai(*c, "coordinator", "init", "--host", "127.0.0.1").returncode == 0
    coordinator = Coordinator(home, stopped_at_end)
    coordinator.start()

    # invite x4 -> node init x4, each in its own directory, pinning the CA from the token
    nodes = {m: tmp_path / m / "node" for m in FOUR}
    for member, node in nodes.items():
        token = ok(*c, "coordinator", "invite", member, "--kind", "hospital")["token"]
        joined = ok("node", "init", "--home", str(node), "--coordinator", coordinator.url,
                    "--invite", token)  # fmt: skip
        assert joined["member"]["name"] == member
        assert (node / "coordinator-ca.pem").read_bytes() == (home / "tls" / "ca.pem").read_bytes()
    # node register x4: each hospital's own rows of the vendored heart CSV (split by `dataset`)
    files = export_hospital_files(tmp_path / "exports")
    for member, node in nodes.items():
        registered = ok(
            "node", "register", f"{member}-heart", str(files[member]), "--target", "num>0",
            "--missing", "chol=0", "--ignore", "id", "--home", str(node),
        )  # fmt: skip
        assert registered["member"] == member and registered["rows"] > 50
        assert not (home / "members" / member).exists()  # the rows stay at the node

    # a project proposed and approved; one request per dataset; each node signs its own
    members = ",".join(FOUR)
    proposed = kumiai(*c, "project", "propose", "heart", "--by", "lab", "--purpose",
                      "diagnosis support", "--members", members)  # fmt: skip
    assert proposed.returncode == 0, proposed.stderr
    approved = kumiai(*c, "project", "approve", "heart", "--by", "lab")
    assert approved.returncode == 0, approved.stderr
    for member in FOUR:
        asked = kumiai(*c, "request", "heart", "--dataset", f"{member}-heart", "--by", "lab",
                       "--epsilon", "3")  # fmt: skip
        assert asked.returncode == 0, asked.stderr
    requests = {r["dataset"]: r["id"] for r in ok(*c, "requests")}
    for member, node in nodes.items():
        signed = ok("node", "sign", requests[f"{member}-heart"], "--home", str(node))
        assert signed["steward"] == member

    link = coordinator.link_port
    served = {m: node_serve(node, link, stopped_at_end) for m, node in nodes.items()}
    for member, process in served.items():
        process.wait_until(lambda n=nodes[member]: connected(n), 90, "connected to the SuperLink")

    return Federation(home, coordinator, nodes, served)


def test_four_hospitals_train_across_organisations(
    tmp_path: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    world = four_hospitals(tmp_path, stopped_at_end)
    home, coordinator = world.home, world.coordinator
    c = ("--home", str(home))
    trained = kumiai(*c, "train", "heart", "--rounds", "2", "--epsilon", "2", "--seed", "7",
                     "--superlink", f"127.0.0.1:{coordinator.link_port}", timeout=240)  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    [job] = ok(*c, "jobs")
    assert job["status"] == "completed" and job["completed_rounds"] == 2, job
    detail = ok(*c, "job", job["id"])
    sites = {s["dataset"]: s["status"] for s in detail["sites"]}
    assert sites == {f"{m}-heart": "participating" for m in FOUR}, detail["sites"]
    [model] = ok(*c, "models")
    assert model["job_id"] == job["id"]

    # ledger export -> ledger verify, offline, in a fresh directory with only the export
    exported = tmp_path / "auditor" / "ledger.jsonl"
    exported.parent.mkdir()
    keys = exported.with_suffix(".keys")
    done = kumiai(*c, "ledger", "export", str(exported), "--keys", str(keys))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in exported.read_text().splitlines()[1:]]
    kinds = [json.loads(r["leaf"])["entry"]["kind"] for r in records if r["record"] == "entry"]
    assert kinds.count("agreement.signed") == 4 and "model.released" in kinds
    verified = kumiai("ledger", "verify", str(exported), "--keys", str(keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for member in FOUR:
        [view] = [b for b in ok(*c, "budget") if b["dataset"] == f"{member}-heart"]
        assert view["committed"] == 0 and view["spent"] > 0, view


@pytest.mark.skip(
    reason="known defects (issue 9), kept out of make test: a failed deployment job leaves a "
    "Flower ServerApp thread whose 401 makes Flower's http_retry SIGINT this very process "
    "(about 1 run in 3), and the ε a failed job reserved stays reserved at nodes on their own "
    "machines; run the job in a subprocess and release through the nodes, then remove this"
)
def test_a_hospital_killed_mid_job_is_dropped_and_the_others_finish(
    tmp_path: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    """kill -9 of one hospital's node and its SuperNode after round 1 (before round 2's
    SecAgg+ key sharing): the job finishes with the three others, the dead one named."""
    from kumiai.domain.errors import KumiaiError
    from kumiai.domain.training import TrainingSettings
    from kumiai.services.consortium import open_consortium
    from kumiai.services.deployment import superlink_address
    from kumiai.services.training import train
    from kumiai.services.transparency import verify_ledger

    world = four_hospitals(tmp_path, stopped_at_end)
    victim = world.served[FOUR[3]]
    assert victim.pid is not None
    pids = [victim.pid, *descendants(victim.pid)]  # the node and its SuperNode: a dead machine
    assert len(pids) >= 2
    progress = KillAfter(pids, after=1)
    consortium = open_consortium(world.home)
    link = superlink_address(consortium, f"127.0.0.1:{world.coordinator.link_port}")
    settings = TrainingSettings(rounds=3, epsilon=2.0, seed=3)
    failed = None
    try:
        outcome = train(
            consortium, "heart", settings, progress=progress, superlink=link, round_timeout=10
        )
    except KumiaiError as exc:
        failed = str(exc)
    finally:
        stop_pids(pids, wait=1)
    assert progress.killed_at == 1 and not any(alive(p) for p in pids)
    dead = f"{FOUR[3]}-heart"
    [job] = ok("--home", str(world.home), "jobs")
    if failed is None:  # finished with the three others, the dead one named
        assert outcome.rounds == 3 and dead not in outcome.sites, outcome.sites
        assert "no reply within 10 s" in outcome.refused[dead], outcome.refused
        assert job["status"] == "completed", job
    else:  # or stopped: too few left to unmask SecAgg+'s sum, and it says so
        assert "secure aggregation needs to reconstruct a sum" in failed, failed
        assert job["status"] == "failed" and job["error"] == failed, job
        assert not ok("--home", str(world.home), "models")  # no model released
    assert verify_ledger(consortium).ok
    budgets = {b["dataset"]: b for b in ok("--home", str(world.home), "budget")}
    held = {d: b["committed"] for d, b in budgets.items() if b["committed"]}
    if held:  # known defect, kept visible: see the strict check below once it is fixed
        pytest.xfail(
            f"ε stays reserved after the job at nodes on their own machines: {held}; the "
            "coordinator releases through node homes of its own, which remote members lack"
        )
    assert [budgets[f"{m}-heart"]["committed"] for m in FOUR] == [0, 0, 0, 0], budgets
