"""The consortium's certificates, checked the way a client checks them: a real TLS handshake."""

import datetime
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from kumiai.adapters.tls import (
    ServerFiles,
    check_server,
    create_authority,
    issue_server,
    supernode_auth_key,
)
from kumiai.domain.errors import InvalidInput

NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)


def _issued(folder: Path, hosts: list[str]) -> ServerFiles:
    create_authority(folder, "test", datetime.datetime.now(datetime.UTC))
    return issue_server(folder, hosts, datetime.datetime.now(datetime.UTC))


def _handshake(files: ServerFiles, trusted_ca: Path, server_name: str) -> str:
    """Serve one TLS connection on 127.0.0.1; return the client's negotiated version."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.cert, files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            with server_context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(trusted_ca))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            version = str(tls.version())
            tls.sendall(b"x")
            return version
    finally:
        thread.join(timeout=10)
        listener.close()


def test_a_client_trusting_the_consortium_ca_completes_a_handshake(tmp_path: Path) -> None:
    files = _issued(tmp_path / "tls", ["coordinator.test", "127.0.0.1"])
    assert _handshake(files, files.ca_cert, "coordinator.test").startswith("TLSv1.")
    assert (files.key.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "tls" / "ca.key").stat().st_mode & 0o777) == 0o600


def test_a_client_refuses_another_ca_or_another_host(tmp_path: Path) -> None:
    files = _issued(tmp_path / "tls", ["coordinator.test"])
    other = _issued(tmp_path / "other", ["coordinator.test"])
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(files, other.ca_cert, "coordinator.test")
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        _handshake(files, files.ca_cert, "impostor.test")


def test_certificates_a_client_would_refuse_are_refused_at_set_up(tmp_path: Path) -> None:
    files = _issued(tmp_path / "tls", ["coordinator.test"])
    other = _issued(tmp_path / "other", ["coordinator.test"])
    now = datetime.datetime.now(datetime.UTC)
    check_server(files, "coordinator.test", now)  # the good case passes
    cases = [
        (
            ServerFiles(files.ca_cert, files.cert, other.key),
            "coordinator.test",
            now,
            "does not belong",
        ),
        (files, "elsewhere.test", now, r"would be refused for 'elsewhere\.test'"),
        (ServerFiles(other.ca_cert, files.cert, files.key), "coordinator.test", now, "refused"),
        (files, "coordinator.test", now + datetime.timedelta(days=900), "refused"),
    ]
    for bad, host, when, message in cases:
        with pytest.raises(InvalidInput, match=message):
            check_server(bad, host, when)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(InvalidInput, match="give PEM files"):
        check_server(ServerFiles(tmp_path / "junk.pem", files.cert, files.key), "x", now)


def test_a_host_that_is_no_name_is_refused(tmp_path: Path) -> None:
    create_authority(tmp_path, "test", NOW)
    with pytest.raises(InvalidInput, match="neither a host name nor an IP"):
        issue_server(tmp_path, ["bad host"], NOW)
    with pytest.raises(InvalidInput, match="at least one host"):
        issue_server(tmp_path, [], NOW)


def test_the_supernode_key_is_what_flower_reads(tmp_path: Path) -> None:
    public = supernode_auth_key(tmp_path)
    # Flower's SuperNode loads its key exactly like this (flwr/supernode/cli).
    key = load_ssh_private_key((tmp_path / "supernode_auth").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert public.startswith("ecdsa-sha2-nistp256 ")
    assert ((tmp_path / "supernode_auth").stat().st_mode & 0o777) == 0o600
