"""A node's copies of its refusals against what the ledger holds: a missing one is named."""

from kumiai.domain import keys
from kumiai.domain.refusal import Refusal, parse_refusal_copy, signed_refusal, unrecorded
from tests.conftest import NOW

REFUSED = Refusal("zurich", "job-1", "zurich-heart", "no signed agreement", NOW)


def test_a_refusal_in_the_ledger_is_fine() -> None:
    assert unrecorded([REFUSED], {("job-1", "zurich-heart")}) == []


def test_a_refusal_missing_from_the_ledger_is_named() -> None:
    [problem] = unrecorded([REFUSED], {("job-1", "other-heart"), ("job-2", "zurich-heart")})
    assert "refusal of job job-1 on 'zurich-heart'" in problem and "erased" in problem


def test_the_copy_is_signed_and_reads_back() -> None:
    key = keys.new_private_key()
    text = signed_refusal(REFUSED, keys.sign(key, REFUSED.signed_bytes()))
    again, signature = parse_refusal_copy(text)
    assert again == REFUSED
    assert keys.verify(keys.public_key_b64(key), again.signed_bytes(), signature)
