"""`KUMIAI_COORDINATOR`: the read commands print the coordinator's documents, the same
`--json` as reading the home itself, signed with a node's key; no local home is opened."""

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.domain import keys
from kumiai.domain.clock import frozen_at
from kumiai.domain.request_auth import content_digest
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.cli.main import app as cli
from kumiai.node import remote
from kumiai.node.home import NodeHome
from kumiai.services.access import grant_access
from kumiai.services.agreements import list_agreements
from kumiai.services.charter import propose_charter, sign_charter
from kumiai.services.consortium import open_consortium
from kumiai.services.coordinator_tls import init_tls
from kumiai.services.motions import propose_motion
from kumiai.services.privacy import set_budget
from kumiai.services.themes import add_theme
from tests.coordinator_process import ENV, start_coordinator
from tests.interfaces.test_api import free_port
from tests.services.helpers import HOSPITALS, heart_consortium


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("remote") / "c"
    consortium, _ = heart_consortium(home, hospitals=HOSPITALS[:2], sign=HOSPITALS[:1])
    agreement = list_agreements(consortium)[0].id
    set_budget(consortium, f"{HOSPITALS[0]}-heart", 3.0)
    propose_charter(consortium, proposed_by="lab")
    for member in ("lab", *HOSPITALS[:2]):
        sign_charter(consortium, member)
    add_theme(consortium, name="heart", title="Heart disease", by="lab")
    propose_motion(
        consortium, decision="set-priorities", payload={"ranking": ["heart"]}, proposer="lab"
    )
    return home, agreement


def run(*args: str, env: dict[str, str] | None = None) -> object:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_read_commands_print_the_coordinators_documents(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, agreement = served
    node = home / "members" / HOSPITALS[0]
    app = create_app(home)

    def reader_for(root: Path, url: str) -> CoordinatorClient:
        assert (root, url) == (node, "https://coordinator.example:8443")
        transport = TestClient(app)._transport  # in-process instead of TLS
        key = NodeHome(root).private_key()
        return CoordinatorClient("http://testserver", key=key, transport=transport)

    monkeypatch.setattr(remote, "reader_for", reader_for)
    env = {"KUMIAI_COORDINATOR": "https://coordinator.example:8443", "KUMIAI_NODE_HOME": str(node)}
    nowhere = str(tmp_path / "no-home-here")
    commands = [
        ["member", "list"],
        ["dataset", "list"],
        ["dataset", "show", f"{HOSPITALS[1]}-heart"],
        ["project", "list"],
        ["project", "show", "heart"],
        ["requests"],
        ["requests", "heart"],
        ["agreement", "list"],
        ["agreement", "show", agreement],
        ["models"],
    ]
    for command in commands:
        local = run("--home", str(home), *command, "--json")
        assert run("--home", nowhere, *command, "--json", env=env) == local, command
    assert not Path(nowhere).exists()


def test_remote_reads_are_json_only_and_need_a_node_home(served: tuple[Path, str]) -> None:
    env = {"KUMIAI_COORDINATOR": "https://coordinator.example:8443"}
    plain = CliRunner().invoke(cli, ["member", "list"], env=env)
    assert plain.exit_code != 0 and "print the coordinator's documents as JSON only" in str(
        plain.exception
    )
    keyless = CliRunner().invoke(cli, ["member", "list", "--json"], env=env)
    assert "also set KUMIAI_NODE_HOME to a node home joined to that coordinator" in str(
        keyless.exception
    )


# Every read command of tests/interfaces/test_read_commands.py, against a coordinator: the
# same `--json` bytes, or one line naming the command as local-only.
REMOTE = [
    ["jobs"],
    ["budget"],
    ["budget", "show"],
    ["charter", "show"],
    ["motion", "list"],
    ["motion", "show", "motion-1"],
    ["theme", "list"],
    ["theme", "show", "heart"],
    ["funds"],
    ["funds", "list"],
    ["milestone", "list"],
    ["spinout", "list"],
    ["licence", "list"],
    ["royalties", "statement"],
    ["ledger", "show"],
    ["ledger", "show", "--type", "agreement.", "--last", "1"],
    ["spend", "heart"],
    ["spend", "show", "heart"],
    ["project", "budget", "heart"],
]
LOCAL_ONLY = [
    ["ledger", "witness"],  # the members' nodes on this machine cosign
    ["member", "add", "evil", "--kind", "company"],  # a write: never to a local home
]


def in_process(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both readers (a node home's, a key file's) reach `app` in-process instead of TLS."""
    from kumiai.adapters import coordinator_client

    real = coordinator_client.CoordinatorClient

    def reader_for(root: Path, url: str) -> CoordinatorClient:
        transport = TestClient(app)._transport
        return real("http://testserver", key=NodeHome(root).private_key(), transport=transport)

    def by_key_file(url: str, *, ca_cert: Path, key: object) -> CoordinatorClient:
        assert ca_cert.name == "ca.pem"
        return real("http://testserver", key=key, transport=TestClient(app)._transport)

    monkeypatch.setattr(remote, "reader_for", reader_for)
    monkeypatch.setattr(coordinator_client, "CoordinatorClient", by_key_file)


def test_the_coordinator_option_reads_every_remote_command(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, _ = served
    in_process(create_app(home), monkeypatch)
    env = {"KUMIAI_NODE_HOME": str(home / "members" / HOSPITALS[0])}
    nowhere = str(tmp_path / "no-home-here")
    url = ("--coordinator", "https://coordinator.example:8443")
    for command in REMOTE:
        local = run("--home", str(home), *command, "--json")
        assert run("--home", nowhere, *url, *command, "--json", env=env) == local, command
    proof = CliRunner().invoke(cli, [*url, "ledger", "prove", "3"], env=env)
    local_proof = CliRunner().invoke(cli, ["--home", str(home), "ledger", "prove", "3"])
    assert proof.exit_code == 0 and json.loads(proof.stdout) == json.loads(local_proof.stdout)
    assert not Path(nowhere).exists()


def test_local_only_commands_refuse_in_one_line(served: tuple[Path, str]) -> None:
    home, _ = served
    before = len(run("--home", str(home), "ledger", "show", "--json"))  # type: ignore[arg-type]
    for command in LOCAL_ONLY:
        refused = CliRunner().invoke(
            cli, ["--home", str(home), "--coordinator", "https://c.example:8443", *command]
        )
        assert refused.exit_code != 0, command
        message = str(refused.exception)
        assert "\n" not in message and message.endswith(
            "works on a local consortium home only, not against the coordinator at "
            "https://c.example:8443; run it on the coordinator's machine with --home, or "
            "without --coordinator / KUMIAI_COORDINATOR"
        ), command
        named = message.split("`")[1].split()  # the command it names, after the program
        assert named[1] == command[0] and named[-1] in [*command, "show"], message
    assert len(run("--home", str(home), "ledger", "show", "--json")) == before  # type: ignore[arg-type]


def test_an_auditor_reads_with_only_a_key_file(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, _ = served
    options = auditor_options(home, "kpmg", monkeypatch, tmp_path)
    for command in (["member", "list"], ["requests"], ["budget"]):
        local = run("--home", str(home), *command, "--json")
        assert run(*options, *command, "--json", env={"KUMIAI_NODE_HOME": ""}) == local
    unknown = keys.new_private_key()
    (tmp_path / "stranger.pem").write_bytes(keys.private_key_to_pem(unknown))
    options[3] = str(tmp_path / "stranger.pem")
    refused = CliRunner().invoke(
        cli, [*options, "member", "list", "--json"], env={"KUMIAI_NODE_HOME": ""}
    )
    assert refused.exit_code != 0 and "unknown key" in str(refused.exception)


# Read without importing: tests/interfaces/test_read_commands.py loads the training stack.
REMOTELY = {" ".join(c) for c in REMOTE} | {
    *("member list", "dataset list", "dataset show", "project list", "project show"),
    *("requests", "agreement list", "agreement show", "job", "models", "model"),
    *("model show", "model card", "milestone show", "ledger prove", "spinout list"),
    "ledger export",  # streamed: test_a_remote_export_is_the_local_export_byte_for_byte…
    *("ledger verify", "report", "agreement export", "spinout show", "licence show"),
}
LOCALLY: set[str] = set()


def test_every_read_command_is_remote_or_says_it_is_local_only() -> None:
    import ast

    source = (Path(__file__).parent / "test_read_commands.py").read_text(encoding="utf-8")
    [listed] = [
        ast.literal_eval(node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "COMMANDS" for t in node.targets)
    ]
    tried = {" ".join(c[:n]) for c in REMOTE for n in (1, 2)}  # "spend", "motion show"
    unplaced = [c for c in listed if c != "--help" and c not in REMOTELY | tried | LOCALLY]
    assert unplaced == [], f"make these work with --coordinator, or refuse: {unplaced}"
    assert {" ".join(c[:2]) for c in LOCAL_ONLY} >= LOCALLY


# -- exports, streamed from the coordinator ----------------------------------------------------

EXPORTED_AT = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
URL = ("--coordinator", "https://coordinator.example:8443")


def auditor_options(
    home: Path, name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[str]:
    """An auditor with only a granted key file and a CA file (no node home): the options
    that reach the in-process coordinator at `home` as them."""
    key = keys.new_private_key()
    (tmp_path / "auditor.pem").write_bytes(keys.private_key_to_pem(key))
    (tmp_path / "ca.pem").write_text("the consortium's CA, pinned by the auditor")
    grant_access(
        open_consortium(home), name=name, role="auditor", public_key=keys.public_key_b64(key)
    )
    in_process(create_app(home), monkeypatch)
    return [*URL, "--key", str(tmp_path / "auditor.pem"), "--ca", str(tmp_path / "ca.pem")]


def through(home: Path, monkeypatch: pytest.MonkeyPatch, alter: Any = None) -> dict[str, str]:
    """A member's node reads from the API over `home` in-process; `alter(response)` may
    change each reply on the way, as a broken network or a meddling proxy would. Returns
    the environment naming the node home."""
    inner = TestClient(create_app(home))._transport

    def relay(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        return alter(response) if alter is not None else response

    def reader_for(root: Path, url: str) -> CoordinatorClient:
        transport = httpx.MockTransport(relay)
        return CoordinatorClient(
            "http://testserver", key=NodeHome(root).private_key(), transport=transport
        )

    monkeypatch.setattr(remote, "reader_for", reader_for)
    return {"KUMIAI_NODE_HOME": str(home / "members" / HOSPITALS[0])}


def test_a_remote_export_is_the_local_export_byte_for_byte_and_verifies(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, _ = served
    env = through(home, monkeypatch)
    local, fetched = tmp_path / "local.jsonl", tmp_path / "remote" / "export.jsonl"
    with frozen_at(EXPORTED_AT):
        done = CliRunner().invoke(
            cli, ["--home", str(home), "ledger", "export", str(local), "--keys", f"{local}.keys"]
        )
        assert done.exit_code == 0, done.output
        streamed = CliRunner().invoke(
            cli,
            [*URL, "ledger", "export", str(fetched), "--keys", str(tmp_path / "keys.json")],
            env=env,
        )
    assert streamed.exit_code == 0, streamed.output
    assert fetched.read_bytes() == local.read_bytes()
    assert (tmp_path / "keys.json").read_bytes() == Path(f"{local}.keys").read_bytes()
    size = len(run("--home", str(home), "ledger", "show", "--json"))  # type: ignore[arg-type]
    assert f"Exported {size} entries to" in " ".join(streamed.stdout.split())
    checked = CliRunner().invoke(
        cli, ["ledger", "verify", str(fetched), "--keys", str(tmp_path / "keys.json"), "--json"]
    )
    assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"] is True
    assert sorted(p.name for p in fetched.parent.iterdir()) == ["export.jsonl"]


def _cut(response: httpx.Response) -> httpx.Response:
    body = response.read()
    return httpx.Response(response.status_code, headers=response.headers, content=body[:-40])


def _altered(response: httpx.Response) -> httpx.Response:
    body = response.read().replace(b'"entries": ', b'"entries": 1', 1)
    headers = {**response.headers, "content-length": str(len(body))}
    return httpx.Response(response.status_code, headers=headers, content=body)


def _unannounced(response: httpx.Response) -> httpx.Response:
    headers = {k: v for k, v in response.headers.items() if k != "content-digest"}
    return httpx.Response(response.status_code, headers=headers, content=response.read())


@pytest.mark.parametrize(
    ("alter", "says"),
    [
        (_cut, "bytes of /ledger/export where it announced"),
        (_altered, "does not match the SHA-256 the coordinator announced"),
        (_unannounced, "did not announce the length and SHA-256"),
    ],
)
def test_a_cut_or_altered_export_is_refused_and_leaves_no_file(
    served: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    alter: Any,
    says: str,
) -> None:
    home, _ = served
    env = through(home, monkeypatch, alter)
    target = tmp_path / "out" / "export.jsonl"
    refused = CliRunner().invoke(cli, [*URL, "ledger", "export", str(target)], env=env)
    assert refused.exit_code != 0
    assert says in str(refused.exception) and "nothing written" in str(refused.exception)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_the_report_the_odrl_policy_and_the_shows_come_from_the_coordinator(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, agreement = served
    env = through(home, monkeypatch)
    nowhere = str(tmp_path / "no-home-here")
    board = ["report", "--for", "board", "--date", "2026-11-29"]
    for fmt in ("json", "md", "html"):
        local = CliRunner().invoke(cli, ["--home", str(home), *board, "--format", fmt])
        asked = CliRunner().invoke(cli, ["--home", nowhere, *URL, *board, "--format", fmt], env=env)
        assert asked.exit_code == 0 and local.exit_code == 0, asked.output
        assert asked.stdout == local.stdout, fmt
    member = ["report", "--for", "member", "--member", HOSPITALS[0], "--date", "2026-11-29"]
    assert run(*URL, *member, "--json", env=env) == run("--home", str(home), *member, "--json")
    odrl = ["agreement", "export", agreement, "--odrl"]
    local = CliRunner().invoke(cli, ["--home", str(home), *odrl])
    asked = CliRunner().invoke(cli, ["--home", nowhere, *URL, *odrl], env=env)
    assert asked.exit_code == 0 and json.loads(asked.stdout) == json.loads(local.stdout)
    assert json.loads(asked.stdout)["uid"].endswith(agreement)
    for show in (["spinout", "show", "no-such"], ["licence", "show", "no-such"]):
        here = CliRunner().invoke(cli, ["--home", str(home), *show, "--json"])
        there = CliRunner().invoke(cli, [*URL, *show, "--json"], env=env)
        assert here.exit_code != 0 and str(there.exception) == f"coordinator: {here.exception}"
    assert not Path(nowhere).exists()


def test_a_remote_report_refuses_keys_it_could_not_pin(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, _ = served
    env = through(home, monkeypatch)
    keys_file = tmp_path / "keys.json"
    keys_file.write_text("{}")
    refused = CliRunner().invoke(
        cli, [*URL, "report", "--for", "board", "--keys", str(keys_file)], env=env
    )
    assert refused.exit_code != 0 and "then `kumiai report --export FILE --keys KEYS`" in str(
        refused.exception
    )


def test_ledger_verify_checks_the_coordinators_ledger_here(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = served
    env = through(home, monkeypatch)
    checked = CliRunner().invoke(cli, [*URL, "ledger", "verify", "--json"], env=env)
    assert checked.exit_code == 0, checked.output
    local = CliRunner().invoke(cli, ["--home", str(home), "ledger", "verify", "--json"])
    assert json.loads(checked.stdout) == json.loads(local.stdout)
    said = CliRunner().invoke(cli, [*URL, "ledger", "verify"], env=env)
    assert "verified the ledger of https://coordinator.example:8443:" in said.stdout

    def forged(response: httpx.Response) -> httpx.Response:
        """A coordinator rewriting an entry, announcing the digest of what it sends."""
        body = response.read()
        if not response.headers.get("content-digest"):
            return response
        body = body.replace(HOSPITALS[1].encode(), b"x" * len(HOSPITALS[1]), 1)
        headers = {**response.headers, "content-digest": content_digest(body)}
        return httpx.Response(response.status_code, headers=headers, content=body)

    env = through(home, monkeypatch, forged)
    caught = CliRunner().invoke(cli, [*URL, "ledger", "verify"], env=env)
    assert caught.exit_code == 1 and "verification failed" in caught.stderr


def test_a_remote_verify_holds_the_coordinator_key_the_node_pinned(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A node that pinned another coordinator key refuses this log, however well it verifies
    under the key the export itself names."""
    home, _ = served
    node = tmp_path / "node"
    shutil.copytree(home / "members" / HOSPITALS[0], node)
    record = json.loads((node / "member.json").read_text())
    record["coordinator_key"] = keys.public_key_b64(keys.new_private_key())
    (node / "member.json").write_text(json.dumps(record))
    through(home, monkeypatch)
    refused = CliRunner().invoke(
        cli, [*URL, "ledger", "verify", "--json"], env={"KUMIAI_NODE_HOME": str(node)}
    )
    assert refused.exit_code == 1, refused.output
    findings = json.dumps(json.loads(refused.stdout))
    assert "the coordinator key differs from the pinned one" in findings


def test_an_auditor_exports_and_reports_with_only_a_key_file(
    served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home, _ = served
    options = auditor_options(home, "kpmg-2", monkeypatch, tmp_path)
    alone = {"KUMIAI_NODE_HOME": ""}
    export = tmp_path / "ledger.jsonl"
    done = CliRunner().invoke(cli, [*options, "ledger", "export", str(export)], env=alone)
    assert done.exit_code == 0, done.output
    checked = CliRunner().invoke(cli, ["ledger", "verify", str(export), "--json"])
    assert json.loads(checked.stdout)["ok"] is True
    investor = ["report", "--for", "investor", "--date", "2026-11-29", "--json"]
    assert run(*options, *investor, env=alone) == run("--home", str(home), *investor)
    offline = run(*investor, "--export", str(export))
    assert offline == run("--home", str(home), *investor)


def test_an_export_streams_over_tls_from_a_real_coordinator(tmp_path: Path) -> None:
    """`kumiai coordinator serve` in a process of its own, the CLI in another, over TLS."""
    home = tmp_path / "coordinator-machine" / "c"
    consortium, _ = heart_consortium(home, hospitals=HOSPITALS[:1], sign=())
    init_tls(home, ["127.0.0.1"])
    key = keys.new_private_key()
    auditor = tmp_path / "auditor-machine"
    auditor.mkdir()
    (auditor / "kpmg.pem").write_bytes(keys.private_key_to_pem(key))
    shutil.copy(home / "tls" / "ca.pem", auditor / "ca.pem")
    grant_access(consortium, name="kpmg", role="auditor", public_key=keys.public_key_b64(key))
    port = free_port()
    server = start_coordinator(home, port)
    remote_options = [
        *("--coordinator", f"https://127.0.0.1:{port}"),
        *("--key", str(auditor / "kpmg.pem"), "--ca", str(auditor / "ca.pem")),
    ]
    try:
        exported = kumiai(
            *remote_options,
            *("ledger", "export", str(auditor / "ledger.jsonl")),
            *("--keys", str(auditor / "keys.json")),
        )
        verified = kumiai(*remote_options, "ledger", "verify", "--json")
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
    assert exported.returncode == 0, exported.stderr
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    local = tmp_path / "local.jsonl"
    assert (
        CliRunner().invoke(cli, ["--home", str(home), "ledger", "export", str(local)]).exit_code
        == 0
    )
    streamed = (auditor / "ledger.jsonl").read_text().splitlines()
    here = local.read_text().splitlines()
    assert streamed[1:] == here[1:]  # every entry, head and cosignature; the header's time aside
    assert {**json.loads(streamed[0]), "exported_at": ""} == {
        **json.loads(here[0]),
        "exported_at": "",
    }
    offline = kumiai(
        "ledger", "verify", str(auditor / "ledger.jsonl"), "--keys", str(auditor / "keys.json")
    )
    assert offline.returncode == 0 and "verified" in offline.stdout
    assert sorted(p.name for p in auditor.iterdir()) == [
        "ca.pem",
        "keys.json",
        "kpmg.pem",
        "ledger.jsonl",
    ]


def kumiai(*args: str) -> "subprocess.CompletedProcess[str]":
    """`kumiai ARGS` in a process of its own, with no node home and no consortium home."""
    return subprocess.run(
        [sys.executable, "-m", "kumiai", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**ENV, "KUMIAI_NODE_HOME": "", "KUMIAI_HOME": "/nonexistent/kumiai-home"},
        check=False,
    )
