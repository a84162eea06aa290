"""`POST /jobs`: a project's researcher (or the operator) starts a training job remotely.

The training itself is a stand-in runner here (the job's record, then whatever the test
says): what is tested is who may start, every refusal with nothing written, the 202 and its
id, and that a job whose thread crashes reads as failed, never running.
"""

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.adapters.flower.superlink import SuperLinkAddress
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRoundRow, JobRow, JobSiteRow, LedgerEntryRow
from kumiai.domain import keys
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, JobFailed, StateError
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.cli import remote_training
from kumiai.interfaces.cli.main import app as cli
from kumiai.node import remote
from kumiai.node.port import LocalNode
from kumiai.services.access import grant_access
from kumiai.services.consortium import Consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.jobs import running_job
from kumiai.services.members import add_member
from tests.services.helpers import HOSPITALS, heart_consortium
from tests.services.test_quota import _with_quota

A, B = HOSPITALS[0], HOSPITALS[1]
LINK = SuperLinkAddress("127.0.0.1", 9092, Path("ca.pem"))


class Runner:
    """`services.training.train`'s stand-in: writes the job's record, then waits or fails."""

    def __init__(self, error: BaseException | None = None, before_record: bool = False) -> None:
        self.error, self.before_record = error, before_record
        self.go_on = threading.Event()
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, consortium: Consortium, project: str, settings: Any, progress: Any, **kw: Any
    ):  # type: ignore[no-untyped-def]
        self.calls.append({"project": project, "settings": settings, **kw})
        if self.error is not None and self.before_record:
            raise self.error
        with transaction(consortium.sessions) as session:
            session.add(running_job(kw["job_id"], project, "train", settings))
        self.go_on.wait(10)
        if self.error is not None:
            raise self.error


class World:
    def __init__(self, consortium: Consortium, home: Path, outsider: bool = True) -> None:
        init_tls(home, ["127.0.0.1"])
        if outsider:
            add_member(consortium, "outsider", "university")  # in no project
        self.app = create_app(home, dashboard=False)
        self.consortium: Consortium = self.app.state.consortium
        self.app.state.superlink = LINK
        self.runner = Runner()
        self.app.state.job_runner = self.runner

    def key(self, member: str) -> Any:
        return LocalNode(self.consortium.member_home(member)).home.private_key()

    def client(self, key: Any) -> CoordinatorClient:
        transport = TestClient(self.app)._transport
        return CoordinatorClient("http://testserver", key=key, transport=transport)

    def start(self, key: Any, body: dict[str, Any]) -> tuple[int, Any]:
        with self.client(key) as client:
            return client.answer("POST", "/jobs", body)

    def counts(self) -> tuple[int, int]:
        """Jobs and ledger entries: what starting a job writes."""
        with transaction(self.consortium.sessions) as session:
            return tuple(  # type: ignore[return-value]
                session.scalar(select(func.count()).select_from(t)) or 0
                for t in (JobRow, LedgerEntryRow)
            )

    def done(self) -> None:
        self.runner.go_on.set()


@pytest.fixture
def world(tmp_path: Path) -> Any:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=HOSPITALS[:2])
    built = World(consortium, tmp_path / "c")
    yield built
    built.done()


def body(**settings: Any) -> dict[str, Any]:
    return {"project": "heart", "settings": {"rounds": 3, **settings}}


def test_a_projects_researcher_starts_a_job_answered_with_its_id(world: World) -> None:
    status, reply = world.start(world.key(A), body(learning_rate=0.05, epsilon=2.0))
    assert status == 202
    assert reply["by"] == A and reply["status"] == "running"
    assert reply["job"].startswith("job-")
    call = world.runner.calls[0]
    assert call["job_id"] == reply["job"] and call["by"] == A and call["superlink"] == LINK
    assert call["settings"].rounds == 3 and call["settings"].learning_rate == 0.05
    assert call["privacy"].requested == call["settings"]  # planned once, run with
    with world.client(world.key(A)) as client:
        detail = client.get(f"/jobs/{reply['job']}")
    assert detail["status"] == "running" and detail["planned_rounds"] == 3


def test_the_operator_starts_one_as_the_projects_proposer(world: World) -> None:
    status, reply = world.start(world.consortium.coordinator_key(), body())
    assert status == 202 and reply["by"] is None
    assert world.runner.calls[0]["by"] is None  # train records the proposer, as the CLI does


def test_timeouts_reach_the_runner(world: World) -> None:
    request = {**body(), "admission_timeout": 30, "round_timeout": 5}
    assert world.start(world.key(A), request)[0] == 202
    call = world.runner.calls[0]
    assert (call["admission_timeout"], call["round_timeout"]) == (30, 5)


def refused(world: World, key: Any, request: dict[str, Any]) -> tuple[int, str]:
    before = world.counts()
    status, reply = world.start(key, request)
    assert world.counts() == before  # nothing written
    assert world.runner.calls == []  # nothing started
    return status, reply["error"]


def test_no_supervised_superlink_is_a_conflict(world: World) -> None:
    world.app.state.superlink = None
    status, error = refused(world, world.key(A), body())
    assert status == 409
    assert "supervises no SuperLink" in error and "--superlink-port PORT" in error


def test_another_projects_researcher_is_refused(world: World) -> None:
    status, error = refused(world, world.key("outsider"), body())
    assert status == 403
    assert error == (
        "outsider (board, researcher, steward) may start jobs only for projects its member "
        "belongs to, not 'heart'; a member of 'heart' or the operator starts them"
    )


def test_an_auditor_may_not_start_a_job(world: World) -> None:
    key = keys.new_private_key()
    grant_access(world.consortium, name="kpmg", role="auditor", public_key=keys.public_key_b64(key))
    status, error = refused(world, key, body())
    assert (status, error) == (
        403,
        "kpmg (auditor) may not job.start; only operator, researcher may",
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rounds": 0}, "rounds"),
        ({"strategy": "fedmagic"}, "fedmagic"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"analysis": "{}"}, "unknown training setting(s) analysis"),
        ({"flavour": 1}, "unknown training setting(s) flavour"),
        ({"rounds": "many"}, 'training setting rounds must be int, got "many"'),
        ({"rounds": 2.5}, "training setting rounds must be int, got 2.5"),
        ({"epsilon": True}, "training setting epsilon must be float or null, got true"),
        ({"public_domain": {"bounds": {"age": [5, 1]}}}, "settings.public_domain is malformed"),
        ({"public_domain": "nope"}, "the public domain (--public-domain) is malformed"),
    ],
)
def test_bad_settings_are_refused_by_the_domains_checks(
    world: World, settings: dict[str, Any], message: str
) -> None:
    status, error = refused(world, world.key(A), body(**settings))
    assert status == 400 and message in error


def test_an_unknown_project_is_not_found(world: World) -> None:
    status, error = refused(world, world.key(A), {"project": "nope", "settings": {}})
    assert status == 404 and "nope" in error


def test_a_running_job_of_the_project_refuses_a_second(world: World) -> None:
    status, first = world.start(world.key(A), body())
    assert status == 202
    calls = list(world.runner.calls)
    before = world.counts()
    status, reply = world.start(world.key(A), body())
    assert status == 409
    assert reply["error"] == (
        f"job {first['job']} of project 'heart' is still running; one job per project at a "
        f"time: watch it with `kumiai job {first['job']}` and start the next when it ends"
    )
    assert world.counts() == before and world.runner.calls == calls


def wait_for(world: World, job_id: str, status: str) -> dict[str, Any]:
    with world.client(world.key(A)) as client:
        for _ in range(200):
            detail = client.get(f"/jobs/{job_id}")
            if detail["status"] == status:
                return detail  # type: ignore[no-any-return]
            threading.Event().wait(0.05)
    raise AssertionError(f"{job_id} never became {status}: {detail}")


def test_a_crashing_job_thread_leaves_its_job_failed_with_the_error(world: World) -> None:
    world.runner.error = RuntimeError("the ServerApp fell over")
    status, reply = world.start(world.key(A), body())
    assert status == 202
    world.done()
    detail = wait_for(world, reply["job"], "failed")
    assert detail["error"] == "internal error: RuntimeError: the ServerApp fell over"
    assert detail["finished_at"] is not None
    # the project may start again: nothing is left running
    world.runner.go_on = threading.Event()
    world.runner.error = None
    assert world.start(world.key(A), body())[0] == 202


def test_a_refusal_before_the_record_is_the_requests_answer(world: World) -> None:
    world.runner.error, world.runner.before_record = InvalidInput("no such thing"), True
    before = world.counts()
    status, reply = world.start(world.key(A), body())
    assert (status, reply["error"]) == (400, "no such thing")
    assert world.counts() == before


def test_a_job_its_stopped_serve_process_left_is_failed_by_the_next_start(
    world: World,
) -> None:
    """`coordinator serve` stopped mid-job: the record says running, its pid is gone. The
    next start recovers it (as `kumiai jobs --recover` would) instead of being refused."""
    with transaction(world.consortium.sessions) as session:
        from kumiai.domain.training import TrainingSettings

        row = running_job("job-0ld0ld00", "heart", "train", TrainingSettings(rounds=3))
        row.pid = 2**22 + 12345  # no such process
        session.add(row)
    assert world.start(world.key(A), body())[0] == 202
    with transaction(world.consortium.sessions) as session:
        old = session.get(JobRow, "job-0ld0ld00")
        assert old is not None and old.status == "failed"
        assert old.error is not None and old.error.startswith("interrupted: the process")


def test_a_job_past_the_projects_quota_is_refused_as_the_cli_refuses_it(
    tmp_path: Path,
) -> None:
    consortium = _with_quota(tmp_path / "c", site_rounds=2)
    world = World(consortium, tmp_path / "c", outsider=False)
    before = world.counts()
    status, reply = world.start(world.key(A), body())
    assert status == 409 and "quota" in reply["error"]
    jobs, entries = world.counts()
    # as `kumiai train`'s refusal: no job, one signed job.refused entry
    assert (jobs, entries) == (before[0], before[1] + 1)
    assert world.runner.calls == []


# -- `kumiai train PROJECT --coordinator URL` -------------------------------------------------

URL = "https://coordinator.example:8443"


class RoundsRunner(Runner):
    """Records two rounds at one site, one site refused, then completes (or fails)."""

    def __call__(
        self, consortium: Consortium, project: str, settings: Any, progress: Any, **kw: Any
    ) -> None:
        self.calls.append({"project": project, "settings": settings, **kw})
        job_id = kw["job_id"]
        with transaction(consortium.sessions) as session:
            session.add(running_job(job_id, project, "train", settings))
            session.flush()
            session.add(
                JobSiteRow(job_id=job_id, dataset=f"{A}-heart", member=A, status="participating")
            )
            session.add(
                JobSiteRow(
                    job_id=job_id,
                    dataset=f"{B}-heart",
                    member=B,
                    status="refused",
                    reason="no agreement",
                )
            )
        for n in (1, 2):
            scores = {"examples": 50, "accuracy": 0.5 + n / 10, "auc": 0.75}
            with transaction(consortium.sessions) as session:
                metrics = {
                    "train_loss": 0.5,
                    "overall": scores,
                    "sites": {f"{A}-heart": scores},
                    "epsilon": {},
                    "member_epsilon": None,
                }
                session.add(
                    JobRoundRow(
                        job_id=job_id,
                        round=n,
                        seconds=0.1,
                        recorded_at=utc_now(),
                        metrics_json=json.dumps(metrics),
                    )
                )
                session.get(JobRow, job_id).completed_rounds = n  # type: ignore[union-attr]
        if self.error is not None:
            raise self.error
        with transaction(consortium.sessions) as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            row.status, row.finished_at = "completed", utc_now()


@pytest.fixture
def remote_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    def reader_for(root: Path, url: str) -> CoordinatorClient:
        assert url == URL
        return world.client(LocalNode(root).home.private_key())

    monkeypatch.setattr(remote, "reader_for", reader_for)
    monkeypatch.setattr(remote_training, "POLL_SECONDS", 0.05)
    world.runner = RoundsRunner()
    world.app.state.job_runner = world.runner
    return world


def train_remotely(world: World, *options: str) -> Any:
    env = {"KUMIAI_NODE_HOME": str(world.consortium.member_home(A)), "KUMIAI_HOME": "/nowhere"}
    args = ["train", "heart", "--rounds", "2", "--lr", "0.05", "--coordinator", URL, *options]
    return CliRunner().invoke(cli, args, env=env)


def test_train_at_a_coordinator_starts_the_job_and_shows_its_rounds_and_sites(
    remote_world: World,
) -> None:
    result = train_remotely(remote_world)
    assert result.exit_code == 0, result.output
    call = remote_world.runner.calls[0]
    assert call["by"] == A and call["superlink"] == LINK
    assert call["settings"].rounds == 2 and call["settings"].learning_rate == 0.05
    assert call["admission_timeout"] == 120.0 and call["round_timeout"] is None
    job = call["job_id"]
    out = " ".join(result.stdout.split())
    assert f"Job {job} started at {URL} (by {A})" in out
    assert f"1 site(s) admitted the job: {A}-heart" in out
    assert f"refused {B}-heart: no agreement" in out
    assert f"no model (job {job}, 2 rounds)" in out
    assert f"{A}-heart │ 50 │ 0.700 │ 0.750" in out  # the last round's scores
    assert f"{B}-heart │ — │ refused" in out


def test_a_failed_remote_job_exits_non_zero_with_its_error(remote_world: World) -> None:
    remote_world.runner.error = RuntimeError("a node's SuperNode vanished")
    result = train_remotely(remote_world)
    assert result.exit_code == 1 and isinstance(result.exception, JobFailed)
    job = remote_world.runner.calls[0]["job_id"]
    assert str(result.exception) == (
        f"job {job} failed: internal error: RuntimeError: a node's SuperNode vanished"
    )


def test_ctrl_c_stops_watching_only(remote_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(remote_training, "watch", interrupted)
    result = train_remotely(remote_world)
    assert result.exit_code == 130
    job = remote_world.runner.calls[0]["job_id"]
    assert f"Stopped watching; job {job} goes on at the coordinator" in " ".join(
        result.output.split()
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--superlink", "127.0.0.1:9092"], "drop it"), (["--by", "lab"], "--by is for")],
)
def test_local_only_options_are_refused_with_a_coordinator(
    remote_world: World, option: list[str], message: str
) -> None:
    result = train_remotely(remote_world, *option)
    assert isinstance(result.exception, InvalidInput) and message in str(result.exception)
    assert remote_world.runner.calls == []


def test_a_refused_start_is_one_line(remote_world: World) -> None:
    remote_world.app.state.superlink = None
    result = train_remotely(remote_world)
    assert isinstance(result.exception, StateError)  # main() prints it as one line
    assert str(result.exception).startswith("coordinator: this coordinator supervises no")


# -- the real training service, in the serve process's thread --------------------------------


def test_a_real_job_runs_in_the_serve_thread_and_reads_as_completed(world: World) -> None:
    """`services.training.train` itself, its SuperLink swapped for the simulation engine
    (the deployment engine needs the members' SuperNodes: docs/operations.md's walkthrough)."""
    from kumiai.services.training import train

    def on_simulation(*args: Any, superlink: Any, **kw: Any) -> Any:
        assert superlink == LINK
        # The simulation engine runs the nodes' homes here, which a served consortium only
        # reaches through what they submit; the deployment engine never asks it to.
        world.consortium.served = False
        return train(*args, superlink=None, **kw)

    world.app.state.job_runner = on_simulation
    status, reply = world.start(world.key(A), body(rounds=2))
    assert status == 202, reply
    with world.client(world.key(A)) as client:
        for _ in range(1200):
            detail = client.get(f"/jobs/{reply['job']}")
            if detail["status"] != "running":
                break
            threading.Event().wait(0.1)
        models = client.get("/models", project="heart")
        started = client.get("/ledger/entries", kind="job.started")
    assert detail["error"] is None, detail["error"]
    assert (detail["status"], detail["error"], detail["completed_rounds"]) == ("completed", None, 2)
    assert [m["job_id"] for m in models] == [reply["job"]]
    entry = started["entries"][-1] if isinstance(started, dict) else started[-1]
    # no node is there to sign when it runs: the coordinator signs, naming who asked
    assert (entry["actor"], entry["payload"]["requested_by"]) == ("coordinator", A)


# -- `coordinator serve` hands its SuperLink to the app ---------------------------------------


def test_serve_gives_the_app_the_superlink_it_supervises(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kumiai.interfaces.api import server

    served: list[Any] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **_: served.append(app))
    server.serve(tmp_path / "c", "127.0.0.1", 8443, LINK)
    server.serve(tmp_path / "c", "127.0.0.1", 8443)  # no --superlink-port: POST /jobs is 409
    assert [app.state.superlink for app in served] == [LINK, None]


def test_coordinator_serve_passes_its_superlinks_address(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kumiai.interfaces.api import server
    from kumiai.services import deployment, node_admission

    class Link:
        pid, nodes, address = 4242, {A: "key"}, LINK

        def stop(self) -> None: ...

    class Keeper:
        def __init__(self, *_: Any) -> None: ...

        def start(self) -> None: ...

        def stop(self) -> None: ...

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(deployment, "start_superlink", lambda *_: Link())
    monkeypatch.setattr(node_admission, "AdmissionKeeper", Keeper)
    monkeypatch.setattr(server, "serve", lambda *args: calls.append(args))
    home = str(tmp_path / "c")
    result = CliRunner().invoke(
        cli, ["--home", home, "coordinator", "serve", "--superlink-port", "9092"]
    )
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path / "c", "127.0.0.1", 8443, LINK)]
