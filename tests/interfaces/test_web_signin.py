"""Sign-in and roles on the dashboard, through Starlette's test client.

Every page of the dashboard (walked from its routes, so a new page without a declared
action fails here) is opened as the operator, a board member's node, a member's node
without a seat (admitted after the charter), an auditor and an anonymous viewer; what each
may see comes from the API's one table, `domain/roles.PERMITTED`. Then the attacks: a replayed
response, an expired challenge, a response signed by another key, a forged or expired
session, a form posted without or with a wrong CSRF token, an open redirect.
"""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount
from typer.testing import CliRunner

from kumiai.adapters.storage.database import transaction
from kumiai.domain import keys
from kumiai.domain.roles import PERMITTED, Action, Role
from kumiai.domain.sign_in import CHALLENGE_LIFETIME, SESSION_LIFETIME, respond
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.api.auth import route_actions
from kumiai.interfaces.cli.main import app as cli
from kumiai.interfaces.web.context import ANONYMOUS, Viewer, page_actions
from kumiai.interfaces.web.server import sign_in_lines
from kumiai.interfaces.web.sessions import PRESESSION_COOKIE, SESSION_COOKIE, SessionStore
from kumiai.node.home import NodeHome
from kumiai.services import transparency
from kumiai.services.access import grant_access, member_roles
from kumiai.services.consortium import Consortium
from kumiai.services.members import add_member, list_members
from kumiai.services.motions import propose_motion
from tests.interfaces.web_sign_in import challenge_and_token, post_sign_in, sign_in
from tests.services.licensing import pass_motion
from tests.services.reported import build_association

PARAMS = {
    "name": "heart",
    "job_id": "job-heart-v1",
    "model_id": "heart-v1",
    "seq": "0",
    "member": "cleveland-clinic",
}
NEWCOMER = "st-luke"  # admitted after the charter: a steward without a board seat


@dataclass(frozen=True)
class Site:
    consortium: Consortium
    app: FastAPI
    keys: dict[str, Ed25519PrivateKey]  # by who signs in: operator, board, member, auditor
    roles: dict[str, frozenset[Role]]

    def client(self, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.app, base_url=base_url)

    def signed_in(self, who: str) -> TestClient:
        client = self.client()
        sign_in(client, self.keys[who])
        return client

    @property
    def dashboard(self) -> FastAPI:
        mount = next(r for r in self.app.routes if isinstance(r, Mount) and r.name == "dashboard")
        assert isinstance(mount.app, FastAPI)
        return mount.app

    @property
    def store(self) -> SessionStore:
        store: SessionStore = self.dashboard.state.sessions
        return store


def _member_key(consortium: Consortium, member: str) -> Ed25519PrivateKey:
    return NodeHome(consortium.member_home(member)).private_key()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("signin")
    consortium = build_association(root / "c", root)
    admit = propose_motion(
        consortium, decision="admit-member", payload={"member": NEWCOMER}, proposer="lab"
    )
    pass_motion(consortium, admit.id)
    add_member(consortium, NEWCOMER, "hospital")
    auditor = Ed25519PrivateKey.generate()
    grant_access(consortium, name="kpmg", role="auditor", public_key=keys.public_key_b64(auditor))
    with transaction(consortium.sessions) as session:
        held = {m.name: member_roles(session, m.name) for m in list_members(consortium)}
    board = next(m for m, r in sorted(held.items()) if Role.BOARD in r)
    chosen = {"operator": consortium.coordinator_key(), "board": _member_key(consortium, board)}
    roles = {
        "operator": frozenset({Role.OPERATOR}),
        "board": held[board],
        "auditor": frozenset({Role.AUDITOR}),
    }
    chosen["member"] = _member_key(consortium, NEWCOMER)  # a member's node without a seat
    roles["member"] = held[NEWCOMER]
    chosen["auditor"] = auditor
    return Site(consortium, create_app(root / "c"), chosen, roles)


def _pages(dashboard: FastAPI) -> list[tuple[str, str, Action | None]]:
    """(method, path, declared action) of every route; a route without one fails here."""
    found = []
    for route, methods, declared in route_actions(dashboard, page_actions):
        assert len(declared) == 1, f"{route} declares {len(declared)} actions (context.needs)"
        path = "/ui" + re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], route)
        found.extend((method, path, declared[0]) for method in methods)
    mounts = [r.name for r in dashboard.routes if isinstance(r, Mount)]
    assert mounts == ["static"]  # files only, no page
    return sorted(found, key=lambda f: (f[0], f[1]))


def test_every_page_declares_an_action_from_the_apis_table(site: Site) -> None:
    pages = _pages(site.dashboard)
    actions = {action for _, _, action in pages}
    assert None in actions  # the sign-in pages, open to everyone
    assert actions - {None} <= set(PERMITTED)
    # The only forms that post: sign-in and sign-out (a new one must join the CSRF tests).
    assert [p for m, p, _ in pages if m == "POST"] == ["/ui/signin", "/ui/signout"]
    assert ("GET", "/ui/privacy", Action.BUDGETS_READ) in pages
    assert ("GET", "/ui/", Action.LEDGER_READ) in pages


def test_every_page_as_every_role_and_anonymous(site: Site) -> None:
    pages = [(p, a) for m, p, a in _pages(site.dashboard) if m == "GET" and a is not None]
    assert len(pages) == 16
    for who, roles in site.roles.items():
        client = site.signed_in(who)
        viewer = Viewer(who, roles)
        for path, action in pages:
            response = client.get(path, follow_redirects=False)
            allowed = viewer.may(action)
            if action is Action.MEMBER_RECORD_READ:  # and only its own, unless board
                allowed = viewer.may_read_member(PARAMS["member"])
            expected = 200 if allowed else 403
            assert response.status_code == expected, (who, path, response.text[:500])
    anonymous = site.client()
    opened = []
    for path, action in pages:
        response = anonymous.get(path, follow_redirects=False)
        assert (response.status_code == 200) is ANONYMOUS.may(action), path
        if response.status_code == 200:
            opened.append(path)
        else:
            assert response.status_code == 303, path
            assert response.headers["location"] == f"/ui/signin?next={path}"
    # Anonymous: the ledger's pages and the overview's head, nothing else.
    assert sorted(opened) == [
        "/ui/",
        "/ui/ledger",
        "/ui/ledger/consistency",
        "/ui/ledger/entries/0",
        "/ui/ledger/export",
    ]


def test_a_members_page_opens_to_its_steward_the_board_and_the_operator_only(
    site: Site,
) -> None:
    assert site.roles["member"] == {Role.STEWARD, Role.RESEARCHER}  # the newcomer, no seat
    own, other = f"/ui/members/{NEWCOMER}", "/ui/members/cleveland-clinic"
    expected = {  # who: (its own member's page or the newcomer's, another member's)
        "operator": (200, 200),
        "board": (200, 200),
        "member": (200, 403),
        "auditor": (403, 403),
    }
    for who, (first, second) in expected.items():
        client = site.signed_in(who)
        assert [client.get(own).status_code, client.get(other).status_code] == [
            first,
            second,
        ], who
    refused = site.signed_in("member").get(other)
    assert (
        f"{NEWCOMER} (researcher, steward) may read only its own member record, not "
        "cleveland-clinic&#39;s; the board and the operator read every member&#39;s"
    ) in refused.text
    assert 'id="back"' in refused.text and "Agreements and their terms" not in refused.text
    auditor = site.signed_in("auditor").get(own)
    assert "kpmg (auditor) may not member.record.read; only board, operator, steward" in (
        auditor.text
    )
    anonymous = site.client().get(own, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/ui/signin?next={own}"
    # The overview links a member's page only for a viewer who may open it.
    overview = site.signed_in("member").get("/ui/").text
    assert f'href="/ui/members/{NEWCOMER}"' in overview
    assert 'href="/ui/members/cleveland-clinic"' not in overview
    assert 'href="/ui/members/cleveland-clinic"' in site.signed_in("board").get("/ui/").text
    unknown = site.signed_in("operator").get("/ui/members/nobody")
    assert unknown.status_code == 404 and "unknown member &#39;nobody&#39;" in unknown.text


def test_a_role_the_table_does_not_permit_gets_a_403_page_naming_role_and_action(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PERMITTED, Action.BUDGETS_READ, frozenset({Role.STEWARD}))
    auditor = site.signed_in("auditor")
    response = auditor.get("/ui/privacy")
    assert response.status_code == 403
    assert "kpmg (auditor) may not budgets.read; only steward may" in response.text
    assert site.signed_in("board").get("/ui/privacy").status_code == 200


def test_the_signed_in_page_names_the_viewer_and_its_roles(site: Site) -> None:
    html = site.signed_in("auditor").get("/ui/board").text
    assert "Signed in as <b>kpmg</b> (auditor)" in html
    html = site.signed_in("operator").get("/ui/").text
    assert "Signed in as <b>coordinator</b> (operator)" in html
    assert 'id="members"' in html


def test_the_session_cookie_is_httponly_strict_scoped_and_secure_under_tls(site: Site) -> None:
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        client = site.client(base)
        challenge, csrf = challenge_and_token(client)
        response = post_sign_in(client, csrf, respond(site.keys["board"], challenge))
        assert response.status_code == 303
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
        )
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert ("Secure" in cookie) is secure, cookie


def test_a_replayed_response_is_refused(site: Site) -> None:
    client = site.client()
    challenge, csrf = challenge_and_token(client)
    presession = client.cookies[PRESESSION_COOKIE]
    answer = respond(site.keys["board"], challenge)
    assert post_sign_in(client, csrf, answer).status_code == 303
    sessions = len(site.store._sessions)
    # The same pre-session, token and response again: the challenge was spent.
    thief = site.client()
    thief.cookies.set(PRESESSION_COOKIE, presession)
    again = post_sign_in(thief, csrf, answer)
    assert again.status_code == 401
    assert "no sign-in is in progress in this browser" in again.text
    # Against a fresh challenge, the old signature does not verify.
    thief = site.client()
    _, fresh = challenge_and_token(thief)
    later = post_sign_in(thief, fresh, answer)
    assert later.status_code == 401
    assert "the signature does not verify" in later.text
    assert len(site.store._sessions) == sessions
    assert thief.get("/ui/privacy", follow_redirects=False).status_code == 303


def test_an_expired_challenge_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    client = site.client()
    challenge, csrf = challenge_and_token(client)
    now = site.store.clock()
    monkeypatch.setattr(
        site.store, "clock", lambda: now + CHALLENGE_LIFETIME + timedelta(seconds=1)
    )
    response = post_sign_in(client, csrf, respond(site.keys["board"], challenge))
    assert response.status_code == 401
    assert "the challenge expired (it lives 5 minutes)" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_a_response_signed_by_another_key_is_refused(site: Site) -> None:
    stranger = Ed25519PrivateKey.generate()
    client = site.client()
    challenge, csrf = challenge_and_token(client)
    response = post_sign_in(client, csrf, respond(stranger, challenge))
    assert response.status_code == 401
    assert "unknown key" in response.text
    # Another key's signature under the board member's key id.
    challenge, csrf = challenge_and_token(client)
    claimed = respond(site.keys["board"], challenge).split(".")[0]
    forged = f"{claimed}.{respond(stranger, challenge).split('.')[1]}"
    response = post_sign_in(client, csrf, forged)
    assert response.status_code == 401
    assert "the signature does not verify" in response.text
    challenge, csrf = challenge_and_token(client)
    response = post_sign_in(client, csrf, "not a response")
    assert response.status_code == 401 and "the response is not KEYID.SIGNATURE" in response.text
    assert client.get("/ui/privacy", follow_redirects=False).status_code == 303


def test_a_forged_or_expired_session_cookie_is_nobody(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = site.client()
    forged.cookies.set(SESSION_COOKIE, "A" * 43, path="/ui")
    assert forged.get("/ui/privacy", follow_redirects=False).status_code == 303
    client = site.signed_in("board")
    assert client.get("/ui/privacy").status_code == 200
    now = site.store.clock()
    monkeypatch.setattr(site.store, "clock", lambda: now + SESSION_LIFETIME)
    assert client.get("/ui/privacy", follow_redirects=False).status_code == 303


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    client = site.client()
    challenge, _ = challenge_and_token(client)
    answer = respond(site.keys["operator"], challenge)
    refused = post_sign_in(client, None, answer)
    assert refused.status_code == 403
    assert "sign-in form&#39;s CSRF token is missing or wrong" in refused.text
    challenge, _ = challenge_and_token(client)
    refused = post_sign_in(client, "x" * 43, respond(site.keys["operator"], challenge))
    assert refused.status_code == 403
    assert client.get("/ui/privacy", follow_redirects=False).status_code == 303
    # Sign-out needs the session's own token too, and keeps the session when it is wrong.
    auditor = site.signed_in("auditor")
    for data in ({}, {"csrf": "wrong"}):
        out = auditor.post("/ui/signout", data=data, follow_redirects=False)
        assert out.status_code == 403
        assert "sign-out form&#39;s CSRF token is missing or wrong" in out.text
    assert auditor.get("/ui/privacy").status_code == 200


def test_sign_out_ends_the_session_for_good(site: Site) -> None:
    client = site.signed_in("auditor")
    token = client.cookies[SESSION_COOKIE]
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/board").text)
    assert csrf is not None
    out = client.post("/ui/signout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/signin"
    replay = site.client()
    replay.cookies.set(SESSION_COOKIE, token, path="/ui")
    assert replay.get("/ui/board", follow_redirects=False).status_code == 303


def test_sign_in_returns_only_to_a_page_of_the_dashboard(site: Site) -> None:
    for wanted, landed in (
        ("/ui/board", "/ui/board"),
        ("https://evil.example/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/docs", "/ui/"),
    ):
        client = site.client()
        html = client.get("/ui/signin", params={"next": wanted}).text
        challenge = re.search(r"kumiai node sign-in (\S+) --home", html)
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert challenge and csrf
        response = client.post(
            "/ui/signin",
            data={
                "csrf": csrf.group(1),
                "response": respond(site.keys["auditor"], challenge.group(1)),
                "next": wanted,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == landed, wanted


def test_the_node_signs_a_challenge_with_its_own_key(site: Site) -> None:
    client = site.client()
    challenge, csrf = challenge_and_token(client)
    member = "lab"
    result = CliRunner().invoke(
        cli, ["node", "sign-in", challenge, "--home", str(site.consortium.member_home(member))]
    )
    assert result.exit_code == 0, result.output
    assert post_sign_in(client, csrf, result.output.strip()).status_code == 303
    assert f"Signed in as <b>{member}</b>" in client.get("/ui/board").text
    refused = CliRunner().invoke(
        cli, ["node", "sign-in", "short", "--key", str(site.consortium.coordinator_key_file)]
    )
    assert refused.exit_code != 0
    assert "'short' is not a sign-in challenge" in str(refused.exception)


def test_the_loopback_demo_signs_in_the_operator_and_nobody_else(
    site: Site,
) -> None:
    demo = create_app(site.consortium.home, local_operator=True)
    local = TestClient(demo, client=("127.0.0.1", 50000))
    html = local.get("/ui/privacy").text
    assert "signed in automatically: the demo on this machine only" in html
    remote = TestClient(demo, client=("10.0.0.7", 50000))
    assert remote.get("/ui/privacy", follow_redirects=False).status_code == 303
    served = TestClient(site.app, client=("127.0.0.1", 50000))
    assert served.get("/ui/privacy", follow_redirects=False).status_code == 303


def test_an_auditor_posting_to_a_page_changes_nothing(site: Site) -> None:
    """The pages only read: a form aimed at one is refused, and the ledger does not grow."""
    auditor = site.signed_in("auditor")
    size = transparency.latest_head(site.consortium).size
    csrf = re.search(r'name="csrf" value="([^"]+)"', auditor.get("/ui/board").text)
    assert csrf is not None
    for path in ("/ui/board", "/ui/projects/heart", "/ui/privacy", "/ui/ledger"):
        response = auditor.post(path, data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert response.status_code == 405, path
    assert transparency.latest_head(site.consortium).size == size
    assert auditor.get("/ui/board").status_code == 200


def test_the_demo_prints_a_sign_in_command_for_each_role_that_works(site: Site) -> None:
    lines = sign_in_lines(site.consortium.home)
    key_file = site.consortium.coordinator_key_file
    assert lines[0] == f"operator: kumiai node sign-in CHALLENGE --key {key_file}"
    assert lines[-1].startswith("auditor: kumiai coordinator grant --role auditor")
    lab = next(line for line in lines if line.startswith("lab's node"))
    for line in (lines[0], lab):
        client = site.client()
        challenge, csrf = challenge_and_token(client)
        args = line.split(": ", 1)[1].replace("CHALLENGE", challenge).split()[1:]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert post_sign_in(client, csrf, result.output.strip()).status_code == 303
        assert client.get("/ui/privacy").status_code == 200


def test_an_oversized_sign_in_form_is_refused_before_it_is_read(site: Site) -> None:
    client = site.client()
    challenge, csrf = challenge_and_token(client)
    response = post_sign_in(client, csrf, respond(site.keys["board"], challenge) + " " * 5000)
    assert response.status_code == 400
    assert "the form is over 4096 bytes" in response.text
    assert client.get("/ui/privacy", follow_redirects=False).status_code == 303


def test_a_polled_fragment_without_a_session_sends_the_whole_page_to_sign_in(site: Site) -> None:
    progress = "/ui/jobs/job-heart-v1/progress"
    response = site.client().get(progress, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.text == ""
    assert response.headers["hx-redirect"] == f"/ui/signin?next={progress}"
