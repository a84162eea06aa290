"""When a node releases a job's ε, and what a release report may record."""

from datetime import UTC, datetime, timedelta

import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.domain.recovery import Recorded
from kumiai.domain.releasing import Touch, release_report, touched, why_release

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
MARK = (1.0, 0.4, 2)


def test_a_reservation_is_touched_when_it_moves_and_only_then() -> None:
    first = touched(None, MARK, T0)
    assert first == Touch(MARK, T0)
    assert touched(first, MARK, T0 + timedelta(hours=5)) == first  # unchanged: still T0
    moved = touched(first, (1.0, 0.5, 3), T0 + timedelta(hours=5))
    assert moved == Touch((1.0, 0.5, 3), T0 + timedelta(hours=5))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", "the job is completed"),
        ("failed", "the job is failed"),
        (None, "the coordinator knows no such job"),
        ("running", None),
        ("interrupted", None),  # recovery marks it failed; until then the clock decides
    ],
)
def test_the_coordinators_word_releases_a_job_that_is_over(
    status: str | None, expected: str | None
) -> None:
    assert why_release(status, Touch(MARK, T0), T0 + timedelta(minutes=1)) == expected


def test_running_forever_is_released_after_stale_after_on_the_nodes_clock() -> None:
    touch = Touch(MARK, T0)
    day = timedelta(hours=24)
    assert why_release("running", touch, T0 + day - timedelta(seconds=1)) is None
    assert why_release("running", touch, T0 + day) == (
        "the coordinator says running, but nothing was spent on it for 24.0 h (--stale-after 24 h)"
    )
    assert why_release("running", touch, T0 + timedelta(hours=2), timedelta(hours=1)) is not None


def test_a_report_raises_the_record_to_the_nodes_figure() -> None:
    found = release_report("job-1", "d", Recorded(0.4, 2), 1.0, 0.6, 3)
    assert found is not None
    assert (found.epsilon, found.recorded_epsilon, found.rounds, found.last_round) == (
        0.6,
        0.4,
        (3,),
        3,
    )
    assert release_report("job-1", "d", Recorded(0.6, 3), 1.0, 0.6, 3) is None  # equal: nothing


@pytest.mark.parametrize(
    ("spent", "rounds", "message"),
    [
        (0.3, 2, "below the ε=0.4 after 2 already recorded; a release never lowers"),
        (0.4, 1, "below the ε=0.4 after 2 already recorded"),
        (1.5, 4, "over the ε=1.0 reserved"),
        (-0.1, 2, "both must be finite and not negative"),
        (float("nan"), 2, "both must be finite and not negative"),
        (float("inf"), 2, "both must be finite and not negative"),
        (0.5, -1, "both must be finite and not negative"),
    ],
)
def test_a_report_that_would_lower_overflow_or_is_not_a_number_is_refused(
    spent: float, rounds: int, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        release_report("job-1", "d", Recorded(0.4, 2), 1.0, spent, rounds)
    assert message in str(refused.value)
    assert "job-1" in str(refused.value) and "'d'" in str(refused.value)
