"""Setting up the coordinator's TLS: made once, all files or none, the operator's checked."""

import datetime
from pathlib import Path

import pytest

from kumiai.adapters.tls import create_authority, issue_server
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.services.coordinator_tls import init_tls


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_our_own_ca_is_made_once(tmp_path: Path) -> None:
    info = init_tls(tmp_path, ["coordinator.test", "127.0.0.1"])
    assert info.own_ca and len(info.ca_fingerprint) == 64
    assert _listing(tmp_path) == ["tls", "tls/ca.key", "tls/ca.pem", "tls/server.key",
                                  "tls/server.pem"]  # fmt: skip
    before = (tmp_path / "tls" / "ca.pem").read_bytes()
    with pytest.raises(StateError, match="members pin its CA"):
        init_tls(tmp_path, ["coordinator.test"])
    assert (tmp_path / "tls" / "ca.pem").read_bytes() == before


def test_the_operators_certificates_are_checked_before_anything_is_written(
    tmp_path: Path,
) -> None:
    own = tmp_path / "operator"
    create_authority(own, "theirs", datetime.datetime.now(datetime.UTC))
    files = issue_server(own, ["coordinator.test"], datetime.datetime.now(datetime.UTC))
    home = tmp_path / "home"
    with pytest.raises(InvalidInput, match=r"would be refused for 'other\.test'"):
        init_tls(home, ["other.test"], cert=files.cert, key=files.key, ca_cert=files.ca_cert)
    with pytest.raises(InvalidInput, match="all three"):
        init_tls(home, ["coordinator.test"], cert=files.cert)
    with pytest.raises(InvalidInput, match="does not exist"):
        init_tls(
            home, ["coordinator.test"], cert=files.cert, key=own / "nope", ca_cert=files.ca_cert
        )
    assert not (home / "tls").exists() and not (home / "tls.partial").exists()
    info = init_tls(
        home, ["coordinator.test"], cert=files.cert, key=files.key, ca_cert=files.ca_cert
    )
    assert not info.own_ca and info.ca_fingerprint == files.fingerprint()
    assert not (home / "tls" / "ca.key").exists()  # the operator's CA key never comes here
    assert (info.key.stat().st_mode & 0o777) == 0o600
