"""A node facing a hostile coordinator: it signs only what its steward meant.

The coordinator here is an httpx mock that asks the node to sign something else; each time
the node refuses by name and no signature ever leaves it.
"""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.domain.errors import StateError
from kumiai.node.port import LocalNode
from kumiai.node.remote import Intent, run_act

ENTRY = {
    "type": "kumiai.ledger-entry",
    "version": 2,
    "seq": 7,
    "time": "2026-11-29T12:00:00Z",
    "actor": "st-mary",
    "kind": "request.refused",
    "payload": {"request": "req-1", "reason": "no ethics approval"},
}
MEANT = Intent("request.refused", {"request": "req-1", "reason": "no ethics approval"})


def hostile(asks: list[tuple[str, dict[str, Any]]], sent: list[dict]) -> CoordinatorClient:  # type: ignore[type-arg]
    """A coordinator that asks for the given documents, in turn, and records what it got."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        what, document = asks[min(len(sent) - 1, len(asks) - 1)]
        reply = {"status": "sign", "what": what, "document": document, "at": ENTRY["time"]}
        return httpx.Response(202, json=reply)

    return CoordinatorClient("https://c.example", transport=httpx.MockTransport(answer))


@pytest.fixture
def node(tmp_path: Path) -> LocalNode:
    node = LocalNode(tmp_path / "st-mary")
    node.join("st-mary", "hospital", "coordinator-key")
    return node


@pytest.mark.parametrize(
    ("document", "wrong"),
    [
        (
            {**ENTRY, "payload": {"request": "req-2", "reason": "no ethics approval"}},
            "payload.request",
        ),
        ({**ENTRY, "payload": {"request": "req-1", "reason": "fine"}}, "payload.reason"),
        ({**ENTRY, "kind": "agreement.signed"}, "kind"),
        ({**ENTRY, "actor": "va-long-beach"}, "actor"),
    ],
)
def test_the_node_refuses_a_document_its_steward_did_not_mean(
    node: LocalNode, document: dict[str, Any], wrong: str
) -> None:
    sent: list[dict] = []  # type: ignore[type-arg]
    with pytest.raises(StateError, match=f"whose {wrong} is not what st-mary meant"):
        run_act(hostile([("entry", document)], sent), node, "st-mary", "/x", {}, MEANT)
    assert [body["signatures"] for body in sent] == [[]]  # nothing signed ever left


def test_the_node_refuses_agreement_terms_it_did_not_ask_for(node: LocalNode) -> None:
    sent: list[dict] = []  # type: ignore[type-arg]
    terms = {"request_id": "req-9", "agreement_id": "agr-1", "steward": "st-mary"}
    meant = Intent("agreement.signed", {}, agreement={"request_id": "req-1", "steward": "st-mary"})
    with pytest.raises(StateError, match="to sign agreement terms it did not ask for"):
        run_act(hostile([("agreement", terms)], sent), node, "st-mary", "/x", {}, meant)
    assert sent[-1]["signatures"] == []


def test_an_entry_not_in_kumiais_form_is_refused(node: LocalNode) -> None:
    sent: list[dict] = []  # type: ignore[type-arg]
    odd = {**ENTRY, "time": "2026-11-29 12:00", "extra": 1}
    with pytest.raises(StateError, match="to sign an entry not in kumiai's form; refused"):
        run_act(hostile([("entry", odd)], sent), node, "st-mary", "/x", {}, MEANT)
    assert sent[-1]["signatures"] == []


def test_a_coordinator_that_keeps_asking_is_stopped(node: LocalNode) -> None:
    sent: list[dict] = []  # type: ignore[type-arg]
    with pytest.raises(StateError, match="more than 6 signatures for one act"):
        run_act(hostile([("entry", ENTRY)], sent), node, "st-mary", "/x", {}, MEANT)
    assert len(sent) == 6 and len(sent[-1]["signatures"]) == 5
