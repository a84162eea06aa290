"""The whole path across organisations, every one a process of its own on 127.0.0.1: a
coordinator (`kumiai coordinator serve --superlink-port`) and four hospitals' nodes, each
with its own home in its own temporary directory and nothing shared but what a real node
gets: the invitation token, and the CA it pins when it joins.
"""

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kumiai.adapters.flower.supervised import Supervised, descendants, stop_pids
from kumiai.domain.errors import KumiaiError
from kumiai.services.demo import HOSPITALS, export_hospital_files
from kumiai.services.deployment import connected, free_port, supernode_log
from tests.deployment.conftest import alive, stop_every

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


def verified_offline(home: Path, auditor: Path) -> list[str]:
    """`ledger export` -> `ledger verify`, offline, in a fresh directory with only the
    export; returns the kinds of the entries exported."""
    auditor.mkdir(parents=True)
    exported, keys = auditor / "ledger.jsonl", auditor / "ledger.keys"
    done = kumiai("--home", str(home), "ledger", "export", str(exported), "--keys", str(keys))
    assert done.returncode == 0, done.stderr
    verified = kumiai("ledger", "verify", str(exported), "--keys", str(keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    records = [json.loads(line) for line in exported.read_text().splitlines()[1:]]
    return [json.loads(r["leaf"])["entry"]["kind"] for r in records if r["record"] == "entry"]


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
                       "--epsilon", "5")  # fmt: skip
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


def test_four_hospitals_train_across_organisations(tmp_path: Path, federation: "Struck") -> None:
    """The whole path on the federation the kill tests below share (built once: about a
    minute), before they strike it."""
    world = federation
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

    kinds = verified_offline(home, tmp_path / "auditor")
    assert kinds.count("agreement.signed") == 4 and "model.released" in kinds
    for member in FOUR:
        [view] = [b for b in ok(*c, "budget") if b["dataset"] == f"{member}-heart"]
        assert view["committed"] == 0 and view["spent"] > 0, view


# -- kill -9 of a hospital's node mid-job ------------------------------------------------
#
# One federation serves both cases (building one costs about a minute): the hospital killed
# in the first is started again, from its own home, before the second.

VICTIM = FOUR[3]
ROUNDS = 2  # the node dies in the last one: a deployment round costs about 20 s here
ROUND_TIMEOUT = 10  # seconds a round (and each SecAgg+ stage) waits for a node's reply
AFTER_KEY_SHARING = "round 2 train, secure aggregation stage collect_masked_vectors: working"


@dataclass
class Struck(Federation):
    """A federation shared by the kill tests, with the processes it started (a node started
    again goes there too): all stopped by PID when the module's tests are done."""

    started: list  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Struck]:
    started: list = []  # type: ignore[type-arg]
    try:
        world = four_hospitals(tmp_path_factory.mktemp("struck"), started)
        yield Struck(world.home, world.coordinator, world.nodes, world.served, started)
    finally:
        stop_every(started)


class Training:
    """`kumiai train ... --superlink` as a process of its own, stopped by its PID.

    Not in pytest's process: a failed deployment job leaves a Flower ServerApp thread whose
    401 makes Flower's http_retry SIGINT its own process.
    """

    def __init__(self, world: Federation, name: str, stopped_at_end: list, *options: str) -> None:  # type: ignore[type-arg]
        self.stderr = world.home.parent / f"{name}.stderr"
        command = [sys.executable, "-m", "kumiai", "--home", str(world.home), "train", "heart"]
        command += [*options, "--superlink", f"127.0.0.1:{world.coordinator.link_port}"]
        with (
            (world.home.parent / f"{name}.stdout").open("wb") as out,
            self.stderr.open("wb") as err,
        ):
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env={**ENV, "COLUMNS": "400"}, start_new_session=True,
            )  # fmt: skip
        stopped_at_end.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def finish(self, within: float) -> int:
        return self.process.wait(timeout=within)

    def stop(self) -> None:
        stop_pids([self.pid, *descendants(self.pid)], wait=2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)


def _kill(world: Federation, member: str) -> list[int]:
    """SIGKILL the member's node process and its SuperNode: a machine that died."""
    node = world.served[member]
    assert node.pid is not None and node.exit_code() is None, f"{member}'s node is not running"
    pids = [node.pid, *descendants(node.pid)]
    assert len(pids) >= 2  # the node and its SuperNode
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def _revived(world: Struck, member: str, within: float = 120) -> None:
    """Start a killed member's node again from its home. The SuperLink takes its SuperNode
    back only once it has marked it offline (two missed 30 s heartbeats): until then the
    SuperNode's activation is refused and it exits, so it is started again."""
    node = world.nodes[member]
    if (served := world.served[member]).exit_code() is None and connected(node):
        return
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        since = supernode_log(node).stat().st_size if supernode_log(node).exists() else 0
        served = node_serve(node, world.coordinator.link_port, world.started)
        world.served[member] = served
        try:
            served.wait_until(lambda s=since: connected(node, s), 30, "connected to the SuperLink")
            return
        except KumiaiError:
            served.stop()
            time.sleep(2)
    raise AssertionError(f"{member}'s node did not connect again within {within:.0f} s")


def _jobs(world: Federation) -> dict[str, int]:
    """Job id -> rounds recorded, read in this process (a `kumiai` call costs a CPU second)."""
    from kumiai.services.consortium import open_consortium
    from kumiai.services.jobs import list_jobs

    return {j.id: j.completed_rounds for j in list_jobs(open_consortium(world.home))}


def _poll(until: Callable[[], bool], within: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + within
    while not until():
        assert time.monotonic() < deadline, f"not {what} within {within:.0f} s"
        time.sleep(every)


def _assert_the_others_finished(world: Federation, job_id: str, training: Training) -> None:
    """The job completed its 2 rounds with the three others; the dead dataset is named,
    with its reason; one model released; the ledger verifies offline."""
    home = ("--home", str(world.home))
    # stderr: at most one line per node that still holds the ε it reserved (see below)
    stderr = training.stderr.read_text().splitlines()
    held = f"the ε it reserved for job {job_id} on "
    notes = [s for s in stderr if s.startswith(("note: ", "warning: ")) and held in s]
    assert notes == stderr, stderr
    detail = ok(*home, "job", job_id)
    assert detail["status"] == "completed" and detail["completed_rounds"] == ROUNDS, detail
    sites = {s["dataset"]: (s["status"], s["reason"]) for s in detail["sites"]}
    dead = (f"{VICTIM}-heart", ("left", f"round 2: no reply within {ROUND_TIMEOUT} s"))
    assert sites.pop(dead[0]) == dead[1], detail["sites"]
    assert sites == {f"{m}-heart": ("participating", None) for m in FOUR[:3]}, sites
    assert [m["job_id"] for m in ok(*home, "models") if m["job_id"] == job_id] == [job_id]
    kinds = verified_offline(world.home, world.home.parent / f"auditor-{job_id}")
    assert "model.released" in kinds


def released_everywhere(world: Federation) -> dict[str, dict]:  # type: ignore[type-arg]
    """Each node releases what it reserved for jobs that are over, from its own home (`kumiai
    node release`, which `node serve` also runs every minute; a killed node's home is still
    there), and reports its spend: then no dataset holds ε any more. The budgets, by dataset."""
    for member, node in world.nodes.items():
        released = kumiai("node", "release", "--home", str(node), "--json")
        assert released.returncode == 0, (member, released.stdout + released.stderr)
    budgets = {b["dataset"]: b for b in ok("--home", str(world.home), "budget")}
    assert {d: b["committed"] for d, b in budgets.items()} == {f"{m}-heart": 0 for m in FOUR}, (
        budgets
    )
    return budgets


def _train(world: Federation, name: str, stopped_at_end: list) -> tuple[Training, str]:  # type: ignore[type-arg]
    before = set(_jobs(world))
    training = Training(
        world, name, stopped_at_end, "--rounds", str(ROUNDS), "--epsilon", "1", "--seed", "3",
        "--round-timeout", str(ROUND_TIMEOUT),
    )  # fmt: skip
    _poll(lambda: len(_jobs(world)) > len(before), 90, "started a job", every=0.2)
    [job_id] = set(_jobs(world)) - before
    return training, job_id


def test_a_hospital_killed_before_key_sharing_is_dropped_and_the_others_finish(
    federation: Struck,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    """kill -9 of one hospital's node and its SuperNode once round 1 is recorded, before
    round 2's SecAgg+ key sharing: it is dropped, and the three others finish (Flower's
    SecAgg+ alone would ask them for shares of its keys they never got: a KeyError)."""
    world = federation
    _revived(world, VICTIM)
    log = world.nodes[VICTIM] / "serve.log"
    start = log.stat().st_size
    training, job_id = _train(world, "killed-before-key-sharing", stopped_at_end)
    _poll(lambda: _jobs(world)[job_id] >= 1, 120, "past round 1", every=0.05)
    pids = _kill(world, VICTIM)
    with log.open() as handle:
        handle.seek(start)
        seen = handle.read()
    assert "round 1 train, secure aggregation stage unmask: answered" in seen
    assert training.finish(within=120) == 0, training.stderr.read_text()
    assert not any(alive(p) for p in pids)
    assert "round 2 train, secure aggregation stage share_keys: answered" not in seen
    _assert_the_others_finished(world, job_id, training)
    released_everywhere(world)


def test_a_hospital_killed_after_key_sharing_is_dropped_and_the_others_finish(
    federation: Struck,
    stopped_at_end: list,  # type: ignore[type-arg]
) -> None:
    """kill -9 in the middle of round 2's SecAgg+ round, once the keys are shared: the node
    has received the others' key shares and is training (its activity log says so); the
    three others unmask the sum with their shares of its secret and finish. (Should it
    push its masked vector in the few ms before the kill, it is lost at unmasking instead:
    still round 2, after key sharing, and the same outcome.)"""
    world = federation
    _revived(world, VICTIM)
    log = world.nodes[VICTIM] / "serve.log"
    start = log.stat().st_size
    training, job_id = _train(world, "killed-after-key-sharing", stopped_at_end)

    def sharing_done() -> bool:
        with log.open("rb") as handle:
            handle.seek(start)
            return AFTER_KEY_SHARING.encode() in handle.read()

    _poll(sharing_done, 120, "past round 2's key sharing")
    pids = _kill(world, VICTIM)
    assert training.finish(within=120) == 0, training.stderr.read_text()
    assert not any(alive(p) for p in pids)
    _assert_the_others_finished(world, job_id, training)
    released_everywhere(world)
