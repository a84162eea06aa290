"""The consortium's certificates: a CA of its own, the coordinator's server certificate, and
the SuperNode authentication keys Flower expects.

Everything is `cryptography`'s x509 builder and verifier; only the choice of fields is ours.
ECDSA P-256 throughout, because gRPC (Flower's transport) and every browser accept it.
"""

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from kumiai.domain.errors import InvalidInput

CA_DAYS, SERVER_DAYS = 3650, 825  # 825: the longest server lifetime browsers still accept
_CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class ServerFiles:
    """What the coordinator serves TLS with, and what members pin."""

    ca_cert: Path
    cert: Path
    key: Path

    def fingerprint(self) -> str:
        """SHA-256 of the CA certificate (DER), the value a node pins when it joins."""
        return certificate_fingerprint(self.ca_cert.read_bytes())


def certificate_fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def _write_private(path: Path, data: bytes) -> None:
    """0600 from the first byte: the key is never readable by others, even briefly."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


LOOPBACK = ("127.0.0.1", "localhost")


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        if not host or any(c.isspace() for c in host) or "/" in host:
            raise InvalidInput(f"{host!r} is neither a host name nor an IP address") from None
        return x509.DNSName(host)


def create_authority(folder: Path, consortium: str, now: datetime.datetime) -> Path:
    """A self-signed CA for one consortium; returns its certificate's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{consortium} consortium CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(folder / "ca.key", _key_pem(key))
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return folder / "ca.pem"


def issue_server(
    folder: Path, hosts: list[str], now: datetime.datetime, days: int = SERVER_DAYS
) -> ServerFiles:
    """The coordinator's certificate, signed by the CA in `folder`, valid for every host."""
    if not hosts:
        raise InvalidInput("name at least one host the coordinator is reached at, e.g. --host")
    # The coordinator's own processes reach its services over loopback (its API's and
    # SuperLink's readiness checks, node registration), also when they listen on 0.0.0.0.
    names = [_san(h) for h in dict.fromkeys([*hosts, *LOOPBACK])]
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"{folder / 'ca.key'} is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(min(now + datetime.timedelta(days=days), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(folder / "server.key", _key_pem(key))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ServerFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")


def check_server(files: ServerFiles, host: str, now: datetime.datetime) -> None:
    """Refuse, naming the problem, certificates a client would reject for `host`.

    Used on the operator's own certificates too, so that a mistake shows at set-up rather
    than as a TLS failure at every member's node.
    """
    try:
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the TLS files ({exc}); give PEM files") from None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise InvalidInput(f"the key {files.key} does not belong to the certificate {files.cert}")
    subject = _san(host)
    verifier = PolicyBuilder().store(Store([ca])).time(now).build_server_verifier(subject)
    try:
        verifier.verify(leaf, [])
    except VerificationError as exc:
        raise InvalidInput(
            f"the certificate {files.cert} would be refused for {host!r} under the CA "
            f"{files.ca_cert}: {exc}"
        ) from None


def supernode_auth_key(folder: Path) -> str:
    """The node's SuperNode authentication key pair (OpenSSH, as Flower reads it).

    Returns the public key line the coordinator registers; the private key stays in `folder`.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(
        folder / "supernode_auth",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    (folder / "supernode_auth.pub").write_bytes(public + b"\n")
    return public.decode()
