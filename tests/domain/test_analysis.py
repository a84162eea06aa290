"""DP analytics rules: queries, their ε and sensitivities, the exact vectors, the intervals."""

import math

import numpy as np
import pytest

from kumiai.domain.analysis import (
    COUNT,
    CROSSTAB,
    HISTOGRAM,
    MEAN,
    MEAN_UNITS,
    QUANTILES,
    Analysis,
    Query,
    exact_vectors,
    make_analysis,
    parse_queries,
)
from kumiai.domain.analysis_results import figures_for, noise_halfwidth
from kumiai.domain.errors import InvalidInput
from kumiai.domain.secure_sum import MODULUS, mask, public_key_b64, unmask


def test_options_become_queries_with_public_bounds_and_levels() -> None:
    queries = parse_queries(
        count=True,
        means=["age:0:120", "chol"],
        histograms=["chol:100:600:10"],
        quantiles=["age:0.25,0.5"],
        crosstabs=["sex,target"],
        bounds={"chol": (0.0, 700.0), "age": (18.0, 100.0)},
        levels={"sex": ("F", "M"), "target": ("0", "1")},
    )
    assert queries == [
        Query(COUNT),
        Query(MEAN, "age", low=0.0, high=120.0),
        Query(MEAN, "chol", low=0.0, high=700.0),
        Query(HISTOGRAM, "chol", low=100.0, high=600.0, bins=10),
        Query(QUANTILES, "age", low=18.0, high=100.0, bins=100, probabilities=(0.25, 0.5)),
        Query(CROSSTAB, "sex", "target", levels=(("F", "M"), ("0", "1"))),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"means": ["age"]}, "--mean age: no public bounds; write --mean age:LOW:HIGH"),
        ({"means": ["age:5:5"]}, "low < high"),
        ({"means": ["age:-1e308:1e308"]}, "low < high"),
        ({"means": ["age:0:inf"]}, "low < high"),
        ({"histograms": ["chol:100:600"]}, "COLUMN:LOW:HIGH:BINS"),
        ({"histograms": ["chol:1:9:0"]}, "bins must be 1 to 1000"),
        ({"quantiles": ["age:0:120:1.5"]}, "strictly between 0 and 1"),
        ({"crosstabs": ["sex"]}, "name two columns"),
        ({"crosstabs": ["sex,cp"]}, "the levels of 'sex' are not declared"),
    ],
)
def test_a_malformed_query_is_refused_with_the_fix(options: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_queries(**options)


def test_an_analysis_needs_queries_and_a_positive_epsilon() -> None:
    with pytest.raises(InvalidInput, match="no queries given"):
        make_analysis([], 1.0)
    with pytest.raises(InvalidInput, match="an analysis needs --epsilon"):
        make_analysis([Query(COUNT)], None)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(InvalidInput, match="positive, finite --epsilon"):
            make_analysis([Query(COUNT)], bad)
    with pytest.raises(InvalidInput, match="asked twice"):
        make_analysis([Query(COUNT), Query(COUNT)], 1.0)
    many = [Query(MEAN, f"c{i}", low=0.0, high=1.0) for i in range(101)]
    with pytest.raises(InvalidInput, match="101 queries asked; an analysis asks at most 100"):
        make_analysis(many, 1.0)
    assert len(make_analysis(many[:100], 1.0).queries) == 100


def test_the_epsilon_is_split_evenly_and_a_mean_splits_its_share_again() -> None:
    analysis = make_analysis(
        [
            Query(COUNT),
            Query(MEAN, "age", low=0.0, high=120.0),
            Query(HISTOGRAM, "x", low=0.0, high=1.0, bins=4),
        ],
        0.9,
    )
    plan = analysis.releases()
    assert [[(r.name, r.length, r.sensitivity) for r in q] for q in plan] == [
        [("rows", 1, 1)],
        [("count", 1, 1), ("sum", 1, MEAN_UNITS // 2)],
        [("bins", 4, 1)],
    ]
    assert [r.epsilon for q in plan for r in q] == pytest.approx([0.3, 0.15, 0.15, 0.3])
    assert sum(r.epsilon for q in plan for r in q) == pytest.approx(0.9)  # basic composition
    assert plan[1][1].scale == pytest.approx(500 / 0.15)


def test_the_job_document_form_round_trips_and_refuses_unknown_fields() -> None:
    analysis = make_analysis(
        [Query(CROSSTAB, "sex", "cp", levels=(("F", "M"), ("a", "b"))), Query(COUNT)], 2.0
    )
    assert Analysis.from_json(analysis.to_json(), 2.0) == analysis
    forged = analysis.to_json().replace('"kind":"count"', '"kind":"count","rows":5')
    with pytest.raises(InvalidInput, match=r"unknown field\(s\) \['rows'\]"):
        Analysis.from_json(forged, 2.0)
    with pytest.raises(InvalidInput, match="malformed"):
        Analysis.from_json("[]", 2.0)


def test_exact_vectors_clip_to_public_bounds_and_leave_missing_cells_out() -> None:
    columns = {
        "age": np.array([10.0, 60.0, np.nan, 130.0, -5.0]),
        "sex": np.array(["F", "M", None, "M", "X"], dtype=object),
        "num": np.array([0.0, 1.0, 1.0, 2.0, 1.0]),
    }
    assert exact_vectors(Query(COUNT), columns, 5) == [[5]]
    mean = exact_vectors(Query(MEAN, "age", low=0.0, high=100.0), columns, 5)
    # clipped to 10, 60, 100, 0; in thousandths of the range, from its midpoint 50
    assert mean == [[4], [-400 + 100 + 500 - 500]]
    hist = exact_vectors(Query(HISTOGRAM, "age", low=0.0, high=100.0, bins=4), columns, 5)
    assert hist == [[2, 0, 1, 1]]
    cross = exact_vectors(
        Query(CROSSTAB, "sex", "num", levels=(("F", "M"), ("0", "1"))), columns, 5
    )
    assert cross == [[1, 0, 0, 1]]  # F/0, F/1, M/0, M/1; 'X', None and num=2 left out
    with pytest.raises(InvalidInput, match="no column 'weight'"):
        exact_vectors(Query(MEAN, "weight", low=0.0, high=1.0), columns, 5)


def _discrete_laplace(rng: np.random.Generator, scale: float, size: tuple[int, ...]) -> np.ndarray:
    p = 1 - math.exp(-1 / scale)
    return rng.geometric(p, size) - rng.geometric(p, size)


@pytest.mark.parametrize("scale", [0.5, 3.0, 40.0])
def test_the_half_width_of_one_draw_is_the_smallest_that_covers_the_level(scale: float) -> None:
    alpha = math.exp(-1 / scale)
    w = noise_halfwidth(scale, 1)

    def inside(width: int) -> float:
        return 1 - 2 * alpha ** (width + 1) / (1 + alpha)

    assert inside(w) >= 0.95
    assert w == 0 or inside(w - 1) < 0.95


def test_the_half_width_of_several_sites_noise_matches_its_distribution() -> None:
    rng = np.random.default_rng(7)
    draws = _discrete_laplace(rng, 4.0, (200_000, 3)).sum(axis=1)
    w = noise_halfwidth(4.0, 3)
    covered = np.mean(np.abs(draws) <= w)
    below = np.mean(np.abs(draws) <= w - 1)
    error = 3 * math.sqrt(0.95 * 0.05 / draws.size)  # three standard errors of a proportion
    assert covered >= 0.95 - error
    assert below < 0.95 + error


def test_beyond_the_exact_scale_the_half_width_is_within_one_percent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kumiai.domain import analysis_results

    scaled = noise_halfwidth(3000.0, 3)
    monkeypatch.setattr(analysis_results, "_EXACT_SCALE", 1e9)  # compute it directly
    noise_halfwidth.cache_clear()
    try:
        assert scaled == pytest.approx(noise_halfwidth(3000.0, 3), rel=0.01)
    finally:
        noise_halfwidth.cache_clear()


@pytest.mark.parametrize("copies", [1, 3])
def test_intervals_cover_the_true_values_at_the_stated_rate(copies: int) -> None:
    """Over many noisy releases of the same site totals, each interval holds the truth at
    least 95% of the time (less three standard errors of the estimate)."""
    rng = np.random.default_rng(2026)
    query_count, query_mean = Query(COUNT), Query(MEAN, "age", low=0.0, high=120.0)
    analysis = make_analysis([query_count, query_mean], 0.5)
    plan = analysis.releases()
    ages = rng.uniform(20, 90, 400)
    true_mean = float(np.mean(ages))
    exact = exact_vectors(query_mean, {"age": ages}, 400)
    runs, hit_count, hit_mean = 2000, 0, 0
    for _ in range(runs):

        def noisy(value: int, scale: float) -> int:
            return value + int(_discrete_laplace(rng, scale, (copies,)).sum())

        rows = figures_for(query_count, plan[0], [[noisy(400, plan[0][0].scale)]], copies, 0)
        figure = rows.figures[0]
        hit_count += figure.low <= 400 <= figure.high
        sums = [[noisy(exact[0][0], plan[1][0].scale)], [noisy(exact[1][0], plan[1][1].scale)]]
        mean = figures_for(query_mean, plan[1], sums, copies, 0).figures[0]
        hit_mean += mean.low <= true_mean <= mean.high
    floor = 0.95 - 3 * math.sqrt(0.95 * 0.05 / runs)
    assert hit_count / runs >= floor
    assert hit_mean / runs >= floor


def test_counts_below_the_minimum_cohort_are_suppressed_after_the_noise() -> None:
    query = Query(CROSSTAB, "sex", "num", levels=(("F", "M"), ("0", "1")))
    plan = make_analysis([query], 1.0).releases()[0]
    result = figures_for(query, plan, [[40, 12, 29, 30]], 1, 30)
    values = [(f.label, f.value, f.note) for f in result.figures]
    assert values == [
        ("sex=F, num=0", 40.0, ""),
        ("sex=F, num=1", None, "suppressed: below the minimum cohort 30"),
        ("sex=M, num=0", None, "suppressed: below the minimum cohort 30"),
        ("sex=M, num=1", 30.0, ""),
    ]
    w = noise_halfwidth(1.0, 1)
    assert (result.figures[0].low, result.figures[0].high) == (40.0 - w, 40.0 + w)


def test_quantiles_come_from_the_histogram_with_an_interval_in_whole_bins() -> None:
    query = Query(QUANTILES, "age", low=0.0, high=100.0, bins=10, probabilities=(0.5,))
    plan = make_analysis([query], 1.0).releases()[0]
    counts = [0, 0, 100, 100, 100, 100, 0, 0, 0, 0]  # uniform over 20..60: the median is 40
    [median] = figures_for(query, plan, [counts], 1, 0).figures
    assert median.value == pytest.approx(40.0)
    assert median.low is not None and median.high is not None
    assert median.low <= 40.0 <= median.high
    assert median.low % 10 == 0 and median.high % 10 == 0


def test_pairwise_masks_hide_each_vector_and_cancel_in_the_sum() -> None:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    keys = {name: X25519PrivateKey.generate() for name in ("a", "b", "c")}
    peers = {name: public_key_b64(k) for name, k in keys.items()}
    vectors = {"a": [5, -3, 0], "b": [10, 7, -20], "c": [0, 0, 1]}
    masked = {n: mask(v, n, keys[n], peers, "job-1") for n, v in vectors.items()}
    assert unmask(list(masked.values())) == [15, 4, -19]
    for name, vector in vectors.items():
        assert masked[name] != [v % MODULUS for v in vector]
    # a missing participant leaves the masks in: the sum is noise, not a smaller sum
    assert unmask([masked["a"], masked["b"]]) != [15, 4, -20]
    # masks are bound to the job: another job's masks do not cancel these
    other = mask(vectors["c"], "c", keys["c"], peers, "job-2")
    assert unmask([masked["a"], masked["b"], other]) != [15, 4, -19]
