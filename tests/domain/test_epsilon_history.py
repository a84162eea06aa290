"""ε over time from the ledger: a job's largest stated spend, summed over jobs."""

from kumiai.domain.epsilon_history import EpsilonPoint, epsilon_history

T = "2026-11-27T12:00:00Z"


def test_rounds_are_cumulative_and_jobs_add_up() -> None:
    entries = [
        (1, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.25, "b": 0.5}}),
        (2, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.5, "b": 1.0}}),
        (3, T, "round.completed", {"job": "j2", "epsilon": {"a": 0.125}}),
    ]
    assert epsilon_history(entries) == {
        "a": [EpsilonPoint(1, T, 0.25), EpsilonPoint(2, T, 0.5), EpsilonPoint(3, T, 0.625)],
        "b": [EpsilonPoint(1, T, 0.5), EpsilonPoint(2, T, 1.0)],
    }


def test_a_recovery_raises_never_lowers_and_a_charge_adds_its_job() -> None:
    entries = [
        (1, T, "round.completed", {"job": "j1", "epsilon": {"a": 1.0}}),
        (2, T, "privacy.recovered", {"job": "j1", "dataset": "a", "epsilon": 0.5}),
        (3, T, "privacy.recovered", {"job": "j1", "dataset": "a", "epsilon": 1.5}),
        (4, T, "privacy.charged", {"job": "c1", "dataset": "a", "epsilon": 0.25}),
    ]
    assert epsilon_history(entries)["a"] == [
        EpsilonPoint(1, T, 1.0),
        EpsilonPoint(3, T, 1.5),
        EpsilonPoint(4, T, 1.75),
    ]


def test_hostile_values_and_other_kinds_are_passed_over() -> None:
    entries = [
        (1, T, "round.completed", {"job": "j1", "epsilon": {"a": -1.0, "b": True}}),
        (2, T, "round.completed", {"job": "j1", "epsilon": {"a": float("nan")}}),
        (3, T, "round.completed", {"job": "j1", "epsilon": {"a": float("inf")}}),
        (4, T, "round.completed", {"job": 7, "epsilon": {"a": 1.0}}),
        (5, T, "round.completed", {"job": "j1", "epsilon": ["a", 1.0]}),
        (6, T, "spend.recorded", {"job": "j1", "dataset": "a", "epsilon": 1.0}),
        (7, T, "privacy.charged", {"job": "j1", "dataset": None, "epsilon": 1.0}),
    ]
    assert epsilon_history(entries) == {}
