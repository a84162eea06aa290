"""A member's other acts through the API, signed at its own node: a researcher's data-use
request and project proposal, a board seat's vote. Each is refused, with nothing written,
for a wrong role, another member's key, a replay, and a document the node did not mean.
"""

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    LedgerEntryRow,
    MemberRow,
    MotionRow,
    ProjectRow,
    RequestRow,
    VoteRow,
)
from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.errors import Forbidden, InvalidInput, NotFound, StateError
from kumiai.domain.ledger import SignedEntry, entry_signature_valid
from kumiai.domain.motion import motion_digest
from kumiai.domain.request_auth import sign_request as sign_http
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.cli.main import app as cli
from kumiai.node import remote
from kumiai.node.port import LocalNode
from kumiai.node.remote import Intent, run_act
from kumiai.services.access import grant_access
from kumiai.services.charter import propose_charter, sign_charter
from kumiai.services.consortium import Consortium, open_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.motions import propose_motion
from tests.services.helpers import HOSPITALS, heart_consortium

A, B = HOSPITALS[0], HOSPITALS[1]


class World:
    def __init__(self, home: Any) -> None:
        _, self.requests = heart_consortium(home, hospitals=HOSPITALS[:2], sign=())
        init_tls(home, ["127.0.0.1"])
        self.app = create_app(home)
        self.consortium: Consortium = self.app.state.consortium

    def client(self, key: Any) -> CoordinatorClient:
        transport = TestClient(self.app)._transport
        return CoordinatorClient("http://testserver", key=key, transport=transport)

    def node(self, member: str) -> LocalNode:
        return LocalNode(self.consortium.member_home(member))

    def key(self, member: str) -> Any:
        return self.node(member).home.private_key()

    def counts(self) -> tuple[int, ...]:
        """Ledger entries, requests, projects and votes: what these acts write."""
        with transaction(self.consortium.sessions) as session:
            tables = (LedgerEntryRow, RequestRow, ProjectRow, VoteRow)
            return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in tables)

    def last_entry(self) -> SignedEntry:
        with transaction(self.consortium.sessions) as session:
            leaf = session.scalars(
                select(LedgerEntryRow.leaf).order_by(LedgerEntryRow.seq.desc())
            ).first()
        assert leaf is not None
        return SignedEntry.from_leaf_bytes(leaf)

    def act(self, member: str, path: str, body: dict, intent: Intent) -> Any:
        node = self.node(member)
        with self.client(node.home.private_key()) as client:
            return run_act(client, node, member, path, body, intent)[0]

    def auditor(self) -> Any:
        key = keys.new_private_key()
        grant_access(
            self.consortium, name="kpmg", role="auditor", public_key=keys.public_key_b64(key)
        )
        return key


@pytest.fixture
def world(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    built = World(tmp_path / "c")

    def client_for(root):  # type: ignore[no-untyped-def]
        node = LocalNode(root)
        return built.client(node.home.private_key()), node

    monkeypatch.setattr(remote, "client_for", client_for)  # in-process instead of over TLS
    monkeypatch.setattr(remote, "keyed_client", lambda root, key: built.client(key))
    return built


def expiry() -> str:
    return to_iso(utc_now() + timedelta(days=30))


def request_body(request_id: str = "req-0000beef", **changes: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "project": "heart",
        "dataset": f"{B}-heart",
        "expires_at": expiry(),
        "epsilon_cap": 1.0,
        **changes,
    }


def request_intent(body: dict[str, Any], **changes: Any) -> Intent:
    terms = {"request": body["request_id"], "dataset": body["dataset"], **changes}
    return Intent("request.made", terms)


# -- a researcher's data-use request --------------------------------------------------------


def test_a_researchers_request_is_signed_at_its_node(world: World) -> None:
    before = world.counts()
    info = remote.request_data(
        world.consortium.member_home(A),
        "heart",
        f"{B}-heart",
        expires_at=utc_now() + timedelta(days=30),
        epsilon_cap=1.5,
        job_kinds="train",
    )
    assert (info["requested_by"], info["steward"], info["status"]) == (A, B, "pending")
    assert info["id"].startswith("req-") and info["epsilon_cap"] == 1.5
    entry = world.last_entry()
    assert (entry.entry.kind, entry.entry.actor) == ("request.made", A)
    assert entry.entry.payload["request"] == info["id"]
    assert entry.entry.payload["job_kinds"] == ["train"]
    assert entry_signature_valid(entry, world.node(A).public_key())
    assert world.counts() == (before[0] + 1, before[1] + 1, *before[2:])


def test_a_replayed_request_id_is_refused(world: World) -> None:
    body = request_body()
    world.act(A, "/requests", body, request_intent(body))
    before = world.counts()
    with pytest.raises(InvalidInput) as refused:
        world.act(A, "/requests", body, request_intent(body))
    assert str(refused.value) == (
        "coordinator: request req-0000beef already exists; a node asks again under a new id"
    )
    assert world.counts() == before


def test_a_request_the_researcher_did_not_mean_is_not_signed(world: World) -> None:
    body = request_body()
    before = world.counts()
    with pytest.raises(StateError, match=r"whose payload.dataset is not what"):
        world.act(A, "/requests", body, request_intent(body, dataset=f"{A}-heart"))
    with pytest.raises(StateError, match=r"whose payload.epsilon_cap is not what"):
        world.act(A, "/requests", body, request_intent(body, epsilon_cap=0.5))
    assert world.counts() == before


def test_an_auditor_cannot_request_data(world: World) -> None:
    before = world.counts()
    with world.client(world.auditor()) as client, pytest.raises(Forbidden) as refused:
        client.post("/requests", request_body())
    assert (
        str(refused.value)
        == "coordinator: kpmg (auditor) may not request.make; only researcher may"
    )
    assert world.counts()[1:] == before[1:]  # the grant is the only new entry


def test_another_members_signature_does_not_make_a_request(world: World) -> None:
    before, body = world.counts(), request_body()
    with world.client(world.key(A)) as client:
        first = client.post("/requests", {**body, "signatures": []})
        assert first["status"] == "sign" and first["document"]["actor"] == A
        forged = keys.sign(world.key(B), canonical_json(first["document"]))
        again = client.post("/requests", {**body, "signatures": [forged], "at": first["at"]})
    assert again["status"] == "sign" and again["document"] == first["document"]
    assert world.counts() == before


def test_the_researchers_request_through_the_cli(world: World) -> None:
    from typer.testing import CliRunner

    home = str(world.consortium.member_home(A))
    result = CliRunner().invoke(
        cli,
        ["node", "request", "heart", "--dataset", f"{B}-heart", "--home", home, "--json"],
    )
    assert result.exit_code == 0, result.output
    assert '"requested_by": "' + A + '"' in result.output
    assert world.last_entry().entry.kind == "request.made"


# -- a project proposal ---------------------------------------------------------------------


def test_a_project_is_proposed_in_the_nodes_own_name(world: World) -> None:
    info = remote.propose_project(
        world.consortium.member_home(B), "sepsis", purpose=" Early warning ", members=(A,)
    )
    assert (info["proposed_by"], info["members"], info["status"]) == (B, [A, B], "proposed")
    entry = world.last_entry()
    assert (entry.entry.kind, entry.entry.actor) == ("project.proposed", B)
    assert entry.entry.payload["purpose"] == "Early warning"
    assert entry_signature_valid(entry, world.node(B).public_key())


def test_a_proposal_refused_for_role_replay_and_intent_writes_nothing(world: World) -> None:
    body = {"name": "sepsis", "purpose": "Early warning", "members": [A]}
    meant = Intent("project.proposed", {"project": "sepsis", "purpose": "Early warning"})
    world.act(B, "/projects", body, meant)
    auditor = world.auditor()
    before = world.counts()
    with pytest.raises(InvalidInput, match="project 'sepsis' already exists"):
        world.act(B, "/projects", body, meant)  # the same proposal again
    with pytest.raises(StateError, match=r"whose payload.purpose is not what"):
        world.act(
            B, "/projects", {**body, "name": "icu"}, Intent("project.proposed", {"purpose": "x"})
        )
    with world.client(auditor) as client, pytest.raises(Forbidden) as refused:
        client.post("/projects", {**body, "name": "icu"})
    assert str(refused.value).endswith("may not project.propose; only researcher may")
    assert world.counts() == before


def add_medical_theme(world: World) -> None:
    from kumiai.services.themes import add_theme

    local = open_consortium(world.consortium.home)  # the one-machine CLI's view, for set-up
    add_theme(local, name="medical", title="Medical AI", by="lab")


def theme_of(world: World, project: str) -> str | None:
    from kumiai.services.themes import project_theme

    with transaction(world.consortium.sessions) as session:
        return project_theme(session, project)


def test_a_project_is_proposed_under_a_theme_from_the_node(world: World) -> None:
    add_medical_theme(world)
    before = world.counts()
    info = remote.propose_project(
        world.consortium.member_home(B), "sepsis", purpose="Early warning", theme="medical"
    )
    assert (info["name"], info["proposed_by"]) == ("sepsis", B)
    assert theme_of(world, "sepsis") == "medical"
    entry = world.last_entry()  # right after project.proposed, signed by the same node
    assert (entry.entry.kind, entry.entry.actor) == ("project.themed", B)
    assert entry.entry.payload == {"project": "sepsis", "theme": "medical"}
    assert entry_signature_valid(entry, world.node(B).public_key())
    assert world.counts() == (before[0] + 2, before[1], before[2] + 1, before[3])


def test_a_proposal_under_an_unknown_theme_is_refused_before_anything_is_signed(
    world: World,
) -> None:
    before = world.counts()
    with pytest.raises(NotFound) as refused:
        remote.propose_project(
            world.consortium.member_home(B), "sepsis", purpose="Early warning", theme="oncology"
        )
    assert str(refused.value) == ("coordinator: unknown theme 'oncology'; see `kumiai theme list`")
    assert world.counts() == before and theme_of(world, "sepsis") is None


def test_a_theme_the_researcher_did_not_mean_is_not_signed(world: World) -> None:
    """The coordinator puts the project under another theme than the one the node named."""
    add_medical_theme(world)
    before = world.counts()
    body = {"name": "sepsis", "purpose": "Early warning", "theme": "medical"}
    meant = Intent(
        "project.proposed",
        {"project": "sepsis", "purpose": "Early warning"},
        then=(Intent("project.themed", {"project": "sepsis", "theme": "cardiology"}),),
    )
    with pytest.raises(StateError, match=r"\(project.themed\) whose payload.theme is not what"):
        world.act(B, "/projects", body, meant)
    without_theme = Intent("project.proposed", {"project": "sepsis", "purpose": "Early warning"})
    unmeant = r"\(project.themed\) whose kind, payload.purpose is not what"
    with pytest.raises(StateError, match=unmeant):
        world.act(B, "/projects", body, without_theme)  # a theme the node never asked for
    assert world.counts() == before and theme_of(world, "sepsis") is None


def test_a_project_proposed_under_a_theme_through_the_cli(world: World) -> None:
    from typer.testing import CliRunner

    add_medical_theme(world)
    home = str(world.consortium.member_home(B))
    args = ["node", "propose", "sepsis", "--purpose", "Early warning", "--home", home]
    result = CliRunner().invoke(cli, [*args, "--theme", "medical"])
    assert result.exit_code == 0, result.output
    assert "proposed by" in result.output and "under theme medical" in result.output
    assert theme_of(world, "sepsis") == "medical"
    unknown = CliRunner().invoke(cli, [*args[:2], "icu", *args[3:], "--theme", "nope"])
    assert isinstance(unknown.exception, NotFound)  # kumiai's entry point prints it, one line
    assert str(unknown.exception) == "coordinator: unknown theme 'nope'; see `kumiai theme list`"


# -- a board seat's vote --------------------------------------------------------------------


@pytest.fixture
def motion(world: World) -> str:
    local = open_consortium(world.consortium.home)  # the one-machine CLI's view, for set-up
    propose_charter(local, proposed_by="lab", seats=("lab", A))
    for member in ("lab", A, B):
        sign_charter(local, member)
    return propose_motion(
        local, decision="admit-member", payload={"member": "st-mary"}, proposer="lab"
    ).id


def shown_and_vote(world: World, member: str, motion: str, choice: str) -> Any:
    home = world.consortium.member_home(member)
    return remote.vote(home, motion, choice, remote.show_motion(home, motion)["digest"])


def recorded_digest(world: World, motion: str) -> str:
    with transaction(world.consortium.sessions) as session:
        return str(session.get(MotionRow, motion).digest)


def test_a_vote_is_signed_at_the_seats_node(world: World, motion: str) -> None:
    info = shown_and_vote(world, A, motion, "yes")
    assert info["id"] == motion and info["votes"] == {A: "yes"}
    entry = world.last_entry()
    assert (entry.entry.kind, entry.entry.actor) == ("motion.voted", A)
    assert entry.entry.payload == {
        "motion": motion,
        "digest": recorded_digest(world, motion),  # the verifiers hold it to the proposal's
        "choice": "yes",
    }
    assert entry_signature_valid(entry, world.node(A).public_key())


def test_a_replayed_vote_is_refused(world: World, motion: str) -> None:
    shown_and_vote(world, A, motion, "yes")
    before = world.counts()
    with pytest.raises(InvalidInput) as refused:
        shown_and_vote(world, A, motion, "no")
    assert str(refused.value) == f"coordinator: '{A}' has already voted yes on motion {motion}"
    assert world.counts() == before


def test_a_member_without_a_seat_cannot_vote(world: World, motion: str) -> None:
    before = world.counts()
    with pytest.raises(Forbidden) as refused:
        remote.vote(world.consortium.member_home(B), motion, "yes", recorded_digest(world, motion))
    assert str(refused.value) == (
        f"coordinator: {B} (researcher, steward) may not motion.vote; only board may"
    )
    assert world.counts() == before


def swap_motion(world: World, motion: str, payload: dict[str, Any], digest: bool) -> str:
    """A lying coordinator rewrites what the motion decides (and, if `digest`, the digest it
    states for it) after a node was shown it; returns the new digest."""
    with transaction(world.consortium.sessions) as session:
        row = session.get(MotionRow, motion)
        row.payload_json = json.dumps(payload, sort_keys=True)
        if digest:
            row.digest = motion_digest(
                {
                    "motion": row.id,
                    "decision": row.decision,
                    "payload": payload,
                    "proposer": row.proposer,
                    "charter": row.charter_version,
                    "closes_at": to_iso(row.closes_at),
                }
            )
        return str(row.digest)


def test_a_motion_changed_after_it_was_shown_takes_no_vote(world: World, motion: str) -> None:
    """The steward was shown 'admit st-mary'; the coordinator then makes the motion admit
    'puppet' (content and digest both): the vote pinned to what was shown is refused, and
    nothing is written."""
    home = world.consortium.member_home(A)
    shown = remote.show_motion(home, motion)
    assert shown["payload"] == {"member": "st-mary"}
    swapped = swap_motion(world, motion, {"member": "puppet"}, digest=True)
    before = world.counts()
    with pytest.raises(StateError) as refused:
        remote.vote(home, motion, "yes", shown["digest"])
    assert str(refused.value) == (
        f"coordinator: the vote pins motion {motion} with digest {shown['digest']}, but the "
        f"motion as recorded has digest {swapped}: it is not the motion the voter was shown; "
        "show it again (kumiai node vote) and vote on what it says"
    )
    assert world.counts() == before


def test_a_motion_shown_otherwise_than_its_digest_is_not_voted_on(
    world: World, motion: str
) -> None:
    """The coordinator shows new content under the old digest: the node refuses to show
    it as that motion, and a vote pinned to the old digest is refused by the coordinator."""
    home, digest = world.consortium.member_home(A), recorded_digest(world, motion)
    swap_motion(world, motion, {"member": "puppet"}, digest=False)
    before = world.counts()
    with pytest.raises(StateError, match=r"but the content it shows has digest .*nothing signed"):
        remote.show_motion(home, motion)
    with pytest.raises(StateError, match=r"content no longer has the digest recorded"):
        remote.vote(home, motion, "yes", digest)
    assert world.counts() == before


def test_a_vote_the_seat_did_not_cast_is_not_signed(world: World, motion: str) -> None:
    before, digest = world.counts(), recorded_digest(world, motion)
    with pytest.raises(StateError, match=r"whose payload.choice is not what"):
        world.act(
            A,
            f"/motions/{motion}/votes",
            {"choice": "no", "digest": digest},
            Intent("motion.voted", {"motion": motion, "choice": "yes", "digest": digest}),
        )
    with pytest.raises(StateError, match=r"whose payload.digest is not what"):
        world.act(  # the coordinator would record the vote under another digest
            A,
            f"/motions/{motion}/votes",
            {"choice": "yes", "digest": digest},
            Intent("motion.voted", {"motion": motion, "choice": "yes", "digest": "0" * 64}),
        )
    with world.client(world.key(A)) as client:  # A's key, lab's vote: lab's seat is not A's
        first = client.post(f"/motions/{motion}/votes", {"choice": "yes", "digest": digest})
        assert first["document"]["actor"] == A
        forged = keys.sign(world.key("lab"), canonical_json(first["document"]))
        again = client.post(
            f"/motions/{motion}/votes",
            {"choice": "yes", "digest": digest, "signatures": [forged], "at": first["at"]},
        )
    assert again["status"] == "sign"
    assert world.counts() == before


def test_a_vote_from_the_cli_shows_the_motion_and_asks_first(world: World, motion: str) -> None:
    from typer.testing import CliRunner

    home = str(world.consortium.member_home(A))
    before = world.counts()
    wide = {"COLUMNS": "200"}  # the digest on one line, whatever the worker's terminal
    declined = CliRunner().invoke(
        cli, ["node", "vote", motion, "yes", "--home", home], input="n\n", env=wide
    )
    assert declined.exit_code == 1, declined.output
    assert "admit-member, proposed by lab" in declined.output
    assert "member: st-mary" in declined.output
    assert f"Digest (what this node signs over): {recorded_digest(world, motion)}" in (
        declined.output
    )
    assert "Not voted on" in declined.output and world.counts() == before
    voted = CliRunner().invoke(
        cli, ["node", "vote", motion, "no", "--home", home, "--yes"], env=wide
    )
    assert voted.exit_code == 0, voted.output
    assert f"Voted no on {motion}" in voted.output
    assert world.last_entry().entry.payload["choice"] == "no"


# -- key rotation ---------------------------------------------------------------------------


def member_key(world: World, member: str) -> str:
    with transaction(world.consortium.sessions) as session:
        return str(session.get(MemberRow, member).public_key)


def test_a_node_rotates_its_key_the_old_one_vouching(world: World) -> None:
    old = world.node(A).public_key()
    info = remote.rotate_key(world.consortium.member_home(A))
    new = world.node(A).public_key()
    assert new != old and info["key_fingerprint"] == keys.fingerprint(new)
    assert member_key(world, A) == new
    entry = world.last_entry()
    assert entry.entry.kind == "member.key-rotated" and entry.entry.actor == A
    assert entry.entry.payload == {"member": A, "public_key": new, "previous_key": old}
    assert entry_signature_valid(entry, old)  # signed by the old key
    with world.client(world.key(A)) as client:  # the new key is who A is now
        assert client.get("/whoami")["member"] == A


def test_a_rotation_refused_for_another_member_a_taken_key_or_a_wrong_document(
    world: World,
) -> None:
    auditor = world.auditor()
    before, a_key = world.counts(), member_key(world, A)
    with world.client(world.key(B)) as client, pytest.raises(Forbidden) as refused:
        client.post(
            f"/members/{A}/key", {"public_key": keys.public_key_b64(keys.new_private_key())}
        )
    assert str(refused.value) == (
        f"coordinator: {B}'s node acts only for {B}; the key of {A} belongs to {A}, whose own "
        "node must act on it"
    )
    with world.client(world.key(A)) as client, pytest.raises(InvalidInput) as taken:
        client.post(f"/members/{A}/key", {"public_key": member_key(world, B)})
    assert str(taken.value).endswith(
        f"already belongs to {B}; a node rotates to a key of its own making"
    )
    with world.client(auditor) as client, pytest.raises(Forbidden, match=r"not member\.rotate"):
        client.post(f"/members/{A}/key", {"public_key": keys.public_key_b64(auditor)})
    new = keys.public_key_b64(keys.new_private_key())
    with pytest.raises(StateError, match=r"whose payload.public_key is not what"):
        world.act(
            A,
            f"/members/{A}/key",
            {"public_key": new},
            Intent("member.key-rotated", {"member": A, "public_key": "another"}),
        )
    assert world.counts() == before and member_key(world, A) == a_key


def test_a_rotation_interrupted_after_the_coordinator_recorded_it_is_finished(
    world: World,
) -> None:
    """The node stopped before putting its new key in place: the next run finishes it."""
    node, old = world.node(A), world.node(A).public_key()
    new = node.next_key()
    meant = {"member": A, "public_key": new, "previous_key": old}
    world.act(A, f"/members/{A}/key", {"public_key": new}, Intent("member.key-rotated", meant))
    assert member_key(world, A) == new and world.node(A).public_key() == old  # the crash
    before = world.counts()
    info = remote.rotate_key(world.consortium.member_home(A))
    assert info["key_fingerprint"] == keys.fingerprint(new)
    assert world.node(A).public_key() == new and world.counts() == before


def test_a_replayed_rotation_is_not_signed_by_the_retired_key(world: World) -> None:
    """The old key's signature over the first rotation does not rotate again."""
    home = world.consortium.member_home(A)
    old_key, new = world.key(A), keys.public_key_b64(keys.new_private_key())
    remote.rotate_key(home)
    before = world.counts()
    with world.client(world.key(A)) as client:
        first = client.post(f"/members/{A}/key", {"public_key": new})
        forged = keys.sign(old_key, canonical_json(first["document"]))
        again = client.post(
            f"/members/{A}/key", {"public_key": new, "signatures": [forged], "at": first["at"]}
        )
    assert again["status"] == "sign"
    with world.client(old_key) as client, pytest.raises(Exception, match="unknown key"):
        client.post(f"/members/{A}/key", {"public_key": new})
    assert world.counts() == before


# -- the steward's ε budget -----------------------------------------------------------------


def mirrored_budget(world: World, dataset: str) -> float | None:
    with transaction(world.consortium.sessions) as session:
        return session.get(DatasetRow, dataset).epsilon_budget


def test_a_budget_is_set_at_the_node_first_then_mirrored(world: World) -> None:
    before = world.counts()
    info = remote.set_budget(world.consortium.member_home(A), f"{A}-heart", 4.0)
    assert info == {"dataset": f"{A}-heart", "lifetime": 4.0}
    assert world.node(A).budget(f"{A}-heart").lifetime == 4.0  # what the node enforces
    assert mirrored_budget(world, f"{A}-heart") == 4.0
    entry = world.last_entry()  # recorded in the ledger, signed by the steward's own node
    assert (entry.entry.kind, entry.entry.actor) == ("privacy.budget-set", A)
    assert entry.entry.payload == {"dataset": f"{A}-heart", "member": A, "epsilon": 4.0}
    assert entry_signature_valid(entry, world.node(A).public_key())
    assert world.counts() == (before[0] + 1, *before[1:])


def budget_intent(dataset: str, member: str, epsilon: float) -> Intent:
    return Intent("privacy.budget-set", {"dataset": dataset, "member": member, "epsilon": epsilon})


def mirror_for_b(world: World) -> Any:
    """A lying coordinator: it mirrors A's figure on B's dataset, in an entry for A to sign."""
    from kumiai.services.ledger import Act

    def lie(consortium: Consortium, dataset: str, epsilon: float) -> float:
        with transaction(consortium.sessions) as session:
            session.get(DatasetRow, f"{B}-heart").epsilon_budget = epsilon
            payload = {"dataset": f"{B}-heart", "member": A, "epsilon": epsilon}
            consortium.ledger.append(session, Act(A, "privacy.budget-set", payload, member=A))
        return epsilon

    return lie


def mirror_more(world: World) -> Any:
    """A lying coordinator: it mirrors 25 times the ε the node set."""
    from kumiai.services.privacy import set_budget

    return lambda consortium, dataset, epsilon: set_budget(consortium, dataset, epsilon * 25)


@pytest.mark.parametrize(
    ("liar", "why"),
    [
        (mirror_more, r"whose payload.epsilon is not what"),
        (mirror_for_b, r"whose payload.dataset is not what"),
    ],
    ids=["another-figure", "another-dataset"],
)
def test_a_coordinator_mirroring_another_budget_gets_no_signature(
    world: World, monkeypatch: pytest.MonkeyPatch, liar: Any, why: str
) -> None:
    """The node signs only its own dataset and exactly its ε; nothing is mirrored or written."""
    from kumiai.services import signed_acts

    monkeypatch.setattr(signed_acts, "set_budget", liar(world))
    before = world.counts()
    with pytest.raises(StateError, match=why) as refused:
        remote.set_budget(world.consortium.member_home(A), f"{A}-heart", 4.0)
    assert str(refused.value).endswith("refused, nothing signed")
    assert world.counts() == before
    assert mirrored_budget(world, f"{A}-heart") is None
    assert mirrored_budget(world, f"{B}-heart") is None


def test_a_budget_entry_the_steward_did_not_mean_is_not_signed(world: World) -> None:
    dataset, before = f"{A}-heart", world.counts()
    with pytest.raises(StateError, match=r"whose payload.epsilon is not what"):
        world.act(
            A, f"/datasets/{dataset}/budget", {"epsilon": 100.0}, budget_intent(dataset, A, 4.0)
        )
    assert world.counts() == before and mirrored_budget(world, dataset) is None


def test_a_replayed_budget_round_is_not_recorded_again(world: World) -> None:
    """The signatures of a recorded budget act, submitted again (to set 3.0 back over a
    later 5.0): the ledger has moved, so they sign nothing here; nothing is written."""
    dataset, path = f"{A}-heart", f"/datasets/{A}-heart/budget"
    with world.client(world.key(A)) as client:
        first = client.post(path, {"epsilon": 3.0})
        signature = world.node(A).sign_entry(remote._entry_from(first["document"])).signature
        rounds = {"epsilon": 3.0, "signatures": [signature], "at": first["at"]}
        assert client.post(path, rounds)["status"] == "done"
    remote.set_budget(world.consortium.member_home(A), dataset, 5.0)
    before = world.counts()
    with world.client(world.key(A)) as client:
        again = client.post(path, rounds)
    assert again["status"] == "sign" and again["document"]["seq"] > first["document"]["seq"]
    assert world.counts() == before and mirrored_budget(world, dataset) == 5.0


def test_a_meaningless_budget_is_refused_by_the_coordinator_too(world: World) -> None:
    dataset, before = f"{A}-heart", world.counts()
    for epsilon in (0.0, -1.0):  # JSON carries no infinity or NaN
        with world.client(world.key(A)) as client, pytest.raises(InvalidInput) as refused:
            client.post(f"/datasets/{dataset}/budget", {"epsilon": epsilon})
        assert "the lifetime ε must be a finite number greater than 0" in str(refused.value)
    assert world.counts() == before and mirrored_budget(world, dataset) is None


def test_a_budget_refused_for_role_owner_or_replay_changes_nothing(world: World) -> None:
    auditor, dataset = world.auditor(), f"{A}-heart"
    with world.client(world.key(B)) as client, pytest.raises(Forbidden) as refused:
        client.post(f"/datasets/{dataset}/budget", {"epsilon": 100.0})
    assert str(refused.value) == (
        f"coordinator: {B}'s node acts only for {B}; dataset {dataset} belongs to {A}, whose "
        "own node must act on it"
    )
    with pytest.raises(NotFound, match=f"{dataset}"):  # B's node does not hold A's data
        remote.set_budget(world.consortium.member_home(B), dataset, 100.0)
    with world.client(auditor) as client, pytest.raises(Forbidden, match="only steward may"):
        client.post(f"/datasets/{dataset}/budget", {"epsilon": 100.0})
    body = json.dumps({"epsilon": 100.0}).encode()
    path = f"/datasets/{dataset}/budget"
    headers = sign_http(world.key(A), method="POST", path=path, query="", body=body, now=utc_now())
    headers = {**headers, "content-type": "application/json"}
    before = world.counts()
    with TestClient(world.app) as client:
        asked = client.post(path, content=body, headers=headers)  # unsigned: nothing written
        assert asked.status_code == 202 and world.counts() == before
        assert asked.json()["document"]["payload"]["epsilon"] == 100
        set_back = remote.set_budget(world.consortium.member_home(A), dataset, 3.0)
        replayed = client.post(path, content=body, headers=headers)
    assert set_back["lifetime"] == 3.0 and replayed.status_code == 401
    assert "a replayed request is refused" in replayed.json()["error"]
    assert (
        mirrored_budget(world, dataset) == 3.0
        and world.node(B).budget(f"{B}-heart").lifetime is None
    )


# -- what the nodes signed here verifies offline ---------------------------------------------


def test_the_nodes_acts_verify_offline_in_both_verifiers(
    world: World, motion: str, tmp_path: Any
) -> None:
    """A vote pinned at the node, a budget and a themed proposal signed at nodes: the export
    verifies in Python and in JavaScript, the vote's digest held to the proposal's."""
    from kumiai.domain.audit import report_document
    from kumiai.services import transparency
    from tests.verifiers.test_js_verifier import run_js

    shown_and_vote(world, A, motion, "yes")
    remote.set_budget(world.consortium.member_home(A), f"{A}-heart", 2.5)
    add_medical_theme(world)
    remote.propose_project(
        world.consortium.member_home(B), "sepsis", purpose="Early warning", theme="medical"
    )
    export, keys_file = tmp_path / "ledger.jsonl", tmp_path / "keys.json"
    keys_file.write_text(json.dumps(transparency.member_keys(world.consortium)))
    transparency.export_ledger(world.consortium, export)
    python = report_document(transparency.verify_export(export, keys_file))
    code, js = run_js(export, keys_file)
    assert python["ok"] and js["ok"] and code == 0
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert sum('"privacy.budget-set"' in r.get("leaf", "") for r in records) == 1
