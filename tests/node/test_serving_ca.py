"""`kumiai node serve` trusts the CA the node pinned at `node init`, and refuses another."""

import shutil
from pathlib import Path

import pytest

from kumiai.adapters.tls import certificate_fingerprint
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.node.remote import PINNED_CA, pinned_ca
from kumiai.services.coordinator_tls import init_tls


@pytest.fixture
def cas(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A node home with the consortium's CA pinned, that CA, and another CA."""
    init_tls(tmp_path / "ours", ["127.0.0.1"])
    init_tls(tmp_path / "theirs", ["127.0.0.1"])
    node = tmp_path / "node"
    node.mkdir()
    ours, theirs = tmp_path / "ours" / "tls" / "ca.pem", tmp_path / "theirs" / "tls" / "ca.pem"
    shutil.copy(ours, node / PINNED_CA)
    return node, ours, theirs


def test_the_pinned_ca_is_the_default(cas: tuple[Path, Path, Path]) -> None:
    node, ours, _ = cas
    assert pinned_ca(node) == node / PINNED_CA
    assert pinned_ca(node, ours) == ours  # the same certificate, from another file


def test_another_ca_is_refused_naming_both_fingerprints(cas: tuple[Path, Path, Path]) -> None:
    node, ours, theirs = cas
    given, pinned = (certificate_fingerprint(p.read_bytes()) for p in (theirs, ours))
    assert given != pinned
    with pytest.raises(InvalidInput) as refused:
        pinned_ca(node, theirs)
    message = str(refused.value)
    assert f"has SHA-256 fingerprint {given}, not {pinned}, the CA pinned at joining" in message
    assert "leave out --ca" in message


def test_a_ca_file_that_is_not_a_certificate_is_refused(
    cas: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    node, _, _ = cas
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(InvalidInput, match="is not a readable PEM certificate"):
        pinned_ca(node, junk)
    with pytest.raises(InvalidInput, match="does not exist; leave out --ca"):
        pinned_ca(node, tmp_path / "missing.pem")


def test_a_home_without_a_pin_must_name_its_ca(cas: tuple[Path, Path, Path]) -> None:
    node, ours, _ = cas
    (node / PINNED_CA).unlink()
    with pytest.raises(NotFound, match=r"pinned no CA at joining .*pass the consortium's CA"):
        pinned_ca(node)
    assert pinned_ca(node, ours) == ours


def test_node_serve_refuses_another_ca_before_starting_anything(
    cas: tuple[Path, Path, Path],
) -> None:
    from tests.interfaces.test_cli import assert_user_error, kumiai

    node, ours, theirs = cas
    given, pinned = (certificate_fingerprint(p.read_bytes()) for p in (theirs, ours))
    serve = ["node", "serve", "--home", str(node), "--superlink", "127.0.0.1:1"]
    result = kumiai(node, *serve, "--ca", str(theirs))
    assert_user_error(result, given, pinned, "the CA pinned at joining")
    assert not (node / "supernode").exists()
