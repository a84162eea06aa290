"""The coordinator's rule for a published cosignature (domain.cosigning.refusal)."""

from datetime import UTC, datetime

from kumiai.domain import keys
from kumiai.domain.cosigning import refusal
from kumiai.domain.ledger import TreeHead, cosign, sign_head

COORDINATOR = keys.new_private_key()
ALPHA = keys.new_private_key()
ALPHA_KEY = keys.public_key_b64(ALPHA)
HEAD = sign_head(TreeHead(4, "ab" * 32, datetime(2026, 11, 29, tzinfo=UTC)), COORDINATOR)


def test_a_members_cosignature_on_a_recorded_head_is_accepted() -> None:
    assert refusal("alpha", ALPHA_KEY, HEAD, HEAD, cosign(HEAD, "alpha", ALPHA)) is None


def test_an_unknown_member_is_refused() -> None:
    why = refusal("mallory", None, HEAD, HEAD, cosign(HEAD, "mallory", ALPHA))
    assert why == (
        "'mallory' is not a member: only a registered member's node witnesses the log; "
        "see `kumiai member list`"
    )


def test_a_head_the_coordinator_never_recorded_is_refused() -> None:
    other = sign_head(TreeHead(4, "cd" * 32, HEAD.time), COORDINATOR)  # signed, not recorded
    for recorded in (None, HEAD):
        why = refusal("alpha", ALPHA_KEY, other, recorded, cosign(other, "alpha", ALPHA))
        assert why is not None and why.startswith("the coordinator never signed this tree head")


def test_a_signature_by_another_key_or_name_is_refused() -> None:
    for signature in (
        cosign(HEAD, "alpha", keys.new_private_key()),
        cosign(HEAD, "beta", ALPHA),  # alpha's key, but vouching as another witness
        "not base64",
    ):
        why = refusal("alpha", ALPHA_KEY, HEAD, HEAD, signature)
        assert why == (
            f"the cosignature does not verify with alpha's key on record "
            f"({keys.fingerprint(ALPHA_KEY)}): sign with the member's current key"
        )
