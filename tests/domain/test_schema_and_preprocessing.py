"""Schemas must match across sites; federated statistics must equal pooled ones exactly."""

import json

import numpy as np
import pytest

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput, SchemaMismatch, StateError
from kumiai.domain.preprocessing import FeaturePlan, SiteSummary, merge_summaries, summarise
from kumiai.domain.project import ProjectStatus, transition
from kumiai.domain.schema import (
    ColumnType,
    compare_schemas,
    parse_column_types,
    parse_missing_markers,
    parse_target,
)

N, C = ColumnType.NUMERIC, ColumnType.CATEGORICAL


def test_canonical_json_sorts_keys_without_spaces_in_utf8() -> None:
    assert canonical_json({"b": 1, "a": "組合"}) == '{"a":"組合","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


@pytest.mark.parametrize(
    ("text", "column", "op", "value"),
    [
        ("num>0", "num", ">", "0"),
        ("num", "num", None, None),
        ("Type != L", "Type", "!=", "L"),
        ("Failure Type==No Failure", "Failure Type", "==", "No Failure"),
    ],
)
def test_target_rules_parse(text: str, column: str, op: str | None, value: str | None) -> None:
    spec = parse_target(text)
    assert (spec.column, spec.op, spec.value) == (column, op, value)


def test_an_ordering_rule_needs_a_number() -> None:
    with pytest.raises(InvalidInput, match="not a number"):
        parse_target("num>high")


def test_column_types_and_missing_markers_parse_or_explain() -> None:
    assert parse_column_types("ca=numeric, sex=categorical") == {"ca": N, "sex": C}
    assert parse_missing_markers("chol=0,chol=-1,ca=?") == {"chol": ("0", "-1"), "ca": ("?",)}
    with pytest.raises(InvalidInput, match="COLUMN=numeric"):
        parse_column_types("ca=float")
    with pytest.raises(InvalidInput, match="COLUMN=VALUE"):
        parse_missing_markers("chol")


def test_sites_with_different_columns_are_listed() -> None:
    with pytest.raises(SchemaMismatch) as error:
        compare_schemas(
            {
                "a": {"age": N, "chol": N},
                "b": {"age": N, "sex": C},
                "c": {"age": C, "chol": N, "sex": C},
            }
        )
    message = str(error.value)
    assert "a lacks sex" in message and "b lacks chol" in message
    assert "column age has different types (a=numeric, b=numeric, c=categorical)" in message


def test_matching_sites_share_one_schema() -> None:
    assert compare_schemas({"a": {"x": N, "y": C}, "b": {"y": C, "x": N}}) == {"x": N, "y": C}


def _site(rng: np.random.Generator, n: int, levels: list[str]) -> tuple[dict, np.ndarray]:
    age = rng.normal(50, 10, n)
    age[rng.random(n) < 0.2] = np.nan
    sex = np.array(
        [rng.choice(levels) if rng.random() > 0.1 else None for _ in range(n)], dtype=object
    )
    labels = rng.choice(["0", "1"], n).astype(object)
    return {"age": age, "sex": sex}, labels


def test_merged_summaries_equal_pooled_statistics() -> None:
    rng = np.random.default_rng(7)
    schema = {"age": N, "sex": C}
    sites = {"a": _site(rng, 120, ["M", "F"]), "b": _site(rng, 80, ["F", "X"])}
    summaries = {k: summarise(cols, schema, y) for k, (cols, y) in sites.items()}
    plan = merge_summaries(summaries)
    pooled_age = np.concatenate([cols["age"] for cols, _ in sites.values()])
    assert plan.means["age"] == pytest.approx(np.nanmean(pooled_age), rel=1e-12)
    assert plan.scales["age"] == pytest.approx(np.nanstd(pooled_age), rel=1e-9)
    assert plan.levels["sex"] == ("F", "M", "X")
    assert set(plan.indicators) == {"age", "sex"}
    assert plan.classes == ("0", "1")
    X = plan.transform(sites["a"][0])
    assert X.shape == (120, len(plan.feature_names)) == (120, 1 + 1 + 3 + 1)
    assert not np.isnan(X).any()


def test_summaries_and_plans_round_trip_through_json() -> None:
    rng = np.random.default_rng(1)
    cols, labels = _site(rng, 30, ["M", "F"])
    summary = summarise(cols, {"age": N, "sex": C}, labels)
    assert SiteSummary.from_json(summary.to_json()) == summary
    plan = merge_summaries({"a": summary})
    assert FeaturePlan.from_json(plan.to_json()) == plan
    assert json.loads(summary.to_json())["rows"] == 30


def test_a_single_class_across_all_sites_is_refused() -> None:
    cols = {"x": np.array([1.0, 2.0])}
    summary = summarise(cols, {"x": N}, np.array(["1", "1"], dtype=object))
    with pytest.raises(InvalidInput, match="only the class"):
        merge_summaries({"a": summary})


def test_unknown_labels_at_encoding_time_are_named() -> None:
    cols = {"x": np.array([1.0, 2.0])}
    plan = merge_summaries({"a": summarise(cols, {"x": N}, np.array(["0", "1"], dtype=object))})
    with pytest.raises(InvalidInput, match=r"\['7'\]"):
        plan.encode_labels(np.array(["0", "7"], dtype=object), "site a")


def test_project_lifecycle_allows_only_forward_moves() -> None:
    assert transition("p", ProjectStatus.PROPOSED, ProjectStatus.ACTIVE) is ProjectStatus.ACTIVE
    with pytest.raises(StateError, match="closed and cannot become active"):
        transition("p", ProjectStatus.CLOSED, ProjectStatus.ACTIVE)
