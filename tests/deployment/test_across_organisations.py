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
from pathlib import Path

import httpx
import pytest

from kumiai.adapters.flower.supervised import Supervised
from kumiai.services.demo import HOSPITALS, export_hospital_files
from kumiai.services.deployment import connected, free_port

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


def test_four_hospitals_train_across_organisations(
    tmp_path: Path,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
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

    # The SuperLink registers the members' SuperNode keys when it starts: the coordinator is
    # restarted so that it admits the four nodes that joined since.
    coordinator.stop()
    coordinator.start()
    link = coordinator.link_port
    served = {m: node_serve(node, link, stopped_at_end) for m, node in nodes.items()}
    for member, process in served.items():
        process.wait_until(lambda n=nodes[member]: connected(n), 90, "connected to the SuperLink")

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
