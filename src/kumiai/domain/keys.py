"""Ed25519 signing over canonical bytes. Keys travel as base64 of their raw 32 bytes.

`cryptography`'s serialization (PEM, raw bytes) loads inside the functions that use it:
every command that reads the database imports this module, and reading needs neither.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kumiai.domain.errors import InvalidInput


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# DER of an unencrypted PKCS#8 Ed25519 key (what private_key_to_pem writes) up to its seed
_PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")


def _pkcs8_seed(pem: bytes) -> bytes | None:
    """The 32-byte seed of the PEM kumiai writes, read without cryptography's serialization
    (it loads RSA, EC, SSH and bcrypt: 20-40 ms that `ledger export` otherwise pays).
    None for any other form, which the full loader then reads or refuses."""
    lines = pem.strip().splitlines()
    if len(lines) != 3 or lines[0] != b"-----BEGIN PRIVATE KEY-----":
        return None
    if lines[2] != b"-----END PRIVATE KEY-----":
        return None
    try:
        der = base64.b64decode(lines[1], validate=True)
    except ValueError:
        return None
    return der[16:] if len(der) == 48 and der.startswith(_PKCS8_ED25519) else None


def private_key_from_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    if (seed := _pkcs8_seed(pem)) is not None:
        return Ed25519PrivateKey.from_private_bytes(seed)
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"{where} is not a PEM Ed25519 private key; restore it from backup"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{where} holds a key that is not Ed25519; kumiai signs with Ed25519")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes_raw()).decode("ascii")


def fingerprint(public_b64: str) -> str:
    """A short, stable name for a public key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_b64.encode("utf-8")).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(public_b64: str, message: bytes, signature_b64: str) -> bool:
    """True only when the signature is well-formed and valid for this key and message.

    Remembered for the last few (key, message, signature): a node checks the same job and
    agreement signatures on every message of a job, and the answer for the same bytes
    cannot change.
    """
    if type(message) is bytes and type(public_b64) is str and type(signature_b64) is str:
        return _remembered(public_b64, message, signature_b64)
    return _verify(public_b64, message, signature_b64)


def _verify(public_b64: str, message: bytes, signature_b64: str) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        public.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


_remembered = lru_cache(maxsize=256)(_verify)
