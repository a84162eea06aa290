"""`kumiai train --admission-timeout`: refused unless positive, before anything runs; the
site table labels a site whose node never connected 'offline'."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.domain.quorum import offline_reason
from kumiai.interfaces.cli.training import positive_seconds, refusal_label


def test_the_site_table_says_offline_for_a_node_that_never_connected() -> None:
    assert refusal_label(offline_reason(15)) == "offline"
    assert refusal_label("hungarian-cardiology refused job: revoked") == "refused"
    assert refusal_label("round 2: offline sites are not a round's reason") == "refused"


def test_a_timeout_must_be_positive() -> None:
    assert positive_seconds(15.0, "--admission-timeout") == 15.0
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InvalidInput, match="--admission-timeout must be a positive number"):
            positive_seconds(bad, "--admission-timeout")


def test_the_cli_refuses_a_zero_timeout_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "kumiai", "--home", str(tmp_path / "none"), "train", "heart",
         "--admission-timeout", "0"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip() == (
        "error: --admission-timeout must be a positive number of seconds (got 0)"
    )
    assert not (tmp_path / "none").exists()  # refused before any home was opened
