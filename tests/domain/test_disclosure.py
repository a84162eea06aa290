"""The rules on aggregate statistics a node may release (kumiai.domain.disclosure)."""

import numpy as np
import pytest

from kumiai.domain.agreement import AgreementTerms
from kumiai.domain.disclosure import (
    DP_LOSS_BOUND,
    DP_SCORE_BINS,
    PublicDomain,
    check_min_cohort,
    check_statistics_mode,
    clip_to_domain,
    cohort_refusal,
    domain_gaps,
    noisy_score,
    noisy_summary,
)
from kumiai.domain.errors import InvalidInput
from kumiai.domain.metrics import score_site
from kumiai.domain.preprocessing import summarise
from kumiai.domain.schema import ColumnType

SCHEMA = {"age": ColumnType.NUMERIC, "sex": ColumnType.CATEGORICAL}
DOMAIN = PublicDomain(bounds={"age": (0.0, 100.0)}, levels={"sex": ("F", "M")}, classes=("0", "1"))


def columns() -> tuple[dict[str, np.ndarray], np.ndarray]:
    age = np.array([30.0, 250.0, np.nan, 60.0, -5.0])  # 250 and -5 lie outside the bounds
    sex = np.array(["F", "M", None, "X", "M"], dtype=object)  # "X" is not a public level
    labels = np.array(["0", "1", "1", "0", "2"], dtype=object)  # "2" is not a public class
    return {"age": age, "sex": sex}, labels


def no_noise(values: list[float], scale: float, integer: bool) -> list[float]:
    return list(values)


class Recorder:
    """A noise source that records the scale each release asked for, and adds nothing."""

    def __init__(self) -> None:
        self.scales: list[tuple[int, float, bool]] = []

    def __call__(self, values: list[float], scale: float, integer: bool) -> list[float]:
        self.scales.append((len(values), scale, integer))
        return list(values)


def test_modes_and_cohorts_are_checked() -> None:
    assert check_statistics_mode("dp") == "dp"
    with pytest.raises(InvalidInput, match="allowed, dp, forbidden"):
        check_statistics_mode("sometimes")
    assert check_min_cohort(0) == 0
    for bad in (-1, 2.5, True):
        with pytest.raises(InvalidInput, match="whole number"):
            check_min_cohort(bad)  # type: ignore[arg-type]


def test_a_small_site_is_refused_naming_the_smaller_split() -> None:
    assert cohort_refusal("agr-1", 20, 80, 20) is None
    reason = cohort_refusal("agr-1", 20, 80, 19)
    assert reason is not None and "test split holds 19" in reason and "agr-1" in reason
    reason = cohort_refusal("agr-1", 50, 40, 60)
    assert reason is not None and "training split holds 40" in reason


def test_the_agreement_signs_its_statistics_terms() -> None:
    doc = {
        "type": "kumiai.agreement",
        "version": 2,
        "agreement_id": "agr-1",
        "request_id": "req-1",
        "project": "p",
        "dataset": "d",
        "steward": "s",
        "purpose": "x",
        "job_kinds": ["train"],
        "max_rounds": 3,
        "expires_at": "2030-01-01T00:00:00Z",
        "signed_at": "2026-01-01T00:00:00Z",
        "aggregate_statistics": "dp",
        "min_cohort": 25,
    }
    terms = AgreementTerms.from_payload(doc)
    assert (terms.aggregate_statistics, terms.min_cohort) == ("dp", 25)
    assert terms.payload()["aggregate_statistics"] == "dp"  # inside the signed bytes
    with pytest.raises(InvalidInput, match="not known"):
        AgreementTerms.from_payload({**doc, "aggregate_statistics": "whatever"})
    with pytest.raises(InvalidInput, match="minimum cohort"):
        AgreementTerms.from_payload({**doc, "min_cohort": -3})


def test_the_public_domain_file_is_checked_with_an_example() -> None:
    assert PublicDomain.from_json(DOMAIN.to_json()) == DOMAIN
    for bad in (
        "[]",
        '{"bounds": {"age": [5, 1]}}',
        '{"bounds": {"age": [0, "inf"]}}',
        '{"bounds": {"age": [0]}}',
        '{"colour": {}}',
        "not json",
    ):
        with pytest.raises(InvalidInput, match='"bounds"'):
            PublicDomain.from_json(bad)


def test_gaps_name_every_missing_bound() -> None:
    assert domain_gaps(SCHEMA, DOMAIN) == []
    gaps = domain_gaps(SCHEMA, PublicDomain())
    assert gaps == [
        "bounds for numeric column 'age'",
        "levels for column 'sex'",
        "the target's classes (at least two)",
    ]


def test_clipping_keeps_every_value_inside_the_public_domain() -> None:
    cols, labels = columns()
    clipped, kept = clip_to_domain(cols, labels, SCHEMA, DOMAIN)
    assert list(kept) == ["0", "1", "1", "0"]  # the row of class "2" is left out
    assert np.nanmax(clipped["age"]) == 100.0 and np.nanmin(clipped["age"]) == 30.0
    assert np.isnan(clipped["age"][2])
    assert list(clipped["sex"]) == ["F", "M", None, None]  # "X" counts as missing


def test_without_noise_the_dp_summary_is_the_clipped_summary() -> None:
    cols, labels = columns()
    clipped, kept = clip_to_domain(cols, labels, SCHEMA, DOMAIN)
    exact = summarise(clipped, SCHEMA, kept)
    released = noisy_summary(exact, DOMAIN, 1.0, no_noise)
    assert released.classes == {"0": 2, "1": 2}
    assert released.numeric["age"] == exact.numeric["age"]
    assert released.levels["sex"] == {"F": 1, "M": 1}  # every public level, even at zero
    assert released.missing == exact.missing


def test_each_release_is_noised_for_its_sensitivity_and_share_of_epsilon() -> None:
    cols, labels = columns()
    clipped, kept = clip_to_domain(cols, labels, SCHEMA, DOMAIN)
    noise = Recorder()
    noisy_summary(summarise(clipped, SCHEMA, kept), DOMAIN, 0.5, noise)
    # classes, age counts, age sum, age squares, sex levels: five releases, ε/5 each
    share = 0.5 / 5
    assert noise.scales == [
        (2, 1 / share, True),
        (2, 1 / share, True),
        (1, 100 / share, False),
        (1, 100**2 / share, False),
        (3, 1 / share, True),
    ]


def test_noise_never_yields_negative_counts_or_a_mean_outside_the_bounds() -> None:
    cols, labels = columns()
    clipped, kept = clip_to_domain(cols, labels, SCHEMA, DOMAIN)

    def huge(values: list[float], scale: float, integer: bool) -> list[float]:
        return [v - 1e6 if integer else v + 1e9 for v in values]

    released = noisy_summary(summarise(clipped, SCHEMA, kept), DOMAIN, 1.0, huge)
    assert all(n == 0 for n in released.classes.values())
    assert released.numeric["age"] == (0, 0.0, 0.0)
    assert all(v >= 0 for v in released.missing.values())


def test_dp_scores_are_coarse_clipped_and_noised_per_release() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    proba1 = np.clip(labels * 0.6 + rng.random(200) * 0.4, 0, 1)
    proba = np.column_stack([1 - proba1, proba1])
    proba[0] = [1.0, 0.0] if labels[0] == 1 else [0.0, 1.0]  # one confidently wrong row
    exact = score_site(proba, labels)
    bounded = score_site(proba, labels, loss_bound=DP_LOSS_BOUND)
    assert bounded.loss_sum < exact.loss_sum  # the wrong row's loss is clipped
    noise = Recorder()
    released = noisy_score(bounded, 2.0, noise)
    assert [(n, s) for n, s, _ in noise.scales] == [
        (1, 1 / 0.5),
        (1, 1 / 0.5),
        (1, DP_LOSS_BOUND / 0.5),
        (2 * DP_SCORE_BINS, 1 / 0.5),
    ]
    assert released.examples == 200 and released.correct == bounded.correct
    assert int(released.hist_pos.sum() + released.hist_neg.sum()) == 200
    assert np.count_nonzero(released.hist_pos) <= DP_SCORE_BINS
    assert released.auc is not None and abs(released.auc - (exact.auc or 0)) < 0.05
