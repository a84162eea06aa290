"""The witness routes: a member's node publishes its cosignature, authenticated by the
signature alone, and reads every witness's latest cosigned head. A refused cosignature
changes nothing.
"""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import CosignatureRow
from kumiai.domain import keys
from kumiai.domain.ledger import TreeHead, cosign, cosignature_valid, sign_head
from kumiai.domain.peer_trust import LoggedEntry
from kumiai.domain.witness_rotation import follow
from kumiai.interfaces.api.app import create_app
from kumiai.node.home import NodeHome
from kumiai.services.consortium import Consortium, init_consortium
from kumiai.services.members import add_member, rotate_key
from kumiai.services.transparency import verify_ledger


@pytest.fixture()
def consortium(tmp_path: Path) -> Consortium:
    consortium = init_consortium(tmp_path / "c")
    for name in ("alpha", "beta"):
        add_member(consortium, name, "hospital")
    return consortium


def node_key(consortium: Consortium, name: str) -> object:
    return NodeHome(consortium.member_home(name)).private_key()


def body(head_doc: dict, witness: str, signature: str) -> dict:
    return {"witness": witness, "head": head_doc, "signature": signature}


def cosignature_count(consortium: Consortium) -> int:
    with transaction(consortium.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(CosignatureRow)) or 0)


def test_members_publish_and_read_each_others_cosigned_heads(consortium: Consortium) -> None:
    with TestClient(create_app(consortium.home)) as client:
        document = client.get("/ledger/head").json()
        head = TreeHead.from_document(document)
        assert client.get("/witness/cosigned").json() == []
        for name in ("beta", "alpha"):
            signature = cosign(head, name, node_key(consortium, name))  # type: ignore[arg-type]
            posted = client.post("/witness/cosignatures", json=body(document, name, signature))
            assert posted.status_code == 200, posted.text
            assert posted.json() == {"recorded": True, "size": head.size, "witness": name}
        listed = client.get("/witness/cosigned").json()
    assert [c["witness"] for c in listed] == ["alpha", "beta"]
    for item in listed:
        assert item["head"] == document
        assert item["public_key"] == NodeHome(consortium.member_home(item["witness"])).public_key()
        assert cosignature_valid(head, item["witness"], item["signature"], item["public_key"])
    # What was recorded is what an auditor checks: the export's cosignatures verify.
    assert verify_ledger(consortium).ok


def test_the_latest_cosignature_of_each_witness_is_listed(consortium: Consortium) -> None:
    with TestClient(create_app(consortium.home)) as client:
        old_doc = client.get("/ledger/head").json()
        old = TreeHead.from_document(old_doc)
        alpha = node_key(consortium, "alpha")
        client.post(
            "/witness/cosignatures", json=body(old_doc, "alpha", cosign(old, "alpha", alpha))
        )  # type: ignore[arg-type]
        add_member(consortium, "gamma", "university")  # the log grows
    with TestClient(create_app(consortium.home)) as client:
        new_doc = client.get("/ledger/head").json()
        new = TreeHead.from_document(new_doc)
        assert new.size == old.size + 1
        client.post(
            "/witness/cosignatures", json=body(new_doc, "alpha", cosign(new, "alpha", alpha))
        )  # type: ignore[arg-type]
        # A replayed old cosignature is recorded again as what it is, and changes no listing.
        again = client.post(
            "/witness/cosignatures", json=body(old_doc, "alpha", cosign(old, "alpha", alpha))
        )  # type: ignore[arg-type]
        assert again.status_code == 200
        listed = client.get("/witness/cosigned").json()
    assert [(c["witness"], c["head"]["head"]["size"]) for c in listed] == [("alpha", new.size)]
    assert cosignature_count(consortium) == 2


def test_a_refused_cosignature_changes_nothing(consortium: Consortium) -> None:
    with TestClient(create_app(consortium.home)) as client:
        document = client.get("/ledger/head").json()
        head = TreeHead.from_document(document)
        alpha = node_key(consortium, "alpha")
        stranger = keys.new_private_key()
        forged_head = sign_head(
            TreeHead(head.size, "00" * 32, head.time), consortium.coordinator_key()
        )
        tampered = {**document, "head": {**document["head"], "root": "11" * 32}}
        cases = [
            # an unknown member
            (
                body(document, "mallory", cosign(head, "mallory", stranger)),
                404,
                "'mallory' is not a member: only a registered member's node witnesses the log",
            ),
            # a member's name, another key
            (
                body(document, "alpha", cosign(head, "alpha", stranger)),
                400,
                "the cosignature does not verify with alpha's key on record",
            ),
            # alpha's key, vouching as beta
            (
                body(document, "beta", cosign(head, "beta", alpha)),
                400,  # type: ignore[arg-type]
                "the cosignature does not verify with beta's key on record",
            ),
            # a head signed with the coordinator's key but never recorded
            (
                body(
                    {"head": forged_head.document(), "signature": forged_head.signature},
                    "alpha",
                    cosign(forged_head, "alpha", alpha),  # type: ignore[arg-type]
                ),
                400,
                "the coordinator never signed this tree head",
            ),
            # a recorded head with its root changed
            (body(tampered, "alpha", "AAAA"), 400, "the coordinator never signed this tree head"),
            # not a head at all
            (body({"head": {"size": 1}}, "alpha", "AAAA"), 400, "tree head is malformed"),
        ]
        for request, status, message in cases:
            before = (cosignature_count(consortium), client.get("/ledger/head").json())
            refused = client.post("/witness/cosignatures", json=request)
            assert refused.status_code == status, (request, refused.text)
            assert message in refused.json()["error"], refused.text
            assert (cosignature_count(consortium), client.get("/ledger/head").json()) == before
        assert client.get("/witness/cosigned").json() == []


def test_a_members_rotations_come_with_proofs_under_the_size_asked(
    consortium: Consortium,
) -> None:
    old = NodeHome(consortium.member_home("beta")).public_key()
    rotate_key(consortium, "beta")
    new = NodeHome(consortium.member_home("beta")).public_key()
    with TestClient(create_app(consortium.home)) as client:
        head = TreeHead.from_document(client.get("/ledger/head").json())
        got = client.get("/witness/rotations", params={"member": "beta", "size": head.size})
        assert got.status_code == 200, got.text
        assert (
            client.get("/witness/rotations", params={"member": "alpha", "size": head.size}).json()
            == []
        )
        beyond = client.get("/witness/rotations", params={"member": "beta", "size": head.size + 1})
        assert beyond.status_code == 404
        assert f"a size from 1 to {head.size}, not {head.size + 1}" in beyond.json()["error"]
    entries = [LoggedEntry.from_document(d) for d in got.json()]
    assert len(entries) == 1
    followed = follow("beta", old, new, head, entries)
    assert followed.accepted, followed.reason
