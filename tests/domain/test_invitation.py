"""Invitation tokens: what they carry, what a node checks before it trusts a coordinator."""

import base64

import pytest

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput
from kumiai.domain.invitation import PREFIX, check_trust, new_invitation, read_token

CA, KEY = "ab" * 32, "0123456789abcdef"


def test_a_token_reads_back_exactly_and_its_digest_covers_every_field() -> None:
    invitation = new_invitation("st-mary", "hospital", CA, KEY)
    assert read_token(invitation.token()) == invitation
    assert invitation.token().startswith(PREFIX) and invitation.id.startswith("inv-")
    other = new_invitation("st-mary", "hospital", CA, KEY)
    assert other.secret != invitation.secret and other.digest() != invitation.digest()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "kumiai-invite-",
        "kumiai-invite-!!!",
        "something-else-eyJ9",
        PREFIX + base64.urlsafe_b64encode(b'{"type":"kumiai.invitation"}').decode(),
    ],
)
def test_what_is_not_a_token_is_refused_with_the_fix(token: str) -> None:
    with pytest.raises(InvalidInput, match="not a kumiai invitation token; ask the consortium"):
        read_token(token)


def test_a_token_with_a_malformed_fingerprint_is_refused() -> None:
    doc = new_invitation("st-mary", "hospital", CA, KEY).document()
    bad = PREFIX + base64.urlsafe_b64encode(canonical_json({**doc, "ca": "xyz"})).decode()
    with pytest.raises(InvalidInput, match="not a kumiai invitation token"):
        read_token(bad)


def test_the_node_refuses_a_coordinator_whose_ca_or_key_differs() -> None:
    invitation = new_invitation("st-mary", "hospital", CA, KEY)
    check_trust(invitation, CA, KEY)
    with pytest.raises(InvalidInput, match=f"CA certificate \\(SHA-256 {'cd' * 32}\\) is not"):
        check_trust(invitation, "cd" * 32, KEY)
    with pytest.raises(InvalidInput, match=r"key \(fedcba9876543210\) is not the one"):
        check_trust(invitation, CA, "fedcba9876543210")
