"""The sign-in challenge's rules, pure: the signed text, its lifetime, the key that signs."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.errors import InvalidInput, Unauthenticated
from kumiai.domain.sign_in import (
    CHALLENGE_LIFETIME,
    check_response,
    key_of,
    message,
    new_challenge,
    respond,
)

ISSUED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = keys.public_key_b64(KEY)


def test_the_signed_text_names_its_purpose_so_it_passes_for_nothing_else() -> None:
    challenge = "a" * 64
    assert message(challenge) == b"kumiai-dashboard-sign-in:v1:" + b"a" * 64
    assert len({new_challenge() for _ in range(100)}) == 100
    for bad in ("short", "a" * 64 + "\n", "a" * 63 + "/", "a" * 65, "-" + "a" * 63, "A" * 64):
        with pytest.raises(InvalidInput, match="is not a sign-in challenge"):
            message(bad)


def test_a_response_is_the_key_id_and_its_signature_and_verifies_for_five_minutes() -> None:
    challenge = new_challenge()
    response = respond(KEY, challenge)
    assert key_of(response) == keys.fingerprint(PUBLIC) == response.split(".")[0]
    check_response(challenge, ISSUED, ISSUED + CHALLENGE_LIFETIME, response, PUBLIC)
    with pytest.raises(Unauthenticated, match="the challenge expired"):
        late = ISSUED + CHALLENGE_LIFETIME + timedelta(seconds=1)
        check_response(challenge, ISSUED, late, response, PUBLIC)


def test_another_challenge_another_key_or_a_tampered_signature_is_refused() -> None:
    challenge, other = new_challenge(), new_challenge()
    response = respond(KEY, challenge)
    with pytest.raises(Unauthenticated, match="does not verify"):
        check_response(other, ISSUED, ISSUED, response, PUBLIC)
    stranger = keys.public_key_b64(Ed25519PrivateKey.generate())
    with pytest.raises(Unauthenticated, match="does not name this key"):
        check_response(challenge, ISSUED, ISSUED, response, stranger)
    keyid, signature = response.split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    with pytest.raises(Unauthenticated, match="does not verify"):
        check_response(challenge, ISSUED, ISSUED, f"{keyid}.{flipped}", PUBLIC)
    for bad in ("", keyid, f"{keyid}:{signature}", f"{keyid.upper()}.{signature}"):
        with pytest.raises(Unauthenticated, match=r"not KEYID\.SIGNATURE"):
            key_of(bad)
