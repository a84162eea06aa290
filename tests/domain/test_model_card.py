"""The card's figures from the nodes' histograms: summed as if pooled, gaps, the verdict."""

import pytest

from kumiai.domain.model_card import (
    add,
    audit_verdict,
    fairness,
    figures,
    gap,
    reliability,
    weighted_importance,
)

PERFECT = {"positives": [0, 0, 0, 0, 0, 0, 0, 2, 3, 5], "negatives": [5, 3, 2, 0, 0, 0, 0, 0, 0, 0]}


def test_the_worked_example_of_the_module() -> None:
    f = figures(PERFECT)
    assert f == {
        "rows": 20,
        "accuracy": 1.0,
        "auc": 1.0,
        "tpr": 1.0,
        "fpr": 0.0,
        "positive_rate": 0.5,
        "predicted_positive_rate": 0.5,
    }
    top = reliability(PERFECT)["table"][9]
    assert (top["rows"], top["observed"], top["predicted"]) == (5, 1.0, 0.95)


def test_rates_at_one_half_and_ties_within_a_bin_count_half() -> None:
    h = {"positives": [0, 0, 0, 0, 1, 1, 0, 0, 0, 0], "negatives": [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]}
    f = figures(h)
    assert (f["tpr"], f["fpr"], f["accuracy"]) == (0.5, 0.5, 0.5)
    assert f["auc"] == 0.5


def test_sites_add_up_as_if_pooled() -> None:
    a = {"positives": [1] * 10, "negatives": [2] * 10}
    b = {"positives": [0] * 9 + [4], "negatives": [3] + [0] * 9}
    assert add([a, b]) == {"positives": [1] * 9 + [5], "negatives": [5] + [2] * 9}


def test_calibration_error_weighs_each_bin_by_its_rows() -> None:
    # 10 rows predicted 0.05 with 1 positive; 10 predicted 0.95 with 9: off by 0.05 in each
    h = {"positives": [1] + [0] * 8 + [9], "negatives": [9] + [0] * 8 + [1]}
    assert reliability(h)["expected_calibration_error"] == pytest.approx(0.05)
    assert reliability({"positives": [0] * 10, "negatives": [0] * 10}) == {
        "table": reliability({"positives": [0] * 10, "negatives": [0] * 10})["table"],
        "expected_calibration_error": None,
    }


def test_gap_names_the_lowest_and_highest() -> None:
    assert gap({"a": 0.8, "b": 0.9, "c": None}) == {
        "lowest": "a",
        "highest": "b",
        "gap": pytest.approx(0.1),
    }
    assert gap({"a": 0.8, "c": None}) is None


def test_fairness_sums_levels_across_sites_and_lists_sites_that_kept_theirs() -> None:
    female = {"positives": [0] * 5 + [2] * 5, "negatives": [2] * 5 + [0] * 5}
    male = {"positives": [1] * 10, "negatives": [1] * 10}
    result = fairness(
        {
            "a": {"Female": female, "Male": male},
            "b": {"Female": female, "Male": male},
            "c": {"withheld": "a level has fewer than 10 test rows"},
        }
    )
    assert result["levels"]["Female"]["rows"] == 40
    assert result["levels"]["Female"]["accuracy"] == 1.0
    assert result["levels"]["Male"]["accuracy"] == 0.5
    assert result["gaps"]["accuracy"]["lowest"] == "Male"
    assert result["gaps"]["accuracy"]["gap"] == 0.5
    assert result["withheld"] == {"c": "a level has fewer than 10 test rows"}


def test_a_bound_above_the_accounted_epsilon_is_shown_as_a_violation() -> None:
    assert audit_verdict(0.4, 1.0) == "holds"
    assert audit_verdict(1.0, 1.0) == "holds"
    assert audit_verdict(1.2, 1.0).startswith("VIOLATED")
    assert audit_verdict(0.3, None) == "no DP: leaks measurably"
    assert audit_verdict(0.0, None) == "no DP: no leak measured"


def test_permutation_importance_weighs_each_site_by_its_test_rows() -> None:
    values = weighted_importance(
        {"a": (30, {"age": 0.2, "sex": 0.0}), "b": (10, {"age": 0.6, "sex": -0.4})}
    )
    assert values == [["age", pytest.approx(0.3)], ["sex", pytest.approx(-0.1)]]
    assert weighted_importance({}) == []
