"""The royalty rule: exact yen, association first, shares by member, leftovers by a stated rule.

Property tests run the split on many seeded random cases (no hypothesis here): the payouts
sum to the yen, are never negative, are deterministic and permutation-invariant, and a
member with no positive share gets nothing.
"""

import random
from datetime import date
from fractions import Fraction

import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.domain.licence import (
    MAX_REVENUE_YEN,
    check_revenue_report,
    licence_terms,
    period_bounds,
)
from kumiai.domain.royalties import (
    DEFAULT_ASSOCIATION_SHARE,
    association_share,
    distribute,
    member_weights,
    share_value,
    split,
)

OWNERS = {"a-heart": "aoi", "a-lungs": "aoi", "k-heart": "kita", "m-heart": "minami"}


def test_the_worked_example_in_the_docs() -> None:
    shares = {"a-heart": 0.05, "a-lungs": 0.01, "k-heart": 0.03, "m-heart": -0.02}
    result = distribute(12_345_678, 500, Fraction(1, 5), shares, OWNERS)
    assert result.royalty_yen == 617_283  # floor(12,345,678 × 500 / 10000)
    assert result.association_yen == 123_456  # floor(617,283 / 5)
    # 493,827 by 0.06 : 0.03 : 0 -> 329,218 rem 0.0 and 164,609 rem 0.0
    assert result.payouts == {"aoi": 329_218, "kita": 164_609, "minami": 0}
    assert sum(result.payouts.values()) + result.association_yen == result.royalty_yen


def test_leftover_yen_go_to_the_largest_remainders_then_by_name() -> None:
    # 10 yen in thirds: 3.33 each; one leftover yen, three equal remainders: "a" wins
    assert split(10, {"c": Fraction(1), "a": Fraction(1), "b": Fraction(1)}) == {
        "a": 4,
        "b": 3,
        "c": 3,
    }
    # 10 by 1 : 2 -> 3.33 and 6.67: the larger remainder (b, 0.67) takes the leftover yen
    assert split(10, {"a": Fraction(1), "b": Fraction(2)}) == {"a": 3, "b": 7}


def test_shares_are_the_exact_decimals_written() -> None:
    assert share_value(0.1, "x") == Fraction(1, 10)  # not the binary 0.1000000000000000055…
    assert share_value(3, "x") == 3
    assert member_weights({"a-heart": 0.1, "a-lungs": 0.2}, OWNERS) == {"aoi": Fraction(3, 10)}
    for bad in (True, float("nan"), float("inf"), "0.1", None):
        with pytest.raises(InvalidInput, match="not a finite number"):
            share_value(bad, "x")


def test_a_member_with_a_negative_sum_weighs_zero_but_its_positive_dataset_counts() -> None:
    weights = member_weights({"a-heart": 0.3, "a-lungs": -0.1, "m-heart": -0.2}, OWNERS)
    assert weights == {"aoi": Fraction(1, 5), "minami": 0}


def test_a_share_of_an_unregistered_dataset_is_refused() -> None:
    with pytest.raises(InvalidInput, match="'ghost' has a share but no registered owner"):
        member_weights({"ghost": 0.5}, OWNERS)


def test_nobody_with_a_positive_share_leaves_the_royalty_with_the_association() -> None:
    result = distribute(1_000_000, 1000, Fraction(1, 5), {"k-heart": -0.1}, OWNERS)
    assert (result.royalty_yen, result.association_yen, result.payouts) == (
        100_000,
        100_000,
        {"kita": 0},
    )


def test_zero_revenue_pays_nothing() -> None:
    result = distribute(0, 500, DEFAULT_ASSOCIATION_SHARE, {"k-heart": 0.2}, OWNERS)
    assert (result.royalty_yen, result.association_yen, result.payouts) == (0, 0, {"kita": 0})


@pytest.mark.parametrize(
    ("revenue", "rate", "message"),
    [
        (-1, 500, "whole yen from 0"),
        (1.5, 500, "whole yen from 0"),
        (True, 500, "whole yen from 0"),
        (100, 0, "outside 1..10000"),
        (100, 10_001, "outside 1..10000"),
    ],
)
def test_bad_amounts_and_rates_are_refused(revenue: object, rate: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        distribute(revenue, rate, Fraction(1, 5), {"k-heart": 0.1}, OWNERS)  # type: ignore[arg-type]


def test_split_refuses_negative_amounts_and_weights() -> None:
    with pytest.raises(InvalidInput, match="whole yen from 0"):
        split(-5, {"a": Fraction(1)})
    with pytest.raises(InvalidInput, match="negative"):
        split(5, {"a": Fraction(-1)})


def _random_case(rng: random.Random) -> tuple[int, dict[str, Fraction]]:
    names = rng.sample([f"m{i}" for i in range(30)], rng.randint(1, 12))
    weights = {
        n: Fraction(0) if rng.random() < 0.25 else Fraction(rng.randint(1, 10**6), 10**6)
        for n in names
    }
    return rng.randint(0, 10**12), weights


@pytest.mark.parametrize("seed", range(300))
def test_split_properties(seed: int) -> None:
    rng = random.Random(seed)
    amount, weights = _random_case(rng)
    payouts = split(amount, weights)
    positive = sum(weights.values()) > 0
    assert sum(payouts.values()) == (amount if positive else 0)  # sums to the yen
    assert all(type(y) is int and y >= 0 for y in payouts.values())  # whole, never negative
    assert all(payouts[m] == 0 for m, w in weights.items() if w == 0)  # zero share, zero yen
    assert split(amount, dict(weights)) == payouts  # deterministic
    shuffled = list(weights.items())
    rng.shuffle(shuffled)
    assert split(amount, dict(shuffled)) == payouts  # permutation-invariant
    total = sum(weights.values())
    for member, w in weights.items():  # each within one yen of its exact share
        if positive:
            assert abs(payouts[member] - amount * w / total) < 1


@pytest.mark.parametrize("seed", range(100))
def test_distribute_properties(seed: int) -> None:
    rng = random.Random(seed)
    owners = {f"d{i}": f"m{rng.randint(0, 5)}" for i in range(8)}
    shares = {d: rng.uniform(-0.2, 0.5) for d in rng.sample(sorted(owners), rng.randint(1, 8))}
    revenue = rng.randint(0, MAX_REVENUE_YEN)
    share = Fraction(rng.randint(0, 100), 100)
    result = distribute(revenue, rng.randint(1, 10_000), share, shares, owners)
    assert result.royalty_yen <= revenue
    assert result.association_yen + sum(result.payouts.values()) == result.royalty_yen
    assert all(y >= 0 for y in result.payouts.values())
    assert result.royalty_yen < 2**53  # the JSON integers stay exact in JavaScript


TERMS = {
    "field_of_use": "cardiology triage",
    "territory": "JP",
    "starts": "2027-01-01",
    "ends": "2027-12-31",
    "royalty_rate_bp": 500,
    "restrictions": ["no clinical decision without regulatory approval"],
}


def test_terms_round_trip_through_their_document() -> None:
    terms = licence_terms(**TERMS)
    assert terms.document() == TERMS
    assert licence_terms(**terms.document()) == terms


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"royalty_rate_bp": 0}, "outside 1..10000"),
        ({"royalty_rate_bp": 10_001}, "outside 1..10000"),
        ({"royalty_rate_bp": 5.0}, "outside 1..10000"),
        ({"ends": "2026-12-31"}, "ends .2026-12-31. before it starts"),
        ({"starts": "2027-02-30"}, "is not a date"),
        ({"field_of_use": "  "}, "field of use is empty"),
        ({"territory": ""}, "territory is empty"),
        ({"restrictions": [""]}, "restriction is empty"),
    ],
)
def test_bad_terms_are_refused(change: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        licence_terms(**{**TERMS, **change})


def test_periods() -> None:
    assert period_bounds("2027-Q1") == (date(2027, 1, 1), date(2027, 3, 31))
    assert period_bounds("2027-Q4") == (date(2027, 10, 1), date(2027, 12, 31))
    assert period_bounds("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    for bad in ("2027-Q5", "2027-13", "2027", "Q1-2027", 2027):
        with pytest.raises(InvalidInput, match="not a quarter or a month"):
            period_bounds(bad)


def _report(**changes: object) -> None:
    values: dict = {
        "licensee": "kita-spin",
        "reporter": "kita-spin",
        "period": "2027-Q1",
        "revenue_yen": 1_000,
        "reported_periods": {"2027-Q2"},
        **changes,
    }
    check_revenue_report(licence_terms(**TERMS), **values)


def test_a_revenue_report() -> None:
    _report()
    _report(period="2027-12", revenue_yen=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reporter": "aoi"}, "only the licensee 'kita-spin' reports"),
        ({"period": "2028-Q1"}, "outside the licence's term"),
        ({"period": "2026-12"}, "outside the licence's term"),
        ({"period": "2027-Q2"}, "already reported"),
        ({"revenue_yen": -1}, "whole yen from 0"),
        ({"revenue_yen": 10.0}, "whole yen from 0"),
        ({"revenue_yen": MAX_REVENUE_YEN + 1}, "whole yen from 0"),
    ],
)
def test_bad_revenue_reports_are_refused(change: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        _report(**change)


def test_the_charter_may_state_the_association_share() -> None:
    from kumiai.domain.charter import Charter, amended, founding_charter
    from kumiai.domain.charter import Fraction as CharterFraction

    plain = founding_charter(("aoi", "kita"))
    assert "royalties" not in plain.document()  # older charters keep their digest
    assert association_share(plain) == DEFAULT_ASSOCIATION_SHARE == Fraction(1, 5)
    set_share = founding_charter(("aoi", "kita"), association_share=CharterFraction(3, 10))
    assert set_share.document()["royalties"] == {"association_share": "3/10"}
    assert association_share(Charter.from_document(set_share.document())) == Fraction(3, 10)
    nothing = amended(set_share, association_share=CharterFraction(0, 1))
    assert association_share(nothing) == 0 and nothing.version == 2
    for bad in ("1/0", "2/1", "-1/2", "0.2", 0.2):
        doc = {**plain.document(), "royalties": {"association_share": bad}}
        with pytest.raises(InvalidInput, match="association share"):
            Charter.from_document(doc)
    with pytest.raises(InvalidInput, match="exactly association_share"):
        Charter.from_document({**plain.document(), "royalties": {"share": "1/5"}})


def test_a_spinout_motion_payload() -> None:
    from kumiai.domain.spinout import spinout_payload

    assert spinout_payload("kokoro-ai", ["nishi", "aoi"], theme="medical") == {
        "spinout": "kokoro-ai",
        "founders": ["aoi", "nishi"],
        "theme": "medical",
        "project": None,
    }
    bad = [
        (("Kokoro", ["aoi"], "medical", None), "spin-out name 'Kokoro' is not valid"),
        (("kokoro", [], "medical", None), "needs founders"),
        (("kokoro", ["aoi", "aoi"], "medical", None), "named twice"),
        (("kokoro", ["kokoro"], "medical", None), "cannot found itself"),
        (("kokoro", ["aoi"], None, None), "a theme or a project"),
        (("kokoro", ["aoi"], "medical", "heart"), "a theme or a project"),
        (("kokoro", "aoi", "medical", None), "needs founders"),
    ]
    for args, message in bad:
        with pytest.raises(InvalidInput, match=message):
            spinout_payload(*args)


def test_the_replay_flags_what_no_vote_or_report_backs() -> None:
    """Pure: entries by hand, no charter or motion behind them (the full replay is played
    against forged exports in tests/services/test_licences.py)."""
    from datetime import UTC, datetime

    from kumiai.domain.ledger import Entry
    from kumiai.domain.royalty_audit import RoyaltyReplay

    now = datetime(2027, 4, 1, tzinfo=UTC)
    replay = RoyaltyReplay()
    granted = {"licence": "licence-1", "licensee": "k", "model": "m", "terms": TERMS,
               "motion": "motion-1"}  # fmt: skip
    replay.read(Entry(0, now, "coordinator", "licence.granted", granted))
    report = {"licence": "licence-1", "period": "2027-Q1", "revenue_yen": 100}
    replay.read(Entry(1, now, "k", "revenue.reported", report))
    distributed = {**report, "royalty_yen": 5, "association_yen": 1, "payouts": {"a": 4},
                   "contributions_seq": 0, "rule": "x"}  # fmt: skip
    replay.read(Entry(2, now, "coordinator", "royalties.distributed", distributed))
    found = [(m.seq, m.what) for m in replay.finish()]
    assert found == [(0, "licence"), (1, "report"), (2, "distribution")]
    assert "not what a passed grant-licence motion voted" in str(replay.mismatches[0])
    assert replay.checked == 1


def test_the_replay_survives_fields_of_the_wrong_json_type() -> None:
    from datetime import UTC, datetime

    from kumiai.domain.ledger import Entry
    from kumiai.domain.royalty_audit import RoyaltyReplay

    now = datetime(2027, 4, 1, tzinfo=UTC)
    replay = RoyaltyReplay()
    odd = {"licence": ["l"], "period": {"p": 1}, "motion": [1], "revenue_yen": "9"}
    for seq, kind in enumerate(("licence.granted", "revenue.reported", "royalties.distributed")):
        replay.read(Entry(seq, now, "coordinator", kind, odd))
    assert [m.what for m in replay.finish()] == ["licence", "report", "distribution"]
