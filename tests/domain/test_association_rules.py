"""The association's pure rules: rankings, yen, budgets, the compute quota, late milestones."""

from datetime import date

import pytest

from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.milestone import MilestoneStatus, decision_of, parse_date, timing
from kumiai.domain.money import (
    MAX_YEN,
    balances,
    budget,
    check_allocation,
    check_spent_on,
    fund_kind,
    spend_category,
    yen,
)
from kumiai.domain.project import require_lead
from kumiai.domain.quota import QuotaExceeded, check_quota, job_usage
from kumiai.domain.theme import check_theme, ranking_of

THEMES = ("agents", "industrial", "medical")


# -- themes and rankings -------------------------------------------------------------------
def test_a_ranking_names_every_theme_once_best_first() -> None:
    assert ranking_of(["medical", "agents", "industrial"], THEMES) == (
        "medical",
        "agents",
        "industrial",
    )
    assert ranking_of("medical, industrial,agents", THEMES) == ("medical", "industrial", "agents")


@pytest.mark.parametrize(
    ("ranking", "message"),
    [
        (["medical", "agents"], "leaves out industrial"),
        (["medical", "agents", "industrial", "quantum"], "unknown themes: quantum"),
        (["medical", "medical", "agents", "industrial"], "names medical more than once"),
        ([1, 2, 3], "a list of theme names"),
        ({"medical": 1}, "a list of theme names"),
    ],
)
def test_a_bad_ranking_is_refused(ranking: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ranking_of(ranking, THEMES)


def test_nothing_to_rank_without_themes() -> None:
    with pytest.raises(InvalidInput, match="no themes to rank"):
        ranking_of([], ())


def test_a_theme_needs_a_slug_and_a_title() -> None:
    assert check_theme("medical", "Medical AI") == "medical"
    with pytest.raises(InvalidInput, match="theme name 'Medical AI' is not valid"):
        check_theme("Medical AI", "x")
    with pytest.raises(InvalidInput, match="needs a title"):
        check_theme("medical", "  ")


# -- yen -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [(1, 1), (5_000_000, 5_000_000), ("42", 42)])
def test_yen_are_positive_whole_numbers(value: object, expected: int) -> None:
    assert yen(value) == expected


@pytest.mark.parametrize(
    "value", [0, -1, "-1", "0", 1.0, 1.5, "1.5", "1e6", True, None, "007", " 5", [5]]
)
def test_anything_else_is_not_an_amount(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"must be a whole number above 0"):
        yen(value)


def test_an_overflowing_amount_is_refused() -> None:
    assert yen(MAX_YEN) == MAX_YEN
    with pytest.raises(InvalidInput, match="above the most kumiai records"):
        yen(MAX_YEN + 1)
    with pytest.raises(InvalidInput, match="above the most kumiai records"):
        yen("9" * 20)
    with pytest.raises(InvalidInput, match="whole number above 0"):
        yen("9" * 400)  # not even parsed


def test_kinds_and_categories_are_closed_lists() -> None:
    assert fund_kind("grant").value == "grant"
    assert spend_category("compute").value == "compute"
    with pytest.raises(InvalidInput, match="not one of: dues, grant, investor"):
        fund_kind("loan")
    with pytest.raises(InvalidInput, match="personnel, compute, data, equipment, other"):
        spend_category("travel")


def test_an_allocation_may_not_exceed_the_unallocated_balance() -> None:
    check_allocation(300, "nedo-grant", 300)
    with pytest.raises(InvalidInput, match="'nedo-grant' has 300 yen unallocated, less than"):
        check_allocation(301, "nedo-grant", 300)


def test_balances_per_source() -> None:
    assert balances({"dues": 1000, "grant": 500}, {"grant": 200}) == {
        "dues": {"received": 1000, "allocated": 0, "unallocated": 1000},
        "grant": {"received": 500, "allocated": 200, "unallocated": 300},
    }


def test_budget_against_actual_by_category_and_overspend_shown() -> None:
    figures = budget(1000, [("compute", 300), ("personnel", 500), ("compute", 100)])
    assert figures.spent == {
        "personnel": 500,
        "compute": 400,
        "data": 0,
        "equipment": 0,
        "other": 0,
    }
    assert (figures.total_spent, figures.left, figures.overspent) == (900, 100, False)
    over = budget(1000, [("equipment", 1001)])
    assert (over.left, over.overspent) == (-1, True)
    assert budget(0, []).overspent is False


def test_spend_is_not_dated_in_the_future() -> None:
    today = date(2026, 11, 29)
    assert check_spent_on(today, today) == today
    with pytest.raises(InvalidInput, match="2026-11-30 is in the future"):
        check_spent_on(date(2026, 11, 30), today)


# -- the compute quota ---------------------------------------------------------------------
def test_usage_is_rounds_times_sites() -> None:
    assert job_usage("running", planned=30, completed=4, sites=3) == 90  # holds its plan
    assert job_usage("completed", planned=30, completed=30, sites=2) == 60
    assert job_usage("failed", planned=30, completed=5, sites=3) == 15  # what it ran
    assert job_usage("failed", planned=30, completed=0, sites=3) == 0


def test_a_job_within_the_quota_passes_and_one_beyond_is_refused() -> None:
    check_quota("heart", None, used=10**9, asked=10**9)  # no quota, no limit
    check_quota("heart", 100, used=40, asked=60)  # exactly the quota
    with pytest.raises(QuotaExceeded) as refused:
        check_quota("heart", 100, used=40, asked=61)
    assert isinstance(refused.value, StateError)
    assert "quota 100 site-rounds, used 40, asked 61 (rounds x sites), 60 left" in str(
        refused.value
    )
    assert refused.value.document() == {"site_rounds": 100, "used": 40, "asked": 61}


# -- milestones ----------------------------------------------------------------------------
DUE = date(2026, 12, 31)


def test_late_is_a_pure_function_of_the_dates() -> None:
    assert timing(DUE, None, date(2026, 12, 31)).label == "due"  # the due day itself
    late = timing(DUE, None, date(2027, 1, 1))
    assert (late.late, late.on_time, late.label) == (True, False, "late")
    on_time = timing(DUE, date(2026, 12, 31), date(2027, 6, 1))
    assert (on_time.late, on_time.on_time, on_time.label) == (False, True, "on time")
    accepted_late = timing(DUE, date(2027, 1, 2), date(2027, 6, 1))
    assert (accepted_late.late, accepted_late.on_time) == (True, False)


def test_dates_are_written_yyyy_mm_dd() -> None:
    assert parse_date("2026-02-28", "due") == date(2026, 2, 28)
    for bad in ("2026-02-30", "26-02-01", "2026-2-1", "2026-02-01T00:00:00", 20260201):
        with pytest.raises(InvalidInput, match="write it YYYY-MM-DD"):
            parse_date(bad, "due")


def test_reject_is_true_or_false() -> None:
    assert decision_of(None) is MilestoneStatus.ACCEPTED
    assert decision_of("false") is MilestoneStatus.ACCEPTED
    assert decision_of(True) is MilestoneStatus.REJECTED
    assert decision_of("true") is MilestoneStatus.REJECTED
    with pytest.raises(InvalidInput, match="'reject' must be true or false"):
        decision_of("yes")


def test_only_the_lead_answers_for_a_project() -> None:
    require_lead("heart", "aoi-univ", "aoi-univ", "record its spend")
    with pytest.raises(
        InvalidInput,
        match="only project 'heart''s lead member, aoi-univ, may record its spend; not 'kita'",
    ):
        require_lead("heart", "aoi-univ", "kita", "record its spend")
