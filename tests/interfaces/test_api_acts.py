"""Members' acts through the API, signed at their own nodes: the coordinator records what a
node signed over exactly those bytes and nothing else; a refused act writes nothing.

The node's side is `kumiai.node.remote.run_act` over Starlette's test transport, with the
member's own node home (its key) as the signer.
"""

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kumiai.adapters.coordinator_client import CoordinatorClient, RequestSigner
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    AgreementRow,
    InvitationRow,
    LedgerEntryRow,
    MemberRow,
    RequestRow,
)
from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import Forbidden, InvalidInput, NotFound, StateError
from kumiai.domain.invitation import read_token
from kumiai.domain.ledger import SignedEntry, entry_signature_valid
from kumiai.domain.request_auth import sign_request as sign_http
from kumiai.interfaces.api.app import create_app
from kumiai.node import remote
from kumiai.node.port import LocalNode
from kumiai.node.remote import Intent, _check_intent, run_act
from kumiai.services.access import grant_access
from kumiai.services.agreements import refuse_request
from kumiai.services.charter import propose_charter, sign_charter
from kumiai.services.consortium import Consortium, open_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.invitations import invite_member
from kumiai.services.remote_node import Unsigned
from tests.services.helpers import HOSPITALS, heart_consortium

A, B = HOSPITALS[0], HOSPITALS[1]


@dataclass(frozen=True)
class World:
    consortium: Consortium  # as the served app sees it
    requests: dict[str, str]
    app: Any


@pytest.fixture
def world(tmp_path) -> World:  # type: ignore[no-untyped-def]
    home = tmp_path / "c"
    _, requests = heart_consortium(home, hospitals=HOSPITALS[:2], sign=())
    init_tls(home, ["127.0.0.1"])
    app = create_app(home)
    return World(app.state.consortium, requests, app)


def node_client(world: World, key: Any) -> CoordinatorClient:
    transport = TestClient(world.app)._transport
    return CoordinatorClient("http://testserver", key=key, transport=transport)


def node_of(world: World, member: str) -> LocalNode:
    return LocalNode(world.consortium.member_home(member))


def counts(world: World) -> tuple[int, ...]:
    """Ledger entries, agreements, members, invitations, and requests already decided."""
    decided = select(func.count()).select_from(RequestRow).where(RequestRow.status != "pending")
    with transaction(world.consortium.sessions) as session:
        tables = (LedgerEntryRow, AgreementRow, MemberRow, InvitationRow)
        rows = [session.scalar(select(func.count()).select_from(t)) or 0 for t in tables]
        return (*rows, session.scalar(decided) or 0)


def last_entry(world: World) -> SignedEntry:
    with transaction(world.consortium.sessions) as session:
        leaf = session.scalars(
            select(LedgerEntryRow.leaf).order_by(LedgerEntryRow.seq.desc())
        ).first()
    assert leaf is not None
    return SignedEntry.from_leaf_bytes(leaf)


def act(world: World, member: str, path: str, body: dict, intent: Intent):  # type: ignore[no-untyped-def]
    node = node_of(world, member)
    with node_client(world, node.home.private_key()) as client:
        return run_act(client, node, member, path, body, intent)


def test_a_refusal_is_signed_at_the_node_and_recorded(world: World) -> None:
    request = world.requests[A]
    result, _ = act(
        world,
        A,
        f"/requests/{request}/refuse",
        {"reason": " no ethics approval "},
        Intent("request.refused", {"request": request, "reason": "no ethics approval"}),
    )
    assert result["status"] == "refused" and result["refusal_reason"] == "no ethics approval"
    entry = last_entry(world)
    assert (entry.entry.kind, entry.entry.actor) == ("request.refused", A)
    assert entry_signature_valid(entry, node_of(world, A).public_key())


def test_signing_takes_two_signatures_and_the_node_keeps_the_agreement(world: World) -> None:
    request = world.requests[B]
    result, [agreement] = act(
        world,
        B,
        f"/requests/{request}/sign",
        {"agreement_id": "agr-0000beef"},
        Intent(
            "agreement.signed",
            {},
            agreement={"request_id": request, "agreement_id": "agr-0000beef", "steward": B},
        ),
    )
    assert result["id"] == "agr-0000beef" and result["steward"] == B
    node = node_of(world, B)
    assert keys.verify(
        node.public_key(), canonical_json(agreement.terms.payload()), agreement.signature
    )
    with transaction(world.consortium.sessions) as session:
        assert session.get(AgreementRow, "agr-0000beef").document == agreement.to_json()
    entry = last_entry(world)
    assert entry.entry.kind == "agreement.signed" and entry.entry.payload["signature"] == (
        agreement.signature
    )
    assert entry_signature_valid(entry, node.public_key())


def test_revoking_is_recorded_after_the_node_wrote_it(world: World) -> None:
    request = world.requests[A]
    intent = Intent("agreement.signed", {}, agreement={"request_id": request, "steward": A})
    result, [agreement] = act(
        world, A, f"/requests/{request}/sign", {"agreement_id": "agr-0000cafe"}, intent
    )
    node_of(world, A).store_agreement(agreement)
    node_of(world, A).revoke("agr-0000cafe", "2026-11-29T12:00:00Z", "ethics withdrawn")
    result, _ = act(
        world,
        A,
        "/agreements/agr-0000cafe/revoke",
        {"reason": "ethics withdrawn"},
        Intent("agreement.revoked", {"agreement": "agr-0000cafe"}),
    )
    assert result["revocation_reason"] == "ethics withdrawn"
    assert last_entry(world).entry.kind == "agreement.revoked"


def test_the_coordinator_cannot_record_a_members_act_without_its_signature(
    world: World,
) -> None:
    before = counts(world)
    with pytest.raises(Unsigned) as refused:
        refuse_request(world.consortium, world.requests[A], "the coordinator says no")
    assert str(refused.value).startswith(
        f"the coordinator cannot sign for '{A}': its node signs its own acts, and it has not "
        "signed this entry (request.refused at seq"
    )
    assert counts(world) == before


def test_a_signature_by_another_key_is_not_accepted_and_nothing_is_written(
    world: World,
) -> None:
    request = world.requests[A]
    key = node_of(world, A).home.private_key()
    before = counts(world)
    with node_client(world, key) as client:
        first = client.post(f"/requests/{request}/refuse", {"reason": "no", "signatures": []})
        assert first["status"] == "sign" and first["what"] == "entry"
        forged = keys.sign(keys.new_private_key(), canonical_json(first["document"]))
        again = client.post(
            f"/requests/{request}/refuse",
            {"reason": "no", "signatures": [forged], "at": first["at"]},
        )
    assert again["status"] == "sign" and again["document"] == first["document"]
    assert counts(world) == before


def test_another_members_key_cannot_act_for_a_member(world: World) -> None:
    before = counts(world)
    key = node_of(world, B).home.private_key()
    with node_client(world, key) as client, pytest.raises(Forbidden) as refused:
        client.post(f"/requests/{world.requests[A]}/refuse", {"reason": "not mine"})
    assert str(refused.value) == (
        f"coordinator: {B}'s node acts only for {B}; request {world.requests[A]} belongs to "
        f"{A}, whose own node must act on it"
    )
    assert counts(world) == before


def test_an_auditor_or_the_operator_writing_is_refused(world: World) -> None:
    auditor = keys.new_private_key()
    grant_access(
        world.consortium, name="kpmg", role="auditor", public_key=keys.public_key_b64(auditor)
    )
    before = counts(world)
    for key, who in [
        (auditor, "kpmg (auditor)"),
        (world.consortium.coordinator_key(), "coordinator (operator)"),
    ]:
        with node_client(world, key) as client, pytest.raises(Forbidden) as refused:
            client.post(f"/requests/{world.requests[A]}/refuse", {"reason": "no"})
        assert str(refused.value) == f"coordinator: {who} may not request.refuse; only steward may"
    assert counts(world) == before


def test_a_body_swapped_after_signing_is_refused(world: World) -> None:
    path = f"/requests/{world.requests[A]}/refuse"
    meant = json.dumps({"reason": "no ethics approval"}).encode()
    headers = sign_http(
        node_of(world, A).home.private_key(),
        method="POST",
        path=path,
        query="",
        body=meant,
        now=utc_now(),
    )
    before = counts(world)
    with TestClient(world.app) as client:
        swapped = client.post(
            path,
            content=json.dumps({"reason": "fine by us"}).encode(),
            headers={**headers, "content-type": "application/json"},
        )
    assert swapped.status_code == 401
    assert swapped.json()["error"].startswith("the body changed after it was signed")
    assert counts(world) == before


def test_the_node_refuses_to_sign_what_its_steward_did_not_mean() -> None:
    intent = Intent("request.refused", {"request": "req-1", "reason": "no"})
    document = {
        "actor": A,
        "kind": "request.refused",
        "payload": {"request": "req-2", "reason": "no"},
    }
    with pytest.raises(StateError, match=rf"whose payload.request is not what {A} meant"):
        _check_intent(A, intent, "entry", document)
    with pytest.raises(
        StateError, match=r"an entry \(agreement.signed\) whose actor, kind, payload.request is not"
    ):
        _check_intent(A, intent, "entry", {**document, "actor": B, "kind": "agreement.signed"})
    with pytest.raises(StateError, match="to sign agreement terms it did not ask for"):
        _check_intent(A, intent, "agreement", {"agreement_id": "agr-1", "request_id": "req-1"})


# -- joining with an invitation -------------------------------------------------------------


def join(world: World, token: str, key: Any, supernode_key: str | None = None) -> Any:
    node = LocalNode(
        world.consortium.home.parent / f"node-{keys.fingerprint(keys.public_key_b64(key))}"
    )
    invitation = read_token(token)
    node.home.create(
        invitation.member, invitation.kind, key, world.consortium.coordinator_public_key()
    )
    public = keys.public_key_b64(key)
    body, meant = {"token": token, "public_key": public}, {"member": invitation.member}
    if supernode_key is not None:
        body["supernode_key"] = meant["supernode_key"] = supernode_key
    with node_client(world, key) as client:
        return run_act(
            client,
            node,
            invitation.member,
            "/join",
            body,
            Intent("member.joined", {**meant, "public_key": public}),
        )[0]


def test_an_invited_node_joins_once_with_its_own_key(world: World) -> None:
    token = invite_member(world.consortium, "st-mary", "hospital").token
    key = keys.new_private_key()
    member = join(world, token, key)
    assert member["name"] == "st-mary" and member["key_fingerprint"] == keys.fingerprint(
        keys.public_key_b64(key)
    )
    entry = last_entry(world)
    assert entry.entry.kind == "member.joined"
    assert entry_signature_valid(entry, keys.public_key_b64(key))
    with node_client(world, key) as client:
        assert client.get("/whoami")["member"] == "st-mary"
    before = counts(world)
    with pytest.raises(
        StateError, match=r"was already used at .*; each invitation joins one node once"
    ):
        join(world, token, keys.new_private_key())
    assert counts(world) == before


def test_a_node_joins_with_its_supernode_key_signed_in_the_entry(world: World) -> None:
    """The public half of the SuperNode key the node made at home is what the coordinator
    stores for the SuperLink, inside the entry the node signed."""
    from kumiai.node.home import NodeHome
    from kumiai.services.deployment import node_keys

    token = invite_member(world.consortium, "st-mary", "hospital").token
    key = keys.new_private_key()
    supernode_key = NodeHome(world.consortium.home.parent / "st-mary-own").supernode_key()
    join(world, token, key, supernode_key)
    with transaction(world.consortium.sessions) as session:
        assert session.get(MemberRow, "st-mary").supernode_key == supernode_key  # type: ignore[union-attr]
    assert node_keys(world.consortium)["st-mary"] == supernode_key
    entry = last_entry(world)
    assert entry.entry.payload["supernode_key"] == supernode_key
    assert entry_signature_valid(entry, keys.public_key_b64(key))


@pytest.mark.parametrize(
    ("supernode_key", "message"),
    [
        ("ssh-rsa AAAAB3NzaC1yc2E", "not a SuperNode public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "one public OpenSSH line"),
        ("x" * 1001, "one public OpenSSH line"),
    ],
)
def test_a_join_with_a_bad_supernode_key_writes_nothing(
    world: World, supernode_key: str, message: str
) -> None:
    token = invite_member(world.consortium, "st-mary", "hospital").token
    before = counts(world)
    with pytest.raises(InvalidInput, match=message):
        join(world, token, keys.new_private_key(), supernode_key)
    assert counts(world) == before


def test_a_join_with_another_members_supernode_key_writes_nothing(world: World) -> None:
    """The key is public (in st-mary's `member.joined` entry): a newcomer submitting it would
    have st-mary's node answer for it, or get st-mary's node dropped by the SuperLink."""
    from kumiai.node.home import NodeHome

    theirs = NodeHome(world.consortium.home.parent / "st-mary-own").supernode_key()
    join(world, invite_member(world.consortium, "st-mary", "hospital").token,
         keys.new_private_key(), theirs)  # fmt: skip
    token = invite_member(world.consortium, "copycat", "company").token
    before = counts(world)
    with pytest.raises(InvalidInput, match="that SuperNode key is already 'st-mary''s; each node"):
        join(world, token, keys.new_private_key(), theirs)
    assert counts(world) == before


def test_a_tampered_or_unknown_invitation_is_refused(world: World) -> None:
    info = invite_member(world.consortium, "st-mary", "hospital")
    doc = read_token(info.token).document()
    renamed = (
        "kumiai-invite-"
        + base64.urlsafe_b64encode(canonical_json({**doc, "member": "evil-corp"})).decode()
    )
    unknown = (
        "kumiai-invite-"
        + base64.urlsafe_b64encode(canonical_json({**doc, "id": "inv-00000000"})).decode()
    )
    before = counts(world)
    for token in (renamed, unknown):
        with pytest.raises(NotFound, match=r"unknown invitation inv-\w+ \(or it was altered\)"):
            join(world, token, keys.new_private_key())
    assert counts(world) == before


def test_a_join_signed_by_another_key_than_it_registers_is_refused(world: World) -> None:
    token = invite_member(world.consortium, "st-mary", "hospital").token
    signer, claimed = keys.new_private_key(), keys.public_key_b64(keys.new_private_key())
    before = counts(world)
    with TestClient(world.app) as client:
        client.auth = RequestSigner(signer)
        refused = client.post("/join", json={"token": token, "public_key": claimed})
    assert refused.status_code == 401
    assert refused.json()["error"].startswith("the join must be signed by the key it registers")
    assert counts(world) == before


def test_served_reads_still_work_for_every_role(world: World) -> None:
    with node_client(world, node_of(world, A).home.private_key()) as client:
        assert [r["id"] for r in client.get("/requests")] == sorted(
            world.requests.values(), key=lambda r: list(world.requests.values()).index(r)
        )
    assert open_consortium(world.consortium.home).served is False  # only the server is served


# -- a dataset registered at its node ------------------------------------------------------


@pytest.fixture
def through_test_transport(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kumiai.node.remote`'s client reaches the app in-process instead of over TLS."""

    def client_for(root):  # type: ignore[no-untyped-def]
        node = LocalNode(root)
        return node_client(world, node.home.private_key()), node

    monkeypatch.setattr(remote, "client_for", client_for)


def test_a_node_registers_a_dataset_it_keeps(world: World, through_test_transport: None) -> None:
    file = world.consortium.home.parent / "exports" / f"{HOSPITALS[2]}.csv"
    info = remote.register_dataset(
        world.consortium.member_home(A),
        "a-second-heart",
        file,
        target="num>0",
        missing={"chol": ("0",)},
        ignore=("id",),
    )
    assert info["member"] == A and info["name"] == "a-second-heart" and info["rows"] > 100
    held = node_of(world, A).dataset("a-second-heart")
    assert held.file.is_file() and held.rows == info["rows"] and held.sha256 == info["sha256"]
    entry = last_entry(world)
    assert entry.entry.kind == "dataset.registered" and entry.entry.actor == A
    assert entry_signature_valid(entry, node_of(world, A).public_key())


def test_a_refused_registration_leaves_nothing_at_the_node(
    world: World, through_test_transport: None
) -> None:
    file = world.consortium.home.parent / "exports" / f"{HOSPITALS[2]}.csv"
    data = world.consortium.member_home(A) / "data"
    files, before = sorted(data.iterdir()), counts(world)
    with pytest.raises(InvalidInput, match=f"dataset '{A}-heart' is already registered"):
        remote.register_dataset(
            world.consortium.member_home(A), f"{A}-heart", file, target="num>0", ignore=("id",)
        )
    assert sorted(data.iterdir()) == files and counts(world) == before
    assert node_of(world, A).dataset(f"{A}-heart").sha256 != ""  # the registered one stays


def test_under_a_charter_only_seats_are_board_and_only_the_admitted_are_invited(
    world: World,
) -> None:
    local = open_consortium(world.consortium.home)  # the one-machine CLI's view, for set-up
    propose_charter(local, proposed_by="lab", seats=("lab", A))
    for member in ("lab", A, B):
        sign_charter(local, member)
    for member, roles in [(A, ["board", "researcher", "steward"]), (B, ["researcher", "steward"])]:
        with node_client(world, node_of(world, member).home.private_key()) as client:
            assert client.get("/whoami")["roles"] == roles
    before = counts(world)
    with pytest.raises(StateError, match="so 'st-mary' joins only once the board admits it"):
        invite_member(world.consortium, "st-mary", "hospital")
    assert counts(world) == before


def test_the_node_commands_sign_revoke_and_refuse(
    world: World, through_test_transport: None
) -> None:
    a_home, b_home = world.consortium.member_home(A), world.consortium.member_home(B)
    agreement = remote.sign_request(a_home, world.requests[A])
    assert agreement["steward"] == A and node_of(world, A).home.agreement(agreement["id"])
    revoked = remote.revoke_agreement(a_home, agreement["id"], "consent withdrawn")
    assert revoked["revocation_reason"] == "consent withdrawn"
    assert agreement["id"] in node_of(world, A).revoked()  # written at the node first
    refused = remote.refuse_request(b_home, world.requests[B], "no ethics approval")
    assert refused["status"] == "refused"
    kinds = [e.entry.kind for e in map(SignedEntry.from_leaf_bytes, leaves(world)[-3:])]
    assert kinds == ["agreement.signed", "agreement.revoked", "request.refused"]
    with pytest.raises(NotFound, match="this node holds no agreement 'agr-00000000'"):
        remote.revoke_agreement(a_home, "agr-00000000", "")


def leaves(world: World) -> list[str]:
    with transaction(world.consortium.sessions) as session:
        return list(session.scalars(select(LedgerEntryRow.leaf).order_by(LedgerEntryRow.seq)))
