"""Real processes over TLS on 127.0.0.1: the operator invites, a node joins from its own home
(checking the CA and key against the invitation first), registers a dataset it keeps and
signs a request for it through the API; a coordinator that is not the invited one is
refused by the node, and a used invitation by the coordinator.
"""

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kumiai.domain.canonical import canonical_json
from kumiai.domain.invitation import read_token
from tests.coordinator_process import start_coordinator
from tests.interfaces.test_api import free_port
from tests.services.helpers import HOSPITALS, heart_consortium

ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


def kumiai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kumiai", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=ENV,
    )


def ok(*args: str) -> dict:  # type: ignore[type-arg]
    done = kumiai(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_invite_join_and_sign_over_tls(tmp_path: Path) -> None:
    home = tmp_path / "c"
    heart_consortium(home, hospitals=HOSPITALS[:1], sign=HOSPITALS[:0])
    assert kumiai("--home", str(home), "coordinator", "init", "--host", "127.0.0.1").returncode == 0
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server = start_coordinator(home, port)
    try:
        token = ok("--home", str(home), "coordinator", "invite", "st-mary", "--kind", "hospital")[
            "token"
        ]

        # A token naming another CA: the node refuses the coordinator before trusting it.
        doc = read_token(token).document()
        other_ca = (
            "kumiai-invite-"
            + base64.urlsafe_b64encode(canonical_json({**doc, "ca": "0" * 64})).decode()
        )
        wrong = tmp_path / "wrong-node"
        refused = kumiai(
            "node", "init", "--home", str(wrong), "--coordinator", url, "--invite", other_ca
        )
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "is not the one the invitation names" in " ".join(refused.stderr.split())
        assert not wrong.exists()

        node = tmp_path / "st-mary"
        joined = ok("node", "init", "--home", str(node), "--coordinator", url, "--invite", token)
        assert joined["member"]["name"] == "st-mary"
        assert (node / "key.pem").stat().st_mode & 0o077 == 0
        assert (node / "coordinator-ca.pem").read_bytes() == (home / "tls" / "ca.pem").read_bytes()
        members = ok("--home", str(home), "member", "list")
        assert "st-mary" in [m["name"] for m in members]
        # the SuperNode key pair was made at the node; only its public half was sent
        from kumiai.node.home import NodeHome
        from kumiai.services.consortium import open_consortium
        from kumiai.services.deployment import node_keys

        own = NodeHome(node)
        assert own.supernode_auth_file.stat().st_mode & 0o077 == 0
        assert node_keys(open_consortium(home))["st-mary"] == own.supernode_key()

        again = kumiai(
            "node",
            "init",
            "--home",
            str(tmp_path / "twice"),
            "--coordinator",
            url,
            "--invite",
            token,
        )
        assert again.returncode != 0 and "was already used" in " ".join(again.stderr.split())

        # st-mary registers a dataset from its own machine: checked and kept there, metadata
        # only to the catalogue; lab asks to use it; st-mary's node signs the request.
        rows = tmp_path / "exports" / f"{HOSPITALS[1]}.csv"
        assert rows.is_file()
        registered = ok(
            "node", "register", "st-mary-heart", str(rows), "--target", "num>0",
            "--missing", "chol=0", "--ignore", "id", "--home", str(node),
        )  # fmt: skip
        assert registered["member"] == "st-mary" and registered["rows"] > 100
        assert len(list((node / "data").glob("st-mary-heart.*"))) == 1
        assert not (home / "members" / "st-mary").exists()  # nothing of st-mary's here
        asked = kumiai(
            "--home", str(home), "request", "heart", "--dataset", "st-mary-heart", "--by", "lab",
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        [request] = [
            r["id"] for r in ok("--home", str(home), "requests") if r["dataset"] == "st-mary-heart"
        ]
        agreement = ok("node", "sign", request, "--home", str(node))
        assert agreement["request_id"] == request and agreement["steward"] == "st-mary"
        assert (node / "agreements" / f"{agreement['id']}.json").is_file()
        listed = ok("--home", str(home), "agreement", "list")
        assert [a["id"] for a in listed] == [agreement["id"]]

        # st-mary's other acts over TLS: a proposal, its budget, a new key; then it reads
        # with --coordinator, signing with the new key.
        added = kumiai("--home", str(home), "theme", "add", "acute", "--title", "Acute care",
                       "--by", "lab")  # fmt: skip
        assert added.returncode == 0, added.stderr
        proposed = ok(
            "node", "propose", "icu", "--purpose", "ICU warning", "--theme", "acute",
            "--home", str(node),
        )  # fmt: skip
        assert proposed["proposed_by"] == "st-mary" and proposed["status"] == "proposed"
        assert ok("--home", str(home), "theme", "show", "acute")["projects"] == ["icu"]
        budget = ok("node", "budget", "st-mary-heart", "--epsilon", "5", "--home", str(node))
        assert budget == {"dataset": "st-mary-heart", "lifetime": 5.0}
        [budget_set] = ok("--home", str(home), "ledger", "show", "--type", "privacy.budget-set")
        assert budget_set["actor"] == "st-mary"  # signed at st-mary's node, over TLS
        assert budget_set["payload"] == {"dataset": "st-mary-heart", "member": "st-mary",
                                         "epsilon": 5}  # fmt: skip
        rotated = ok("node", "rotate-key", "--home", str(node))
        assert rotated["key_fingerprint"] != joined["member"]["key_fingerprint"]
        ENV["KUMIAI_NODE_HOME"] = str(node)
        try:
            remote = ok("--home", str(tmp_path / "none"), "--coordinator", url, "budget")
        finally:
            del ENV["KUMIAI_NODE_HOME"]
        assert remote == ok("--home", str(home), "budget")
        assert [b["lifetime"] for b in remote if b["dataset"] == "st-mary-heart"] == [5.0]
        verified = kumiai("--home", str(home), "ledger", "verify")  # the rotation included
        assert verified.returncode == 0, verified.stderr
    finally:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail("the server did not stop within 10 s of SIGTERM")
    assert "Traceback" not in server.stderr.read()
