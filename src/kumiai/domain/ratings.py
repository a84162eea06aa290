"""Preference data for the personal agent: one user is one device, split by time.

A ratings table is four parallel columns (user, item, rating, time), users and items
numbered 0..n-1, with each item's genres. Nothing here reads a file (`adapters.ratings`
does); these are the rules a table must meet and the split every yardstick shares.

The split is temporal per user: a user's ratings sorted by time (ties in file order), the
last 20% (rounded up, as `domain.split.split_sizes` rounds a site's test share) are that
user's test ratings. A model is scored on what the user rated *after* what it learnt from,
as a phone would be. For example, a user with 21 ratings trains on their first 16 and is
tested on their last 5. A user with fewer than `min_ratings` ratings is skipped and counted:
too few to learn from and still keep some for testing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.split import split_sizes

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_TEST_FRACTION = 0.2
DEFAULT_MIN_RATINGS = 5


@dataclass(frozen=True)
class RatingTable:
    """Every rating of every user; `user`/`item` index `user_ids`/`item_ids`."""

    user: NDArray[np.int64]
    item: NDArray[np.int64]
    rating: NDArray[np.float64]
    time: NDArray[np.int64]
    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    item_genres: tuple[tuple[str, ...], ...]
    item_titles: tuple[str, ...] = field(default=())
    source: str = ""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, user: str) -> int:
        try:
            return self.user_ids.index(str(user))
        except ValueError:
            raise InvalidInput(
                f"user {user!r} has no ratings in {self.source or 'this table'}; "
                f"users run from {self.user_ids[0]!r} to {self.user_ids[-1]!r}"
            ) from None


@dataclass(frozen=True)
class RatingSplit:
    """Row positions of each user's training and test ratings, and who was skipped."""

    train: NDArray[np.int64]
    test: NDArray[np.int64]
    skipped_users: int
    min_ratings: int


def check_table(table: RatingTable) -> RatingTable:
    """Refuse a table no model should learn from: non-finite ratings, repeated ratings."""
    if len(table.rating) == 0:
        raise DataError(f"{table.source or 'the ratings'} holds no ratings; give a file with rows")
    if not np.all(np.isfinite(table.rating)):
        row = int(np.flatnonzero(~np.isfinite(table.rating))[0])
        raise DataError(
            f"{table.source or 'the ratings'}: rating on data row {row + 1} is not a finite "
            "number; fix or remove that row"
        )
    order = np.lexsort((table.time, table.item, table.user))
    keys = np.stack([table.user[order], table.item[order], table.time[order]], axis=1)
    repeated = np.flatnonzero(np.all(keys[1:] == keys[:-1], axis=1))
    if len(repeated):
        first = int(order[repeated[0] + 1])
        raise DataError(
            f"{table.source or 'the ratings'}: {len(repeated)} duplicate (user, item, time) "
            f"row(s), the first on data row {first + 1} (user "
            f"{table.user_ids[table.user[first]]!r}, item {table.item_ids[table.item[first]]!r}); "
            "keep one rating per user, item and time"
        )
    return table


def temporal_split(
    table: RatingTable,
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    min_ratings: int = DEFAULT_MIN_RATINGS,
) -> RatingSplit:
    """Each user's last `test_fraction` of ratings (by time, rounded up) are their test set."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput(f"test fraction must be between 0 and 1, got {test_fraction!r}")
    if min_ratings < 2:
        raise InvalidInput(
            f"the minimum ratings per user must be at least 2 (one to train, one to test), "
            f"got {min_ratings}"
        )
    order = np.lexsort((np.arange(len(table.user)), table.time, table.user))
    users = table.user[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    train, test, skipped = [], [], 0
    for start, end in zip(starts, ends, strict=True):
        count = int(end - start)
        if count < min_ratings:
            skipped += 1
            continue
        n_train, _ = split_sizes(count, test_fraction)
        train.append(order[start : start + n_train])
        test.append(order[start + n_train : end])
    if not train:
        raise InvalidInput(
            f"no user of {table.source or 'the ratings'} has {min_ratings} or more ratings; "
            "lower --min-ratings or give more ratings per user"
        )
    skipped += table.n_users - len(starts)  # users named but with no rating
    return RatingSplit(
        np.concatenate(train).astype(np.int64),
        np.concatenate(test).astype(np.int64),
        skipped,
        min_ratings,
    )


def rows_by_user(users: NDArray[np.int64], n_users: int) -> list[NDArray[np.int64]]:
    """For each user, the positions in `users` that are theirs (a device's own rows)."""
    order = np.argsort(users, kind="stable")
    bounds = np.searchsorted(users[order], np.arange(n_users + 1))
    return [order[bounds[u] : bounds[u + 1]] for u in range(n_users)]


def resample_users(
    table: RatingTable, split: RatingSplit, users: int, *, seed: int = 0
) -> tuple[RatingTable, RatingSplit]:
    """A synthetic population of `users`, each a copy of a real user drawn at random.

    For scale tests only (labelled as such wherever reported): the ratings are the real
    users' own, so each synthetic device holds as much data as a real one does.
    """
    rng = np.random.default_rng(seed)
    real_train = rows_by_user(table.user[split.train], table.n_users)
    real_test = rows_by_user(table.user[split.test], table.n_users)
    eligible = [u for u in range(table.n_users) if len(real_train[u])]
    drawn = rng.choice(eligible, size=users, replace=True)
    parts: list[NDArray[np.int64]] = []
    owners: list[NDArray[np.int64]] = []
    n_train = 0
    for part in ("train", "test"):
        rows_of = real_train if part == "train" else real_test
        source = split.train if part == "train" else split.test
        for new, old in enumerate(drawn):
            rows = source[rows_of[old]]
            parts.append(rows)
            owners.append(np.full(len(rows), new, dtype=np.int64))
        if part == "train":
            n_train = sum(len(p) for p in parts)
    rows = np.concatenate(parts)
    synthetic = RatingTable(
        user=np.concatenate(owners),
        item=table.item[rows],
        rating=table.rating[rows],
        time=table.time[rows],
        user_ids=tuple(f"synthetic-{k}" for k in range(users)),
        item_ids=table.item_ids,
        item_genres=table.item_genres,
        item_titles=table.item_titles,
        source=f"{users} synthetic users resampled from {table.source}",
    )
    positions = np.arange(len(rows), dtype=np.int64)
    return synthetic, RatingSplit(positions[:n_train], positions[n_train:], 0, split.min_ratings)
