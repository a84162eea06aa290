"""Reading kumiai's own PEM keys without cryptography's serialization gives the same key."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.errors import InvalidInput


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def test_the_pem_kumiai_writes_reads_back_as_the_same_key() -> None:
    key = keys.new_private_key()
    loaded = keys.private_key_from_pem(keys.private_key_to_pem(key), "key.pem")
    assert _raw(loaded) == _raw(key)
    assert keys.public_key_b64(loaded) == keys.public_key_b64(key)
    raw_public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert keys.public_key_b64(key) == __import__("base64").b64encode(raw_public).decode()


def test_another_pem_form_still_goes_through_the_full_loader() -> None:
    key = keys.new_private_key()
    wrapped = keys.private_key_to_pem(key).replace(b"\n", b"\r\n") + b"\n\n"  # still PKCS#8
    assert _raw(keys.private_key_from_pem(wrapped, "key.pem")) == _raw(key)


def test_a_pem_that_is_not_an_ed25519_key_is_refused() -> None:
    short = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(InvalidInput, match=r"key\.pem is not a PEM Ed25519 private key"):
        keys.private_key_from_pem(short, "key.pem")
