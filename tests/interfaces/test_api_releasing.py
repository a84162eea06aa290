"""A node on its own machine releases a finished job's ε and reports it through the API.

The coordinator cannot reach a remote node: `release_privacy` leaves the node's mirror row
awaiting it. The node asks how the job stands, releases in its own log and reports its
spend with its attestation; the coordinator raises its mirror (a `privacy.recovered` entry
signed at the node) and ends the row. Every refusal writes nothing.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow, PrivacySpendRow
from kumiai.domain import keys
from kumiai.domain.budget import RELEASE, attest, signed_attestation
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from kumiai.domain.ledger import entry_signature_valid
from kumiai.domain.recovery import RECOVERED
from kumiai.domain.request_auth import sign_request as sign_http
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.cli.main import app as cli
from kumiai.node import remote
from kumiai.node.home import NodeHome
from kumiai.node.port import LocalNode
from kumiai.node.releasing import check_in
from kumiai.node.spendlog import SpendLog
from kumiai.services.consortium import Consortium, open_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.jobs import AWAITING_REASON, fail_job, held_reservations, release_privacy
from kumiai.services.privacy import budgets
from tests.interfaces.test_api_member_acts import World
from tests.services.crash import run_until_the_window
from tests.services.helpers import HOSPITALS, heart_consortium, log_records

A, B = HOSPITALS[0], HOSPITALS[1]
DATA_A, DATA_B = f"{A}-heart", f"{B}-heart"


class Finished(World):
    """Two hospitals whose agreements are signed, and a private job that failed after its
    nodes logged round 2 but the coordinator recorded only round 1. A's node is on its own
    machine; B's is here."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        heart_consortium(home, hospitals=(A, B))
        init_tls(home, ["127.0.0.1"])
        self.app = create_app(home)
        self.consortium: Consortium = self.app.state.consortium
        plain = open_consortium(home)
        self.job = run_until_the_window(plain, recorded=1, logged=2)
        fail_job(plain, self.job, "stopped")
        monkeypatch.setattr(Consortium, "node_is_here", lambda _, member: member != A)
        self.held = release_privacy(plain, self.job)

    def log(self, member: str) -> SpendLog:
        return SpendLog(NodeHome(self.consortium.member_home(member)), f"{member}-heart")

    def row(self, dataset: str) -> tuple[Any, ...]:
        with transaction(self.consortium.sessions) as session:
            row = session.get(PrivacySpendRow, (self.job, dataset))
            assert row is not None
            return (row.status, row.spent, row.rounds, row.attestation)

    def written(self) -> tuple[Any, ...]:
        """The ledger's size and both mirror rows: what a release report may change."""
        with transaction(self.consortium.sessions) as session:
            entries = session.scalar(select(func.count()).select_from(LedgerEntryRow))
        return (entries, self.row(DATA_A), self.row(DATA_B))

    def report(self, key: Any, dataset: str = DATA_A, job: str | None = None, **body: Any) -> Any:
        document = {
            "spent": self.log(A).view().jobs[self.job].spent,
            "rounds": 2,
            "attestation": self.log(A).attestation(),
            **body,
        }
        with self.client(key) as client:
            return client.post(f"/jobs/{job or self.job}/privacy/{dataset}/release", document)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Finished:
    built = Finished(tmp_path / "c", monkeypatch)

    def client_for(root):  # type: ignore[no-untyped-def]
        node = LocalNode(root)
        return built.client(node.home.private_key()), node

    monkeypatch.setattr(remote, "client_for", client_for)  # in-process instead of over TLS
    return built


def test_the_coordinator_leaves_a_remote_nodes_reservation_awaiting_it(world: Finished) -> None:
    [held] = world.held
    assert (held.job, held.dataset, held.member, held.awaiting_node) == (world.job, DATA_A, A, True)
    assert held.reason == "released by the node when it next checks in: kumiai node release"
    assert world.row(DATA_A)[0] == "awaiting-node" and world.row(DATA_B)[0] == "ended"
    assert [(h.dataset, h.reason) for h in held_reservations(world.consortium)] == [
        (DATA_A, AWAITING_REASON)
    ]
    committed = {line.dataset: line.committed for line in budgets(world.consortium)}
    assert committed[DATA_A] > 0 and committed[DATA_B] == 0  # the node still holds it
    assert log_records(world.log(A))[-1]["kind"] != RELEASE


def test_the_node_releases_and_the_mirror_rises_to_its_log(world: Finished) -> None:
    logged = world.log(A).view().jobs[world.job]
    recorded = world.row(DATA_A)[1]
    assert recorded < logged.spent  # the coordinator recorded round 1 only

    [found] = check_in(world.consortium.member_home(A), world.client(world.key(A)))

    assert (found.job, found.dataset, found.released, found.reported) == (
        world.job,
        DATA_A,
        True,
        True,
    )
    assert found.reason == "the job is failed"
    assert log_records(world.log(A))[-1]["kind"] == RELEASE
    status, spent, rounds, attestation = world.row(DATA_A)
    assert (status, spent, rounds) == ("ended", logged.spent, 2)
    assert json.loads(attestation) == json.loads(world.log(A).attestation())
    entry = world.last_entry()
    assert (entry.entry.kind, entry.entry.actor) == (RECOVERED, A)
    assert entry.entry.payload == {
        "job": world.job,
        "dataset": DATA_A,
        "epsilon": logged.spent,
        "recorded_epsilon": recorded,
        "rounds": [2],
    }
    assert entry_signature_valid(entry, world.node(A).public_key())  # signed at A's node
    assert held_reservations(world.consortium) == []
    committed = {line.dataset: line.committed for line in budgets(world.consortium)}
    assert committed[DATA_A] == 0

    # Releasing twice is harmless: nothing new at the node, a second report writes nothing.
    before = world.written()
    assert check_in(world.consortium.member_home(A), world.client(world.key(A))) == []
    again = world.report(world.key(A))
    assert again["result"]["released"] is False and again["result"]["status"] == "ended"
    assert world.written() == before


def test_a_report_for_another_members_dataset_is_refused(world: Finished) -> None:
    before = world.written()
    with pytest.raises(Forbidden) as refused:
        world.report(world.key(B))
    assert str(refused.value) == (
        f"coordinator: {B}'s node acts only for {B}; dataset {DATA_A} belongs to {A}, whose "
        "own node must act on it"
    )
    with pytest.raises(Forbidden, match=r"\(auditor\) may not privacy.release; only steward may"):
        world.report(world.auditor())
    assert world.written()[1:] == before[1:]  # the auditor's grant is the only new entry


def test_a_forged_or_replayed_report_is_refused(world: Finished) -> None:
    before = world.written()
    with pytest.raises(Unauthenticated):
        world.report(keys.new_private_key())  # a key the coordinator does not know
    assert world.written() == before
    # A's own attestation, but the request signed by another key: refused the same.
    path = f"/jobs/{world.job}/privacy/{DATA_A}/release"
    document = {"spent": 10.0, "rounds": 2, "attestation": world.log(A).attestation()}
    body = json.dumps(document).encode()
    headers = sign_http(world.key(A), method="POST", path=path, query="", body=body, now=utc_now())
    headers = {**headers, "content-type": "application/json"}
    tampered = json.dumps({**document, "spent": 0.0}).encode()
    with TestClient(world.app) as client:
        forged = client.post(path, content=tampered, headers=headers)
        assert forged.status_code == 401
        assert world.written() == before
        first = client.post(path, content=body, headers=headers)  # over the reservation
        replayed = client.post(path, content=body, headers=headers)
    assert first.status_code == 400 and "over the ε=" in first.json()["error"]
    assert replayed.status_code == 401
    assert "a replayed request is refused" in replayed.json()["error"]
    assert world.written() == before


def test_a_report_below_the_mirror_or_for_a_job_never_reserved_is_refused(
    world: Finished,
) -> None:
    before = world.written()
    recorded = world.row(DATA_A)[1]
    with pytest.raises(InvalidInput) as lower:
        world.report(world.key(A), spent=recorded / 2, rounds=1)
    assert "a release never lowers recorded spend" in str(lower.value)
    with pytest.raises(NotFound) as unknown:
        world.report(world.key(A), job="job-00000000")
    assert str(unknown.value) == (
        f"coordinator: the coordinator reserved no ε for job job-00000000 on {DATA_A!r}; "
        "there is nothing to release here (see `kumiai budget`)"
    )
    with pytest.raises(InvalidInput):  # pydantic: ε is never negative
        world.report(world.key(A), spent=-1.0)
    assert world.written() == before


def test_an_attestation_the_node_did_not_sign_or_an_older_one_is_refused(world: Finished) -> None:
    before = world.written()
    lines = world.log(A).log.read_text().splitlines()
    mark = attest(A, DATA_A, lines)
    forged = signed_attestation(mark, keys.sign(keys.new_private_key(), mark.signed_bytes()))
    with pytest.raises(InvalidInput) as refused:
        world.report(world.key(A), attestation=forged)
    assert str(refused.value) == (
        f"coordinator: the spend attestation sent for {DATA_A!r} is not signed by {A}'s node "
        "for that dataset; send the one `kumiai node release` makes"
    )
    with transaction(world.consortium.sessions) as session:  # as the recorder keeps it
        row = session.get(PrivacySpendRow, (world.job, DATA_A))
        row.attestation = world.log(A).attestation()  # type: ignore[union-attr]
    before = world.written()
    key = world.node(A).home.private_key()
    older = attest(A, DATA_A, lines[:1])  # a log that lost lines since it last attested
    with pytest.raises(InvalidInput, match="its log lost lines"):
        world.report(
            world.key(A),
            attestation=signed_attestation(older, keys.sign(key, older.signed_bytes())),
        )
    assert world.written() == before


def test_kumiai_node_release_json(world: Finished) -> None:
    from typer.testing import CliRunner

    home = str(world.consortium.member_home(A))
    result = CliRunner().invoke(cli, ["node", "release", "--home", home, "--json"])
    assert result.exit_code == 0, result.output
    [found] = json.loads(result.output)
    assert found == {
        "job": world.job,
        "dataset": DATA_A,
        "reserved": world.log(A).view().jobs[world.job].reserved,
        "spent": world.row(DATA_A)[1],
        "rounds": 2,
        "released": True,
        "reported": True,
        "reason": "the job is failed",
    }
    again = CliRunner().invoke(cli, ["node", "release", "--home", home])
    assert again.exit_code == 0 and "nothing to release" in again.output


def test_jobs_recover_keeps_showing_the_row_until_the_node_reports(world: Finished) -> None:
    from typer.testing import CliRunner

    def recover() -> str:
        argv = ["--home", str(world.consortium.home), "jobs", "--recover"]
        result = CliRunner().invoke(cli, argv, env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        return " ".join(result.stderr.split())

    assert (
        f"{A}'s node is on its own machine: the ε it reserved for job {world.job} on {DATA_A} "
        "is released by the node when it next checks in: kumiai node release." in recover()
    )
    assert world.row(DATA_A)[0] == "awaiting-node"
    check_in(world.consortium.member_home(A), world.client(world.key(A)))
    assert "on its own machine" not in recover() and world.row(DATA_A)[0] == "ended"
