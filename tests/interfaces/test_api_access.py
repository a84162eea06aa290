"""Who may call the API: every route declares one action, records need a signed request from
a known key, the ledger stays public, and replayed, expired, forged or unknown requests are
refused with their reason and change nothing."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from kumiai.adapters.coordinator_client import RequestSigner
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AccessGrantRow, RequestNonceRow
from kumiai.domain import keys
from kumiai.domain.clock import utc_now
from kumiai.domain.request_auth import sign_request
from kumiai.domain.roles import Action
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.api.auth import route_actions
from kumiai.interfaces.cli.main import app as cli
from kumiai.interfaces.web.app import create_dashboard
from kumiai.interfaces.web.context import page_actions
from kumiai.node.home import NodeHome
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import show_entries
from tests.services.helpers import HOSPITALS, heart_consortium


@dataclass(frozen=True)
class World:
    consortium: Consortium
    auditor: object  # its private key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("access") / "c"
    consortium, _ = heart_consortium(home, hospitals=HOSPITALS[:2], sign=HOSPITALS[:1])
    auditor = keys.new_private_key()
    granted = CliRunner().invoke(
        cli,
        [
            "--home", str(home), "coordinator", "grant", "--role", "auditor",
            "--key", keys.public_key_b64(auditor), "--name", "kpmg",
        ],
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    return World(consortium, auditor)


def member_key(world: World, member: str):  # type: ignore[no-untyped-def]
    return NodeHome(world.consortium.member_home(member)).private_key()


def client_as(world: World, key) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(world.consortium.home))
    client.auth = RequestSigner(key) if key is not None else None
    return client


def nonces(world: World) -> int:
    with transaction(world.consortium.sessions) as session:
        return session.scalar(select(func.count()).select_from(RequestNonceRow)) or 0


def test_every_route_declares_exactly_one_action(world: World) -> None:
    routes = route_actions(create_app(world.consortium.home))
    assert len(routes) > 30 and ("/ledger/head", frozenset({"GET"}), [Action.LEDGER_READ]) in routes
    for path, methods, actions in routes:
        assert len(actions) == 1, (path, methods, actions)


def test_every_action_in_the_table_has_a_route(world: World) -> None:
    declared = {
        a for _, _, actions in route_actions(create_app(world.consortium.home)) for a in actions
    }
    # A member's own record is a page of the dashboard only (`/ui/members/NAME`).
    pages = {
        a
        for _, _, actions in route_actions(create_dashboard(world.consortium), page_actions)
        for a in actions
    }
    assert declared | {Action.MEMBER_RECORD_READ} == set(Action)
    assert Action.MEMBER_RECORD_READ in pages


def test_a_new_route_without_a_rule_is_caught(world: World) -> None:
    app = create_app(world.consortium.home)

    @app.get("/unruled")
    def unruled() -> None: ...

    assert ("/unruled", frozenset({"GET"}), []) in route_actions(app)


def test_records_need_a_signature_and_the_ledger_does_not(world: World) -> None:
    with client_as(world, None) as anonymous:
        refused = anonymous.get("/members")
        assert refused.status_code == 401
        assert refused.json()["error"].startswith("this route needs a signed request")
        assert anonymous.get("/ledger/head").status_code == 200
        assert anonymous.get("/ledger/entries/0/proof").status_code == 200


def test_each_kind_of_key_is_who_it_says(world: World) -> None:
    member = HOSPITALS[0]
    for key, expected in [
        (world.consortium.coordinator_key(), {"name": "coordinator", "roles": ["operator"]}),
        (member_key(world, member), {"name": member, "roles": ["board", "researcher", "steward"]}),
        (world.auditor, {"name": "kpmg", "roles": ["auditor"]}),
    ]:
        with client_as(world, key) as client:
            me = client.get("/whoami").json()
            assert {k: me[k] for k in expected} == expected
            assert client.get("/members").status_code == 200


def test_the_grant_is_signed_into_the_ledger_and_refuses_writers(world: World) -> None:
    [entry] = show_entries(world.consortium, kind="access.granted")
    assert entry.actor == "coordinator" and entry.payload["role"] == "auditor"
    result = CliRunner().invoke(
        cli,
        [
            "--home", str(world.consortium.home), "coordinator", "grant", "--role", "steward",
            "--key", keys.public_key_b64(keys.new_private_key()), "--name", "sneaky",
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "only read-only roles are granted by key (auditor)" in str(result.exception)
    with transaction(world.consortium.sessions) as session:
        assert session.scalar(select(func.count()).select_from(AccessGrantRow)) == 1


def test_an_unknown_key_is_refused(world: World) -> None:
    with client_as(world, keys.new_private_key()) as stranger:
        refused = stranger.get("/members")
    assert refused.status_code == 401 and refused.json()["error"].startswith("unknown key")


def test_a_key_claiming_a_members_key_id_is_refused_as_forged(world: World) -> None:
    member = keys.public_key_b64(member_key(world, HOSPITALS[0]))
    forger = keys.new_private_key()
    headers = sign_request(forger, method="GET", path="/members", query="", body=b"", now=utc_now())
    headers["Signature-Input"] = headers["Signature-Input"].replace(
        keys.fingerprint(keys.public_key_b64(forger)), keys.fingerprint(member)
    )
    before = nonces(world)
    with client_as(world, None) as client:
        refused = client.get("/members", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"].startswith("bad signature")
    assert nonces(world) == before  # a refused request spends no nonce


def test_a_replayed_request_is_refused_even_by_another_worker(world: World) -> None:
    key = member_key(world, HOSPITALS[1])
    headers = sign_request(key, method="GET", path="/whoami", query="", body=b"", now=utc_now())
    with client_as(world, None) as first, client_as(world, None) as second:
        assert first.get("/whoami", headers=headers).status_code == 200
        again = first.get("/whoami", headers=headers)
        elsewhere = second.get("/whoami", headers=headers)  # a second coordinator process
    for refused in (again, elsewhere):
        assert refused.status_code == 401
        assert "was already used: a replayed request is refused" in refused.json()["error"]


def test_an_expired_request_is_refused_and_old_nonces_are_pruned(world: World) -> None:
    key = member_key(world, HOSPITALS[0])
    old = utc_now() - timedelta(minutes=3)
    with transaction(world.consortium.sessions) as session:
        session.add(RequestNonceRow(nonce="x" * 20, keyid="0" * 16, expires_at=old))
    headers = sign_request(key, method="GET", path="/whoami", query="", body=b"", now=old)
    with client_as(world, None) as client:
        expired = client.get("/whoami", headers=headers)
        assert expired.status_code == 401 and "the signature expired at" in expired.json()["error"]
        with client_as(world, key) as fresh:
            assert fresh.get("/whoami").status_code == 200
    with transaction(world.consortium.sessions) as session:
        assert session.get(RequestNonceRow, "x" * 20) is None


def test_the_path_and_query_are_signed(world: World) -> None:
    key = member_key(world, HOSPITALS[0])
    headers = sign_request(
        key, method="GET", path="/requests", query="project=heart", body=b"", now=utc_now()
    )
    with client_as(world, None) as client:
        moved = client.get("/requests?project=other", headers=headers)
        assert moved.status_code == 401 and "bad signature" in moved.json()["error"]
        elsewhere = client.get("/agreements?project=heart", headers=headers)
        assert elsewhere.status_code == 401 and "bad signature" in elsewhere.json()["error"]


JSON = {"Content-Type": "application/json"}


def test_an_unsigned_act_is_refused_before_its_body_is_read(world: World) -> None:
    """Found by the fuzzing: a malformed body was a 400 before the missing signature's 401."""
    before = (nonces(world), len(show_entries(world.consortium)))
    with client_as(world, None) as anonymous:
        for route in (
            "/requests/r/sign",
            "/requests/r/refuse",
            "/agreements/a/revoke",
            "/datasets",
        ):
            for body in (b"{not json", b'{"signatures": 7}'):
                refused = anonymous.post(route, content=body, headers=JSON)
                assert refused.status_code == 401, (route, refused.text)
                assert refused.json()["error"].startswith("this route needs a signed request")
    assert (nonces(world), len(show_entries(world.consortium))) == before


def test_a_signed_act_is_checked_once_then_its_body(world: World) -> None:
    """The signature is checked before the body and not again (that would be a replay)."""
    with client_as(world, member_key(world, HOSPITALS[0])) as steward:
        before = nonces(world)
        bad = steward.post("/requests/r/refuse", json={"signatures": 7})
        assert bad.status_code == 400 and bad.json()["error"].startswith("signatures: ")
        unknown = steward.post("/requests/no-such-request/refuse", json={"reason": "no"})
        assert unknown.status_code == 404, unknown.text
    assert nonces(world) == before + 2  # one nonce per request


def test_an_integer_the_database_cannot_store_is_a_400_not_a_500(world: World) -> None:
    """Found by the fuzzing: `/ledger/entries/26724178836955645486301184` overflowed SQLite."""
    huge = str(2**63)
    with client_as(world, world.consortium.coordinator_key()) as operator:
        for route in (
            f"/ledger/entries/{huge}",
            f"/ledger/entries/{huge}/proof",
            f"/ledger/entries?after={huge}",
            f"/ledger/entries?last={huge}",
            f"/ledger/consistency?old=0&new={huge}",
            f"/charter?version={huge}",
        ):
            refused = operator.get(route)
            assert refused.status_code == 400, (route, refused.text)
            assert "less than or equal to 9223372036854775807" in refused.json()["error"]
        last = operator.get(f"/ledger/entries/{2**63 - 1}")
        assert last.status_code == 404  # the largest stored integer is still looked up
