"""`kumiai coordinator init`: the CA members pin, printed once; a second run refused plainly."""

import json
from pathlib import Path

from tests.interfaces.test_cli import assert_user_error, kumiai


def test_coordinator_init_prints_the_fingerprint_members_pin(tmp_path: Path) -> None:
    home = tmp_path / "c"
    made = kumiai(home, "coordinator", "init", "--host", "coordinator.test", "--json")
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    assert info["hosts"] == ["coordinator.test"] and info["own_ca"] is True
    assert len(info["ca_fingerprint"]) == 64
    again = kumiai(home, "coordinator", "init", "--host", "coordinator.test")
    assert_user_error(again, "already holds the coordinator's certificates")
    partial = kumiai(tmp_path / "d", "coordinator", "init", "--host", "x.test", "--cert", "c.pem")
    assert_user_error(partial, "all three of --cert, --key and --ca-cert")
