"""Privacy budgets as pure arithmetic: tally, reservation checks, the spend log's chain, and the
DP rules of the node's policy check."""

import json
from dataclasses import replace

import pytest

from kumiai.domain import keys
from kumiai.domain.budget import (
    GENESIS,
    RELEASE,
    RESERVE,
    SPEND,
    JobSpend,
    SpendRecord,
    check_reservation,
    line_hash,
    parse_log,
    record_line,
    tally,
)
from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import SignedJob
from kumiai.domain.policy import check_job
from tests.conftest import COORDINATOR_PUBLIC, NOW, make_signed_job, signed


# -- helpers -----------------------------------------------------------------------------
def records(*entries: tuple) -> list[SpendRecord]:
    """SpendRecords from (kind, job, project, epsilon[, round]) tuples, seq in order."""
    out = []
    for seq, entry in enumerate(entries):
        kind, job, project, epsilon, *rest = entry
        details = {"rounds": 3, "delta": 1e-5} if kind == RESERVE else {}
        out.append(
            SpendRecord(seq, kind, job, project, epsilon, 1e-5, rest[0] if rest else 0, details)
        )
    return out


def chain(key, entries: list[tuple]) -> list[str]:  # type: ignore[no-untyped-def]
    """Signed, hash-chained log lines, as the node writes them."""
    lines: list[str] = []
    for seq, (kind, job, project, epsilon, round_) in enumerate(entries):
        record = SpendRecord(
            seq,
            kind,
            job,
            project,
            epsilon,
            1e-5,
            round_,
            {},
            line_hash(lines[-1]) if lines else GENESIS,
        )
        lines.append(record_line(record, keys.sign(key, canonical_json(record.document()))))
    return lines


def verifier(key):
    public = keys.public_key_b64(key)
    return lambda message, signature: keys.verify(public, message, signature)


ENTRIES = [
    (RESERVE, "job-1", "heart", 1.0, 0),
    (SPEND, "job-1", "heart", 0.4, 1),
    (SPEND, "job-1", "heart", 0.7, 2),
    (RELEASE, "job-1", "heart", 0.7, 2),
]


# -- tally and the view ----------------------------------------------------------------
def test_a_running_job_commits_what_it_reserved_but_has_not_spent() -> None:
    view = tally(2.0, records((RESERVE, "j1", "heart", 1.0), (SPEND, "j1", "heart", 0.3, 1)))
    job = view.jobs["j1"]
    assert (job.reserved, job.spent, job.rounds, job.planned_rounds) == (1.0, 0.3, 1, 3)
    assert job.committed == pytest.approx(0.7)
    assert view.spent == pytest.approx(0.3)
    assert view.committed == pytest.approx(0.7)
    assert view.left == pytest.approx(1.0)


def test_spend_records_are_cumulative_not_added() -> None:
    view = tally(
        None,
        records(
            (RESERVE, "j1", "heart", 1.0),
            (SPEND, "j1", "heart", 0.3, 1),
            (SPEND, "j1", "heart", 0.5, 2),
            (SPEND, "j1", "heart", 0.8, 3),
        ),
    )
    assert view.jobs["j1"].spent == pytest.approx(0.8)
    assert view.jobs["j1"].rounds == 3
    assert view.jobs["j1"].committed == pytest.approx(0.2)


def test_a_released_job_commits_nothing_and_keeps_what_it_spent() -> None:
    view = tally(
        2.0,
        records(
            (RESERVE, "j1", "heart", 1.0),
            (SPEND, "j1", "heart", 0.4, 1),
            (RELEASE, "j1", "heart", 0.4, 1),
        ),
    )
    job = view.jobs["j1"]
    assert job.released and job.committed == 0.0 and job.spent == pytest.approx(0.4)
    assert view.committed == 0.0
    assert view.left == pytest.approx(1.6)


def test_a_job_released_without_spending_gives_everything_back() -> None:
    view = tally(1.5, records((RESERVE, "j1", "heart", 1.0), (RELEASE, "j1", "heart", 0.0)))
    assert view.spent == 0.0 and view.committed == 0.0 and view.left == pytest.approx(1.5)


def test_committed_is_never_negative() -> None:
    assert JobSpend("heart", reserved=0.5, spent=0.7).committed == 0.0
    assert JobSpend("heart", reserved=1.0, spent=0.25).committed == pytest.approx(0.75)
    assert JobSpend("heart", reserved=1.0, spent=0.25, released=True).committed == 0.0


def test_totals_per_project_and_over_the_lifetime() -> None:
    view = tally(
        5.0,
        records(
            (RESERVE, "a1", "heart", 1.0),
            (SPEND, "a1", "heart", 1.0, 1),
            (RELEASE, "a1", "heart", 1.0, 1),
            (RESERVE, "a2", "heart", 0.5),
            (SPEND, "a2", "heart", 0.2, 1),
            (RESERVE, "b1", "lungs", 2.0),
            (SPEND, "b1", "lungs", 0.5, 1),
        ),
    )
    assert view.project_spent("heart") == pytest.approx(1.2)
    assert view.project_committed("heart") == pytest.approx(0.3)
    assert view.project_spent("lungs") == pytest.approx(0.5)
    assert view.project_committed("lungs") == pytest.approx(1.5)
    assert view.project_spent("other") == 0.0
    assert view.spent == pytest.approx(1.7)
    assert view.committed == pytest.approx(1.8)
    assert view.left == pytest.approx(5.0 - 1.7 - 1.8)


def test_without_a_lifetime_budget_nothing_is_left_to_count() -> None:
    view = tally(None, records((RESERVE, "j1", "heart", 1.0)))
    assert view.lifetime is None and view.left is None


# -- check_reservation ----------------------------------------------------------------
def test_a_reservation_within_every_budget_is_allowed() -> None:
    view = tally(1.5, records((RESERVE, "a1", "heart", 0.5)))
    decision = check_reservation(view, project="heart", job="a2", planned=1.0, agreement_cap=1.5)
    assert decision.allowed, decision.reason


def test_the_lifetime_budget_counts_spent_and_committed_of_every_project() -> None:
    view = tally(
        1.5,
        records(
            (RESERVE, "a1", "heart", 0.5),
            (SPEND, "a1", "heart", 0.5, 1),
            (RELEASE, "a1", "heart", 0.5, 1),
            (RESERVE, "b1", "lungs", 0.75),
            (SPEND, "b1", "lungs", 0.25, 1),
        ),
    )
    decision = check_reservation(view, project="heart", job="a2", planned=0.3, agreement_cap=None)
    assert not decision.allowed
    assert "only 0.250 of the dataset's lifetime budget ε=1.5 is left" in decision.reason
    assert "spent 0.750" in decision.reason and "committed 0.500" in decision.reason
    fits = check_reservation(view, project="heart", job="a2", planned=0.25, agreement_cap=None)
    assert fits.allowed, fits.reason


def test_the_agreement_cap_counts_only_its_own_projects_spend() -> None:
    view = tally(
        None,
        records(
            (RESERVE, "a1", "heart", 0.6),
            (SPEND, "a1", "heart", 0.2, 1),
            (RESERVE, "b1", "lungs", 5.0),
            (SPEND, "b1", "lungs", 5.0, 1),
        ),
    )
    # heart: 0.2 spent + 0.4 committed = 0.6 used of a cap of 1.0 -> 0.4 left
    refused = check_reservation(view, project="heart", job="a2", planned=0.5, agreement_cap=1.0)
    assert not refused.allowed
    assert "caps project 'heart' at ε=1" in refused.reason
    assert "0.600 is already spent or committed" in refused.reason
    assert "at most 0.400 is left" in refused.reason
    allowed = check_reservation(view, project="heart", job="a2", planned=0.4, agreement_cap=1.0)
    assert allowed.allowed, allowed.reason
    # lungs spent 5 of its own: it does not count against a new project's cap
    other = check_reservation(view, project="eyes", job="c1", planned=1.0, agreement_cap=1.0)
    assert other.allowed, other.reason


def test_the_cap_is_checked_even_when_the_lifetime_has_room() -> None:
    view = tally(100.0, records((RESERVE, "a1", "heart", 0.9)))
    decision = check_reservation(view, project="heart", job="a2", planned=0.2, agreement_cap=1.0)
    assert not decision.allowed and "at most 0.100 is left" in decision.reason


def test_nothing_left_is_reported_as_zero_not_negative() -> None:
    view = tally(1.0, records((RESERVE, "a1", "heart", 1.0), (SPEND, "a1", "heart", 1.0, 1)))
    lifetime = check_reservation(view, project="x", job="b", planned=0.1, agreement_cap=None)
    assert not lifetime.allowed and "only 0.000 of" in lifetime.reason
    cap = check_reservation(view, project="heart", job="b", planned=0.1, agreement_cap=0.5)
    assert not cap.allowed and "at most 0.000 is left" in cap.reason


def test_a_second_reservation_by_the_same_job_is_refused() -> None:
    view = tally(None, records((RESERVE, "a1", "heart", 0.1)))
    decision = check_reservation(view, project="heart", job="a1", planned=0.1, agreement_cap=None)
    assert not decision.allowed and "already holds a reservation" in decision.reason


def test_a_released_job_cannot_reserve_again() -> None:
    view = tally(None, records((RESERVE, "a1", "heart", 0.1), (RELEASE, "a1", "heart", 0.0)))
    assert not check_reservation(
        view, project="heart", job="a1", planned=0.1, agreement_cap=None
    ).allowed


def test_a_reservation_exactly_at_the_limit_is_allowed() -> None:
    view = tally(1.5, records((RESERVE, "a1", "heart", 0.5)))
    decision = check_reservation(view, project="heart", job="a2", planned=1.0, agreement_cap=1.5)
    assert decision.allowed, decision.reason
    over = check_reservation(view, project="heart", job="a2", planned=1.0001, agreement_cap=None)
    assert not over.allowed


# -- parse_log -------------------------------------------------------------------------
def test_a_signed_chain_parses_back_to_its_records(steward_key) -> None:
    parsed = parse_log(chain(steward_key, ENTRIES), verifier(steward_key))
    assert [(r.seq, r.kind, r.job, r.epsilon, r.round) for r in parsed] == [
        (i, k, j, e, n) for i, (k, j, _, e, n) in enumerate(ENTRIES)
    ]
    assert parsed[0].prev == GENESIS
    view = tally(2.0, parsed)
    assert view.spent == pytest.approx(0.7) and view.committed == 0.0


def test_an_empty_log_has_no_records(steward_key) -> None:
    assert parse_log([], verifier(steward_key)) == []


def test_a_record_signed_by_another_key_is_named(steward_key) -> None:
    lines = chain(steward_key, ENTRIES)
    doc = json.loads(lines[2])
    doc["signature"] = keys.sign(keys.new_private_key(), canonical_json(doc["record"]))
    lines[2] = canonical_json(doc).decode()
    with pytest.raises(InvalidInput, match="spend log line 3 is not signed by this node"):
        parse_log(lines, verifier(steward_key))


def test_an_edited_epsilon_is_named(steward_key) -> None:
    lines = chain(steward_key, ENTRIES)
    doc = json.loads(lines[1])
    doc["record"]["epsilon"] = 0.01
    lines[1] = canonical_json(doc).decode()
    with pytest.raises(InvalidInput, match="spend log line 2 is not signed"):
        parse_log(lines, verifier(steward_key))


def test_a_deleted_record_breaks_the_chain(steward_key) -> None:
    lines = chain(steward_key, ENTRIES)
    del lines[1]
    with pytest.raises(InvalidInput, match="spend log line 2 does not follow"):
        parse_log(lines, verifier(steward_key))


def test_a_replayed_record_breaks_the_chain(steward_key) -> None:
    lines = chain(steward_key, ENTRIES)
    with pytest.raises(InvalidInput, match="spend log line 5 does not follow"):
        parse_log([*lines, lines[1]], verifier(steward_key))
    with pytest.raises(InvalidInput, match="spend log line 3 does not follow"):
        parse_log([*lines[:2], lines[1], *lines[2:]], verifier(steward_key))


def test_reordered_records_break_the_chain(steward_key) -> None:
    lines = chain(steward_key, ENTRIES)
    lines[1], lines[2] = lines[2], lines[1]
    with pytest.raises(InvalidInput, match="spend log line 2 does not follow"):
        parse_log(lines, verifier(steward_key))


def test_a_re_signed_record_with_a_correct_seq_but_wrong_prev_is_refused(steward_key) -> None:
    """Even the node's own key cannot splice a record in without its predecessor's hash."""
    lines = chain(steward_key, ENTRIES)
    forged = SpendRecord(1, SPEND, "job-1", "heart", 0.01, 1e-5, 1, {}, GENESIS)
    lines[1] = record_line(forged, keys.sign(steward_key, canonical_json(forged.document())))
    with pytest.raises(InvalidInput, match="spend log line 2 does not follow"):
        parse_log(lines, verifier(steward_key))


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[]",
        '{"record": {"type": "kumiai.spend", "version": 2}, "signature": ""}',
        '{"signature": "x"}',
    ],
)
def test_a_malformed_line_is_named(steward_key, bad: str) -> None:
    lines = chain(steward_key, ENTRIES)
    with pytest.raises(InvalidInput, match="spend log line 2 is malformed"):
        parse_log([lines[0], bad, *lines[1:]], verifier(steward_key))


# -- the policy's DP rules ------------------------------------------------------------
def decide(key, agreement, job):
    return check_job(
        job=job,
        coordinator_key=COORDINATOR_PUBLIC,
        operation="train",
        server_round=1,
        dataset="cleveland-heart",
        steward="cleveland",
        steward_public_keys=(keys.public_key_b64(key),),
        agreement=agreement,
        revoked=frozenset(),
        now=NOW,
    )


def test_an_agreement_with_an_epsilon_cap_refuses_a_non_private_job(steward_key) -> None:
    decision = decide(steward_key, signed(steward_key, epsilon_cap=2.0), make_signed_job())
    assert not decision.allowed
    assert "requires differential privacy with ε ≤ 2" in decision.reason
    assert "--epsilon" in decision.reason


def test_a_job_planning_more_than_the_cap_is_refused(steward_key) -> None:
    job = make_signed_job(private=True, epsilon=2.5)
    decision = decide(steward_key, signed(steward_key, epsilon_cap=2.0), job)
    assert not decision.allowed
    assert "plans ε=2.5" in decision.reason and "cap ε=2" in decision.reason


@pytest.mark.parametrize("epsilon", [2.0, 0.5, None])
def test_a_private_job_within_the_cap_is_allowed(steward_key, epsilon: float | None) -> None:
    """At the cap, below it, or with a fixed σ whose ε the node checks at admission."""
    job = make_signed_job(private=True, epsilon=epsilon)
    decision = decide(steward_key, signed(steward_key, epsilon_cap=2.0), job)
    assert decision.allowed, decision.reason


def test_without_a_cap_any_job_is_allowed_whatever_its_epsilon(steward_key) -> None:
    agreement = signed(steward_key)
    assert decide(steward_key, agreement, make_signed_job()).allowed
    assert decide(steward_key, agreement, make_signed_job(private=True, epsilon=50.0)).allowed


def test_the_cap_is_part_of_what_the_steward_signed(steward_key) -> None:
    original = signed(steward_key, epsilon_cap=1.0)
    raised = replace(original, terms=replace(original.terms, epsilon_cap=10.0))
    job = make_signed_job(private=True, epsilon=5.0)
    decision = decide(steward_key, raised, job)
    assert not decision.allowed and "does not verify" in decision.reason


def test_the_job_document_carries_privacy_through_json() -> None:
    job = make_signed_job(private=True, epsilon=0.75)
    assert SignedJob.from_json(job.to_json()) == job
    plain = make_signed_job()
    assert SignedJob.from_json(plain.to_json()) == plain
