"""The charter's rules and the tally: pure, recomputable, integer arithmetic."""

from datetime import UTC, datetime, timedelta

import pytest

from kumiai.domain.charter import (
    DAY,
    Charter,
    Decision,
    Fraction,
    Rule,
    amended,
    founding_charter,
)
from kumiai.domain.clock import to_iso
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.motion import (
    Choice,
    check_pinned,
    check_vote,
    may_close,
    propose,
    shown_digest,
    tally,
)

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
SEATS = ("a", "b", "c", "d")
Y, N, A = Choice.YES, Choice.NO, Choice.ABSTAIN


def _charter(**rules: Rule) -> Charter:
    return founding_charter(
        SEATS, rules={Decision(k.replace("_", "-")): v for k, v in rules.items()}
    )


def _motion(under: Charter, decision: str = "approve-project", **payload: object):  # type: ignore[no-untyped-def]
    payload = payload or {"project": "heart"}
    return propose(
        under, motion_id="motion-1", decision=decision, payload=payload, proposer="a", now=NOW
    )


def _rule(quorum: str, threshold: str) -> Rule:
    return Rule(Fraction.parse(quorum, "q"), Fraction.parse(threshold, "t"), DAY)


def test_a_charter_document_round_trips_and_its_digest_is_stable() -> None:
    charter = _charter()
    again = Charter.from_document(charter.document())
    assert again == charter and again.digest() == charter.digest()
    assert charter.rule(Decision.AMEND_CHARTER).quorum == Fraction(1, 1)


@pytest.mark.parametrize(
    "change, named",
    [
        ({"version": 0}, "version"),
        ({"seats": []}, "seat"),
        ({"seats": ["b", "a"]}, "sorted"),
        ({"rules": {}}, "rule for exactly"),
        ({"extra": 1}, "exactly the fields"),
    ],
)
def test_a_malformed_charter_is_refused_by_name(change: dict, named: str) -> None:
    doc = {**_charter().document(), **change}
    with pytest.raises(InvalidInput, match=named):
        Charter.from_document(doc)


@pytest.mark.parametrize("text", ["0/2", "3/2", "half", "1/0", 0.5])
def test_fractions_are_n_over_d_between_0_and_1(text: object) -> None:
    with pytest.raises(InvalidInput):
        Fraction.parse(text, "quorum")


def test_majority_passes_with_quorum() -> None:
    motion = _motion(_charter())
    result = tally(_charter(), motion, {"a": Y, "b": Y, "c": N})
    assert (result.yes, result.no, result.passed, result.quorum_met) == (2, 1, True, True)


def test_quorum_not_met_fails_whatever_the_votes() -> None:
    charter = _charter(approve_project=_rule("3/4", "1/2"))
    result = tally(charter, _motion(charter), {"a": Y, "b": Y})
    assert not result.quorum_met and not result.passed
    assert "quorum not met: 2 of 4" in result.reason


def test_a_tie_never_passes() -> None:
    result = tally(_charter(), _motion(_charter()), {"a": Y, "b": N})
    assert result.quorum_met and not result.passed


def test_abstentions_count_for_quorum_not_threshold() -> None:
    charter = _charter(approve_project=_rule("1/1", "2/3"))
    result = tally(charter, _motion(charter), {"a": Y, "b": Y, "c": A, "d": N})
    assert result.quorum_met and result.passed and result.abstain == 1
    only_abstain = tally(charter, _motion(charter), dict.fromkeys(SEATS, A))
    assert only_abstain.quorum_met and not only_abstain.passed


def test_a_supermajority_threshold_is_compared_in_integers() -> None:
    charter = _charter(approve_project=_rule("1/2", "2/3"))
    motion = _motion(charter)
    assert tally(charter, motion, {"a": Y, "b": Y, "c": N}).passed  # 2/3 exactly
    assert not tally(charter, motion, {"a": Y, "b": N, "c": N, "d": Y}).passed


def test_amending_the_charter_is_unanimous_by_default() -> None:
    charter = _charter()
    motion = _motion(charter, "amend-charter", charter=amended(charter, seats=SEATS).document())
    assert not tally(charter, motion, {"a": Y, "b": Y, "c": Y}).passed  # d did not vote
    assert not tally(charter, motion, {"a": Y, "b": Y, "c": Y, "d": N}).passed
    assert tally(charter, motion, dict.fromkeys(SEATS, Y)).passed


def test_conflicted_members_neither_vote_nor_count() -> None:
    charter = _charter()
    motion = _motion(charter, "grant-licence", licensee="d", model="heart-v1")
    assert charter.eligible(motion.decision, motion.payload) == ("a", "b", "c")
    with pytest.raises(InvalidInput, match="conflicted"):
        check_vote(charter, motion, "d", {}, NOW)
    result = tally(charter, motion, {"a": Y, "b": Y, "d": Y})  # d's vote is not counted
    assert (result.eligible, result.yes) == (3, 2)
    spinout = _motion(charter, "create-spinout", spinout="kokoro", founders=["b", "c"])
    assert charter.eligible(spinout.decision, spinout.payload) == ("a", "d")


def test_votes_close_at_the_end_of_the_period() -> None:
    charter = _charter()
    motion = _motion(charter)
    assert motion.closes_at == NOW + timedelta(days=7)
    check_vote(charter, motion, "b", {}, motion.closes_at - timedelta(seconds=1))
    with pytest.raises(StateError, match="stopped taking votes"):
        check_vote(charter, motion, "b", {}, motion.closes_at)
    with pytest.raises(StateError, match="closed"):
        check_vote(charter, motion, "b", {}, NOW, closed=True)
    assert not may_close(charter, motion, {"a": Y}, NOW)
    assert may_close(charter, motion, {"a": Y}, motion.closes_at)
    assert may_close(charter, motion, dict.fromkeys(SEATS, Y), NOW)  # everyone has voted


def test_double_votes_and_non_seats_are_refused() -> None:
    charter = _charter()
    motion = _motion(charter)
    with pytest.raises(InvalidInput, match="already voted yes"):
        check_vote(charter, motion, "a", {"a": Y}, NOW)
    with pytest.raises(InvalidInput, match="holds no board seat"):
        check_vote(charter, motion, "z", {}, NOW)


@pytest.mark.parametrize(
    "decision, payload, proposer, named",
    [
        ("buy-a-yacht", {"project": "x"}, "a", "unknown decision type"),
        ("approve-project", {"project": "x"}, "z", "holds no board seat"),
        ("approve-project", {}, "a", "must name project"),
        ("grant-licence", {"licensee": 3, "model": "m"}, "a", "must name members"),
    ],
)
def test_a_motion_that_contradicts_the_charter_is_refused(
    decision: str, payload: dict, proposer: str, named: str
) -> None:
    with pytest.raises(InvalidInput, match=named):
        propose(
            _charter(),
            motion_id="m",
            decision=decision,
            payload=payload,
            proposer=proposer,
            now=NOW,
        )


def test_a_motion_no_seat_may_vote_on_is_refused() -> None:
    charter = founding_charter(("a",))
    with pytest.raises(InvalidInput, match="every seat holder is conflicted"):
        _motion(charter, "grant-licence", licensee="a", model="m")


# -- a vote pins the motion its voter was shown --------------------------------------------


def _shown(motion, **changes: object) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """The motion as `kumiai motion show --json` shows it (times in the API's own form)."""
    return {
        "id": motion.id,
        "decision": motion.decision.value,
        "payload": motion.payload,
        "proposer": motion.proposer,
        "charter_version": motion.charter_version,
        "closes_at": motion.closes_at.isoformat(),
        "digest": motion.digest(),
        "status": "open",
        "votes": {},
        **changes,
    }


def test_the_digest_of_a_shown_motion_is_recomputed_from_its_content() -> None:
    motion = _motion(_charter())
    assert shown_digest(_shown(motion)) == motion.digest()
    assert shown_digest(_shown(motion, closes_at=to_iso(motion.closes_at))) == motion.digest()
    assert shown_digest(_shown(motion, votes={"a": "yes"})) == motion.digest()  # not content


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {"project": "other"}},
        {"decision": "create-spinout"},
        {"proposer": "b"},
        {"charter_version": 2},
        {"closes_at": "2030-01-01T00:00:00Z"},
    ],
    ids=["payload", "action", "proposer", "charter", "closing"],
)
def test_a_shown_motion_whose_content_is_not_its_digest_is_refused(change: dict) -> None:  # type: ignore[type-arg]
    motion = _motion(_charter())
    with pytest.raises(StateError) as refused:
        shown_digest(_shown(motion, **change))
    assert str(refused.value).startswith(
        f"the coordinator shows motion motion-1 with digest {motion.digest()}, but the "
        "content it shows has digest "
    )
    assert str(refused.value).endswith("; refused, nothing signed")


def test_a_shown_motion_without_its_content_is_refused() -> None:
    shown = _shown(_motion(_charter()))
    del shown["payload"]
    with pytest.raises(StateError, match="without its full content"):
        shown_digest(shown)


def test_a_vote_counts_only_for_the_motion_its_voter_was_shown() -> None:
    motion = _motion(_charter())
    check_pinned(motion, motion.digest(), motion.digest())  # the same: accepted
    swapped = _motion(_charter(), project="sepsis")
    with pytest.raises(StateError) as refused:
        check_pinned(motion, motion.digest(), swapped.digest())
    assert str(refused.value) == (
        f"the vote pins motion motion-1 with digest {swapped.digest()}, but the motion as "
        f"recorded has digest {motion.digest()}: it is not the motion the voter was shown; "
        "show it again (kumiai node vote) and vote on what it says"
    )
    with pytest.raises(StateError, match="no longer has the digest recorded"):
        check_pinned(swapped, motion.digest(), motion.digest())  # content changed in place
