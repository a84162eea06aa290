"""`KUMIAI_COORDINATOR`: the read commands print the coordinator's documents, the same
`--json` as reading the home itself, signed with a node's key; no local home is opened."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.interfaces.api.app import create_app
from kumiai.interfaces.cli.main import app as cli
from kumiai.node import remote
from kumiai.node.home import NodeHome
from kumiai.services.agreements import list_agreements
from tests.services.helpers import HOSPITALS, heart_consortium


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("remote") / "c"
    consortium, _ = heart_consortium(home, hospitals=HOSPITALS[:2], sign=HOSPITALS[:1])
    agreement = list_agreements(consortium)[0].id
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
