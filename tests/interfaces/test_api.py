"""The coordinator's read API: every route returns what the CLI's `--json` prints for the
same thing, kumiai's errors map to 404/400/409 as `{"error": …}`, the ledger's proofs
verify with the domain's Merkle functions, `/docs` loads nothing from the internet, and a
real `kumiai coordinator serve` answers over TLS only to clients that trust the
consortium's CA, and stops on SIGTERM.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kumiai.adapters.coordinator_client import RequestSigner
from kumiai.adapters.tls import create_authority
from kumiai.domain import merkle
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import NotFound, SchemaMismatch, StateError, UnsupportedVersion
from kumiai.domain.ledger import SignedEntry, TreeHead, head_signature_valid
from kumiai.domain.quota import QuotaExceeded
from kumiai.domain.request_auth import content_digest
from kumiai.interfaces.api.app import create_app, status_of
from kumiai.interfaces.cli.main import app as cli
from kumiai.services.agreements import list_agreements
from kumiai.services.charter import propose_charter, sign_charter
from kumiai.services.consortium import open_consortium
from kumiai.services.funds import receive_funds
from kumiai.services.milestones import add_milestone
from kumiai.services.motions import propose_motion
from kumiai.services.spend import record_spend
from kumiai.services.themes import add_theme
from tests.coordinator_process import start_coordinator
from tests.services.helpers import HOSPITALS, heart_consortium


@dataclass(frozen=True)
class Small:
    home: Path
    agreement: str
    coordinator_key: str


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Small:
    """Three hospitals, a charter, a motion, a theme, funds, spend and a milestone; no job."""
    home = tmp_path_factory.mktemp("api") / "c"
    consortium, _ = heart_consortium(home, sign=HOSPITALS[:2])
    propose_charter(consortium, proposed_by="lab")
    for member in sorted(["lab", *HOSPITALS]):
        sign_charter(consortium, member)
    add_theme(consortium, name="heart", title="Heart disease", by="lab")
    propose_motion(
        consortium, decision="set-priorities", payload={"ranking": ["heart"]}, proposer="lab"
    )
    receive_funds(consortium, source="nedo-grant", kind="grant", payer="NEDO", amount=1000)
    record_spend(
        consortium, project="heart", category="compute", amount=300, description="GPU", by="lab"
    )
    add_milestone(
        consortium, project="heart", name="first-model", title="A model", due="2026-01-31", by="lab"
    )
    agreement = next(a.id for a in list_agreements(consortium) if a.steward == HOSPITALS[0])
    return Small(home, agreement, consortium.coordinator_public_key())


@pytest.fixture(scope="module")
def client(small: Small) -> TestClient:
    with TestClient(create_app(small.home)) as client:
        # Records need a signed request (tests/interfaces/test_api_access.py): the operator's.
        client.auth = RequestSigner(open_consortium(small.home).coordinator_key())
        yield client


def cli_json(home: Path, *args: str) -> object:
    """What `kumiai --home HOME ARGS` prints on stdout, parsed."""
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def same_as_cli(small: Small) -> dict[str, list[str]]:
    return {
        "/members": ["member", "list", "--json"],
        "/datasets": ["dataset", "list", "--json"],
        "/datasets/cleveland-clinic-heart": ["dataset", "show", "cleveland-clinic-heart", "--json"],
        "/projects": ["project", "list", "--json"],
        "/projects/heart": ["project", "show", "heart", "--json"],
        "/projects/heart/spend": ["spend", "show", "heart", "--json"],
        "/requests": ["requests", "--json"],
        "/requests?project=heart": ["requests", "heart", "--json"],
        "/agreements": ["agreement", "list", "--json"],
        f"/agreements/{small.agreement}": ["agreement", "show", small.agreement, "--json"],
        "/jobs": ["jobs", "--json"],
        "/models": ["models", "--json"],
        "/budget": ["budget", "show", "--json"],
        "/charter": ["charter", "show", "--json"],
        "/charter?version=1": ["charter", "show", "--version", "1", "--json"],
        "/motions": ["motion", "list", "--json"],
        "/motions?status=open": ["motion", "list", "--status", "open", "--json"],
        "/motions/motion-1": ["motion", "show", "motion-1", "--json"],
        "/themes": ["theme", "list", "--json"],
        "/themes/heart": ["theme", "show", "heart", "--json"],
        "/funds": ["funds", "list", "--json"],
        "/milestones": ["milestone", "list", "--json"],
        "/milestones/heart/first-model": ["milestone", "show", "heart", "first-model", "--json"],
        "/spinouts": ["spinout", "list", "--json"],
        "/licences": ["licence", "list", "--json"],
        "/royalties/statement": ["royalties", "statement", "--json"],
        "/royalties/statement?member=lab": ["royalties", "statement", "--member", "lab", "--json"],
        "/ledger/entries": ["ledger", "show", "--json"],
        "/ledger/entries?kind=agreement.": ["ledger", "show", "--type", "agreement.", "--json"],
        "/ledger/entries?last=2": ["ledger", "show", "--last", "2", "--json"],
        "/ledger/entries/3/proof": ["ledger", "prove", "3"],
    }


def test_every_read_route_returns_what_the_cli_prints(small: Small, client: TestClient) -> None:
    for route, args in same_as_cli(small).items():
        response = client.get(route)
        assert response.status_code == 200, (route, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == cli_json(small.home, *args), route
    # Real values, not empty shells: the comparison above could not pass vacuously.
    assert [m["name"] for m in client.get("/members").json()] == sorted(["lab", *HOSPITALS])
    assert client.get("/funds").json()["received_yen"] == 1000
    assert client.get("/projects/heart").json()["project"]["name"] == "heart"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", client.get("/agreements").json()[0]["signed_at"]
    )


def test_kumiai_errors_map_to_http_statuses_with_one_message(
    small: Small, client: TestClient
) -> None:
    missing = client.get("/datasets/nowhere-heart")
    assert missing.status_code == 404
    assert missing.json() == {"error": "unknown dataset 'nowhere-heart'; see `kumiai dataset list`"}
    for route in (
        "/jobs/job-9",
        "/models/heart-v9",
        "/models/heart-v9/contributions",
        "/spinouts/acme",
        "/ledger/entries/9999",
        "/motions/motion-99",
    ):
        response = client.get(route)
        assert response.status_code == 404, route
        assert set(response.json()) == {"error"} and "Traceback" not in response.text
    backwards = client.get("/ledger/consistency?old=5&new=2")
    assert backwards.status_code == 400
    assert backwards.json()["error"].startswith("a consistency proof goes from an older size")
    bad_type = client.get("/ledger/entries?after=yesterday")
    assert bad_type.status_code == 400 and "after" in bad_type.json()["error"]
    no_route = client.get("/nothing-here")
    assert no_route.status_code == 404 and "no route /nothing-here" in no_route.json()["error"]


def test_each_error_class_takes_its_familys_status() -> None:
    assert status_of(NotFound("x")) == 404
    assert status_of(SchemaMismatch("x")) == 400 and status_of(UnsupportedVersion("x")) == 400
    assert status_of(QuotaExceeded("heart", 10, 8, 4)) == 409 and status_of(StateError("x")) == 409


def test_a_state_error_is_409_and_an_unexpected_one_500_without_traceback(small: Small) -> None:
    api = create_app(small.home)

    @api.get("/conflict")
    def conflict() -> None:
        raise StateError("the charter is already adopted; amend it by an amend-charter motion")

    @api.get("/bug")
    def bug() -> None:
        raise RuntimeError("secret detail")

    with TestClient(api, raise_server_exceptions=False) as client:
        response = client.get("/conflict")
        assert response.status_code == 409
        assert response.json() == {
            "error": "the charter is already adopted; amend it by an amend-charter motion"
        }
        crash = client.get("/bug")
        assert crash.status_code == 500
        assert "secret detail" not in crash.text and "Traceback" not in crash.text
        assert crash.json() == {
            "error": "internal error (RuntimeError); the server's log has details"
        }


def test_ledger_routes_prove_what_they_say(small: Small, client: TestClient) -> None:
    document = client.get("/ledger/head").json()
    head = TreeHead.from_document(document)
    assert head_signature_valid(head, small.coordinator_key)
    entries = client.get("/ledger/entries").json()
    assert len(entries) == head.size and [e["seq"] for e in entries] == list(range(head.size))
    assert client.get("/ledger/entries/4").json() == entries[4]
    assert client.get("/ledger/entries?after=4").json() == entries[5:]
    # Inclusion: the leaf from the export, the path from the API, the root the head signed.
    lines = client.get("/ledger/export").text.splitlines()
    leaves = [json.loads(line)["leaf"] for line in lines[1:] if '"record": "entry"' in line]
    for seq in (0, 4, head.size - 1):
        proof = client.get(f"/ledger/entries/{seq}/proof").json()
        leaf_hash = merkle.leaf_hash(leaves[seq].encode())
        assert proof["leaf_hash"] == leaf_hash.hex() and proof["root"] == head.root
        assert SignedEntry.from_leaf_bytes(leaves[seq]).entry.seq == seq
        path = [bytes.fromhex(p) for p in proof["path"]]
        assert merkle.verify_inclusion(leaf_hash, seq, head.size, path, bytes.fromhex(head.root))
        assert not merkle.verify_inclusion(
            leaf_hash, (seq + 1) % head.size, head.size, path, bytes.fromhex(head.root)
        )
    # Consistency: from an old size to the signed head, recomputed from the leaves alone.
    old = 7
    proof = client.get(f"/ledger/consistency?old={old}&new={head.size}").json()
    hashes = [merkle.leaf_hash(leaf.encode()) for leaf in leaves]
    old_root = merkle.root_from_leaves(hashes[:old])
    assert proof["old_root"] == old_root.hex() and proof["new_root"] == head.root
    path = [bytes.fromhex(p) for p in proof["path"]]
    assert proof["verified"] is True
    assert merkle.verify_consistency(old, head.size, old_root, bytes.fromhex(head.root), path)
    forged = merkle.root_from_leaves([*hashes[: old - 1], hashes[old]])
    assert not merkle.verify_consistency(old, head.size, forged, bytes.fromhex(head.root), path)
    beyond = client.get(f"/ledger/consistency?old=1&new={head.size + 1}")
    assert beyond.status_code == 404 and f"has {head.size} entries" in beyond.json()["error"]


def test_the_export_downloads_as_json_lines_and_verifies(
    small: Small, client: TestClient, tmp_path: Path
) -> None:
    response = client.get("/ledger/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jsonl"
    assert "attachment" in response.headers["content-disposition"]
    # What a client checks before it keeps a streamed export (kumiai ledger export --coordinator)
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-digest"] == content_digest(response.content)
    keys = client.get("/ledger/keys").json()
    members = {m["name"] for m in client.get("/members").json()}
    assert keys["coordinator"] == small.coordinator_key and set(keys) == members | {"coordinator"}
    export = tmp_path / "ledger.jsonl"
    export.write_bytes(response.content)
    header = json.loads(response.text.splitlines()[0])
    assert header["entries"] == len(client.get("/ledger/entries").json())
    verified = CliRunner().invoke(cli, ["ledger", "verify", str(export)])
    assert verified.exit_code == 0 and "verified" in verified.stdout


def test_docs_are_served_from_local_assets_only(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert not re.search(r"https?://", page.text)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3 and all(a.startswith("/docs/assets/") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert '"validatorUrl": null' in page.text  # Swagger UI would otherwise ask swagger.io
    schema = client.get("/openapi.json").json()
    assert "/ledger/consistency" in schema["paths"] and "/members" in schema["paths"]


def test_the_api_loads_no_flower_or_ray() -> None:
    code = (
        "import sys, kumiai.interfaces.api.app, kumiai.interfaces.api.server;"
        "print(sorted(m for m in ('flwr', 'ray', 'dp_accounting', 'sklearn') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"


# -- a real server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kumiai(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kumiai", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def get(url: str, context: ssl.SSLContext) -> object:
    with urllib.request.urlopen(url, context=context, timeout=5) as response:
        return json.loads(response.read())


def test_serve_refuses_without_the_tls_files(small: Small) -> None:
    refused = kumiai(small.home, "coordinator", "serve", "--port", str(free_port()))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "run `kumiai coordinator init --host NAME` first" in " ".join(refused.stderr.split())


def test_serve_answers_over_tls_to_clients_trusting_the_ca_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    home = tmp_path / "c"
    heart_consortium(home, hospitals=HOSPITALS[:1], sign=())
    made = kumiai(home, "coordinator", "init", "--host", "127.0.0.1")
    assert made.returncode == 0, made.stderr
    port = free_port()
    server = start_coordinator(home, port)
    try:
        trusting = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
        assert trusting.check_hostname and trusting.verify_mode == ssl.CERT_REQUIRED
        url = f"https://127.0.0.1:{port}/ledger/entries?kind=member.joined"  # public
        members = get(url, trusting)
        assert sorted(e["actor"] for e in members) == [HOSPITALS[0], "lab"]
        # A client that trusts another CA refuses the server's certificate.
        other = tmp_path / "other-ca"
        create_authority(other, "someone-else", utc_now())
        stranger = ssl.create_default_context(cafile=str(other / "ca.pem"))
        with pytest.raises(urllib.error.URLError) as refused:
            get(url, stranger)
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        # Plain HTTP gets no answer from a TLS port.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/members", timeout=5)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        started = time.monotonic()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail("the server did not stop within 10 s of SIGTERM")
    assert time.monotonic() - started < 10
    assert "Traceback" not in server.stderr.read()
