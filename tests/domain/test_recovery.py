"""The shortfall rule: record what the node logged beyond the record, never less."""

import pytest

from kumiai.domain.budget import JobSpend
from kumiai.domain.recovery import Recorded, recovery_problem, shortfall


def logged(spent: float, rounds: int) -> JobSpend:
    return JobSpend("heart", reserved=1.0, spent=spent, rounds=rounds)


def test_a_round_the_node_logged_but_the_coordinator_did_not_is_recovered() -> None:
    recovered = shortfall("job-1", "d", Recorded(0.6, 3), logged(0.8, 4))
    assert recovered is not None
    assert recovered.epsilon == 0.8 and recovered.recorded_epsilon == 0.6
    assert recovered.rounds == (4,) and recovered.last_round == 4
    assert recovered.shortfall == pytest.approx(0.2)
    assert recovered.payload() == {
        "job": "job-1",
        "dataset": "d",
        "epsilon": 0.8,
        "recorded_epsilon": 0.6,
        "rounds": [4],
    }


def test_a_job_never_recorded_at_all_is_recovered_from_zero() -> None:
    recovered = shortfall("job-1", "d", Recorded(), logged(0.5, 2))
    assert recovered is not None
    assert recovered.epsilon == 0.5 and recovered.rounds == (1, 2)


def test_spend_before_round_one_is_recovered_without_rounds() -> None:
    """Aggregate statistics are paid at round 0, before any training round."""
    recovered = shortfall("job-1", "d", Recorded(), logged(0.1, 0))
    assert recovered is not None and recovered.rounds == () and recovered.epsilon == 0.1


def test_a_log_that_matches_the_record_needs_nothing() -> None:
    assert shortfall("job-1", "d", Recorded(0.6, 3), logged(0.6, 3)) is None


@pytest.mark.parametrize(
    ("spent", "rounds"),
    [(0.2, 1), (0.0, 0), (0.6, 2), (0.3, 3)],
    ids=["truncated", "emptied", "fewer rounds", "lower epsilon"],
)
def test_a_log_showing_less_than_was_recorded_never_lowers_it(spent: float, rounds: int) -> None:
    assert shortfall("job-1", "d", Recorded(0.6, 3), logged(spent, rounds)) is None


def test_a_log_ahead_in_one_measure_only_keeps_the_other_at_its_maximum() -> None:
    recovered = shortfall("job-1", "d", Recorded(0.6, 3), logged(0.5, 4))
    assert recovered is not None
    assert recovered.epsilon == 0.6 and recovered.rounds == (4,)


def test_no_log_for_the_job_needs_nothing() -> None:
    assert shortfall("job-1", "d", Recorded(0.6, 3), None) is None


def test_the_auditor_refuses_a_recovery_that_lowers_or_names_nothing() -> None:
    good = {"job": "j", "dataset": "d", "epsilon": 0.8, "recorded_epsilon": 0.6, "rounds": [4]}
    assert recovery_problem(good) is None
    assert recovery_problem({**good, "epsilon": 0.6}) is None
    assert recovery_problem({**good, "epsilon": 0.5})[0] == "recovered-lower"  # type: ignore[index]
    for bad in ({**good, "epsilon": "0.8"}, {**good, "epsilon": True}, {"job": "j"}, [1]):
        assert recovery_problem(bad)[0] == "malformed"  # type: ignore[index]
