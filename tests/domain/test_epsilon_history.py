"""ε over time from the ledger: a job's largest stated spend, summed over jobs."""

import pytest

from kumiai.domain.epsilon_history import (
    BudgetPoint,
    EpsilonPoint,
    budget_history,
    epsilon_history,
)

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


def started(job: str, epsilon: object, *datasets: object) -> tuple[str, dict[str, object]]:
    """A `job.started` entry as the ledger holds it: the signed document, planned ε inside."""
    document = {
        "job": {"job_id": job, "datasets": list(datasets), "settings": {"epsilon": epsilon}}
    }
    return "job.started", {"job": job, "document": {**document, "signature": "sig"}}


def at(seq: int, kind_payload: tuple[str, dict[str, object]]) -> tuple[int, str, str, dict]:
    return (seq, T, *kind_payload)


def figures(points: list[BudgetPoint]) -> list[tuple[int, float, float, float | None]]:
    return [(p.seq, p.spent, p.committed, p.left) for p in points]


def test_a_job_commits_its_plan_spends_it_down_and_frees_the_rest_at_its_release() -> None:
    entries = [
        (1, T, "privacy.budget-set", {"dataset": "a", "epsilon": 4.0}),
        at(2, started("j1", 1.0, "a")),
        (3, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.25}}),
        (4, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.75}}),
        (5, T, "model.released", {"model": "m1", "job": "j1"}),
    ]
    assert figures(budget_history(entries)["a"]) == [
        (1, 0.0, 0.0, 4.0),
        (2, 0.0, 1.0, 3.0),  # the whole plan is held before any round
        (3, 0.25, 0.75, 3.0),  # a round moves ε from committed to spent
        (4, 0.75, 0.25, 3.0),
        (5, 0.75, 0.0, 3.25),  # over: what it never spent is left again
    ]


def test_a_failed_job_frees_its_commitment_and_keeps_its_spend() -> None:
    entries = [
        at(1, started("j1", 2.0, "a", "b")),
        (2, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.5, "b": 0.5}}),
        (3, T, "job.failed", {"job": "j1", "completed_rounds": 1, "error": "node down"}),
    ]
    history = budget_history(entries)
    assert (
        figures(history["a"])
        == figures(history["b"])
        == [
            (1, 0.0, 2.0, None),  # no lifetime budget set: nothing is left to chart
            (2, 0.5, 1.5, None),
            (3, 0.5, 0.0, None),
        ]
    )


def test_two_overlapping_jobs_each_hold_their_own_plan() -> None:
    entries = [
        (1, T, "privacy.budget-set", {"dataset": "a", "epsilon": 5.0}),
        at(2, started("j1", 1.0, "a")),
        at(3, started("j2", 2.0, "a")),
        (4, T, "round.completed", {"job": "j1", "epsilon": {"a": 1.5}}),  # over its plan
        (5, T, "round.completed", {"job": "j2", "epsilon": {"a": 0.5}}),
        (6, T, "model.released", {"model": "m1", "job": "j1"}),
        (7, T, "model.released", {"model": "m2", "job": "j2"}),
    ]
    assert figures(budget_history(entries)["a"]) == [
        (1, 0.0, 0.0, 5.0),
        (2, 0.0, 1.0, 4.0),
        (3, 0.0, 3.0, 2.0),
        (4, 1.5, 2.0, 1.5),  # j1 spent past its plan: it holds 0, never a negative
        (5, 2.0, 1.5, 1.5),
        (7, 2.0, 0.0, 3.0),  # j1's end moved nothing, so it draws no point
    ]


def test_a_budget_changed_midway_moves_what_is_left_from_then_on() -> None:
    entries = [
        (1, T, "privacy.budget-set", {"dataset": "a", "epsilon": 3.0}),
        at(2, started("j1", 1.0, "a")),
        (3, "2026-11-28T09:00:00Z", "privacy.budget-set", {"dataset": "a", "epsilon": 6.0}),
        (4, T, "round.completed", {"job": "j1", "epsilon": {"a": 1.0}}),
    ]
    history = budget_history(entries)["a"]
    assert figures(history) == [
        (1, 0.0, 0.0, 3.0),
        (2, 0.0, 1.0, 2.0),
        (3, 0.0, 1.0, 5.0),
        (4, 1.0, 0.0, 5.0),
    ]
    assert [p.lifetime for p in history] == [3.0, 3.0, 6.0, 6.0]
    assert history[2].time == "2026-11-28T09:00:00Z"


def test_the_spent_series_is_the_epsilon_history() -> None:
    entries = [
        at(1, started("j1", 1.0, "a")),
        (2, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.25, "b": 0.5}}),
        (3, T, "privacy.charged", {"job": "c1", "dataset": "a", "epsilon": 0.125}),
    ]
    spent = {
        d: [(p.seq, p.spent) for p in ps if p.spent] for d, ps in budget_history(entries).items()
    }
    assert spent == {
        d: [(p.seq, p.total) for p in ps] for d, ps in epsilon_history(entries).items()
    }


@pytest.mark.parametrize(
    "hostile",
    [
        started("j9", float("nan"), "a"),
        started("j9", -1.0, "a"),
        started("j9", True, "a"),
        started("j9", None, "a"),  # a job without a plan (no DP, or a fixed σ)
        started("j9", "1.0", "a"),
        started("j9", 1.0, 7, None),  # no dataset by name
        ("job.started", {"job": "j9", "document": "not a document"}),
        ("job.started", {"job": "j9", "document": {"job": {"datasets": "a", "settings": {}}}}),
        ("job.started", {"job": 9, "document": started("j9", 1.0, "a")[1]["document"]}),
        ("privacy.budget-set", {"dataset": "a", "epsilon": float("inf")}),
        ("privacy.budget-set", {"dataset": "a", "epsilon": -2.0}),
        ("privacy.budget-set", {"dataset": "a", "epsilon": False}),
        ("privacy.budget-set", {"dataset": None, "epsilon": 2.0}),
        ("model.released", {"job": "j1"}),  # ends a job that never started here
        ("job.refused", {"job": "j0", "dataset": "b"}),  # a dataset its plan never named
        ("job.refused", {"job": "j0", "dataset": ["a"]}),
        ("job.completed", {"job": "j0"}),  # no such kind: a job ends at its release
        ("job.failed", {"job": ["j0"]}),
    ],
)
def test_hostile_plans_budgets_and_ends_are_passed_over(
    hostile: tuple[str, dict[str, object]],
) -> None:
    base = [
        (1, T, "privacy.budget-set", {"dataset": "a", "epsilon": 4.0}),
        at(2, started("j0", 1.0, "a")),
    ]
    history = budget_history([*base, at(3, hostile)])
    assert figures(history["a"]) == [(1, 0.0, 0.0, 4.0), (2, 0.0, 1.0, 3.0)]
    assert set(history) == {"a"}


def test_a_replayed_start_holds_once_and_an_unplanned_dataset_commits_nothing() -> None:
    entries = [
        at(1, started("j1", 1.0, "a")),
        at(2, started("j1", 1.0, "a", "b")),
        (3, T, "round.completed", {"job": "j1", "epsilon": {"a": 0.5, "unknown": 0.5}}),
        (4, T, "round.completed", {"job": "j1", "epsilon": "all of it"}),
    ]
    history = budget_history(entries)
    assert figures(history["a"]) == [(1, 0.0, 1.0, None), (3, 0.5, 0.5, None)]
    assert figures(history["unknown"]) == [(3, 0.5, 0.0, None)]  # spent, as the report counts
    assert "b" not in history


def test_a_refusing_site_frees_its_dataset_and_an_analysis_release_spends_then_ends() -> None:
    entries = [
        at(1, started("s1", 0.5, "a", "b")),
        (2, T, "job.refused", {"job": "s1", "dataset": "b", "round": 0, "reason": "no"}),
        (3, T, "analysis.released", {"job": "s1", "spent": {"a": 0.25}}),
        at(4, started("s1", 0.5, "a")),  # replayed after it ended: holds nothing again
    ]
    history = budget_history(entries)
    assert figures(history["a"]) == [(1, 0.0, 0.5, None), (3, 0.25, 0.0, None)]
    assert figures(history["b"]) == [(1, 0.0, 0.5, None), (2, 0.0, 0.0, None)]
