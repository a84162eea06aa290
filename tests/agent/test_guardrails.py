"""The user's policy over suggestions: never broken, over random policies, and explained."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kumiai.domain.cross_device import CrossDeviceSettings
from kumiai.domain.errors import InvalidInput
from kumiai.domain.guardrails import (
    Candidate,
    Policy,
    genres_that_drove,
    guard,
    quiet_hours_from,
    violations,
)
from kumiai.services.agent import set_policy, suggest, train_agent, user_device

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]
NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

candidates = st.lists(
    st.builds(
        Candidate,
        item=st.integers(0, 500),
        score=st.floats(0.0, 5.5, allow_nan=False),
        genres=st.lists(st.sampled_from(GENRES), max_size=3, unique=True).map(tuple),
    ),
    max_size=40,
    unique_by=lambda c: c.item,
).map(lambda cs: sorted(cs, key=lambda c: -c.score))

policies = st.builds(
    Policy,
    threshold=st.floats(0.0, 5.5, allow_nan=False),
    blocked_genres=st.frozensets(st.sampled_from(GENRES)),
    quiet_hours=st.frozensets(st.integers(0, 23)),
    max_per_day=st.integers(0, 10),
)


@settings(max_examples=300, deadline=None)
@given(
    ranked=candidates,
    policy=policies,
    hour=st.integers(0, 23),
    already=st.integers(0, 12),
)
def test_no_suggestion_ever_violates_a_random_policy(
    ranked: list[Candidate], policy: Policy, hour: int, already: int
) -> None:
    now = NOON.replace(hour=hour)
    result = guard(ranked, policy, now=now, already_today=already)
    assert violations(result.suggestions, policy, now=now, already_today=already) == []
    # and it withholds nothing it could give: either full, or it says why not
    assert result.suggestions or result.reason
    assert [c.item for c in result.suggestions] == [
        c.item for c in ranked if c in result.suggestions
    ]


def test_a_policy_that_blocks_everything_gives_none_with_the_reason() -> None:
    ranked = [Candidate(1, 4.8, ("Horror",)), Candidate(2, 4.5, ("Horror", "Comedy"))]
    policy = Policy(blocked_genres=frozenset({"Horror"}))
    result = guard(ranked, policy, now=NOON, already_today=0)
    assert result.suggestions == []
    assert result.reason == "every item above your threshold is in a blocked genre (Horror)"


def test_the_threshold_the_daily_limit_and_quiet_hours_each_say_why() -> None:
    ranked = [Candidate(1, 4.2, ("Drama",)), Candidate(2, 3.9, ("Drama",))]
    assert guard(ranked, Policy(threshold=4.5), now=NOON, already_today=0).reason == (
        "no item is predicted at or above your threshold 4.5"
    )
    assert guard(ranked, Policy(max_per_day=2), now=NOON, already_today=2).reason == (
        "today's 2 suggestion(s) were already made; ask tomorrow"
    )
    quiet = guard(ranked, Policy(quiet_hours=frozenset({12})), now=NOON, already_today=0)
    assert quiet.suggestions == [] and "12:00 UTC is one of your quiet hours" in str(quiet.reason)
    assert [c.item for c in guard(ranked, Policy(), now=NOON, already_today=0).suggestions] == [1]


def test_quiet_hours_are_the_hours_the_user_never_rated_in() -> None:
    evening = [
        int(datetime(2026, 1, d, h, 30, tzinfo=UTC).timestamp()) for d in (1, 2) for h in (19, 22)
    ]
    assert quiet_hours_from(evening) == frozenset(range(24)) - {19, 22}
    assert quiet_hours_from([]) == frozenset()


def test_the_genres_that_drove_a_suggestion_are_the_ones_the_user_likes() -> None:
    own = [(("Comedy",), 4.5), (("Comedy", "Drama"), 5.0), (("Drama",), 2.0), (("Horror",), 1.0)]
    assert genres_that_drove(("Drama", "Comedy"), own) == ["Comedy"]
    assert genres_that_drove(("Horror",), own) == ["Horror"]  # none liked: the most rated


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(InvalidInput, match="--max-per-day must be 0 or more"):
        Policy(max_per_day=-1)


def test_suggest_on_the_device_keeps_the_policy_and_explains(run: Path) -> None:
    train_agent(
        run, CrossDeviceSettings(rounds=20, fraction=1.0, factors=2, l2_user=1.0, l2_item=1.0)
    )
    with pytest.raises(InvalidInput, match="genre\\(s\\) Western are not in the catalogue"):
        set_policy(run, "user3", threshold=0.5, blocked_genres=["Western"], max_per_day=2)
    set_policy(run, "user3", threshold=0.5, blocked_genres=["Horror"], max_per_day=2)
    quiet = user_device(run, "user3").policy().quiet_hours
    assert quiet  # the synthetic user rates at a few hours of the day only
    asleep = suggest(run, "user3", now=NOON.replace(day=28, hour=min(quiet)))
    assert asleep["suggestions"] == [] and "quiet hours" in asleep["reason"]
    at = NOON.replace(hour=min(set(range(24)) - quiet))
    first = suggest(run, "user3", now=at)
    assert len(first["suggestions"]) == 2
    for s in first["suggestions"]:
        assert "Horror" not in s["genres"] and s["score"] >= 0.5
        assert 1 <= len(s["because_you_liked"]) <= 3 and s["genres_that_drove_it"]
    again = suggest(run, "user3", now=at)
    assert again["suggestions"] == [] and "already made" in again["reason"]
