"""A small synthetic population: a few users with tastes drawn from two item factors."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.domain.ratings import RatingTable, temporal_split
from kumiai.services.agent import enrol_devices

GENRES = ("Comedy", "Drama", "Horror", "Romance")


def synthetic_table(
    users: int = 24, items: int = 20, per_user: int = 12, seed: int = 0
) -> RatingTable:
    rng = np.random.default_rng(seed)
    taste = rng.normal(0, 1, (users, 2))
    kind = rng.normal(0, 1, (items, 2))
    rows_u, rows_i, rows_r, rows_t = [], [], [], []
    for u in range(users):
        chosen = rng.choice(items, size=per_user, replace=False)
        for t, i in enumerate(chosen):
            score = 3.5 + taste[u] @ kind[i] + rng.normal(0, 0.3)
            rows_u.append(u)
            rows_i.append(i)
            rows_r.append(float(np.clip(np.round(score * 2) / 2, 0.5, 5.0)))
            rows_t.append(1_700_000_000 + 3600 * (7 * t + u % 5))
    return RatingTable(
        user=np.array(rows_u, dtype=np.int64),
        item=np.array(rows_i, dtype=np.int64),
        rating=np.array(rows_r),
        time=np.array(rows_t, dtype=np.int64),
        user_ids=tuple(f"user{u}" for u in range(users)),
        item_ids=tuple(f"item{i}" for i in range(items)),
        item_genres=tuple(
            tuple(dict.fromkeys((GENRES[i % 4], GENRES[(i // 4) % 4]))) for i in range(items)
        ),
        item_titles=tuple(f"Film {i}" for i in range(items)),
        source="synthetic",
    )


@pytest.fixture
def table() -> RatingTable:
    return synthetic_table()


def enrol(folder: Path, table: RatingTable, epsilon_cap: float | None) -> Path:
    enrol_devices(
        folder,
        table,
        temporal_split(table),
        project="agent",
        purpose="film suggestions",
        epsilon_cap=epsilon_cap,
        max_rounds=100,
    )
    return folder


@pytest.fixture
def run(tmp_path: Path, table: RatingTable) -> Path:
    """Users who consented to training without DP."""
    return enrol(tmp_path / "run", table, None)


@pytest.fixture
def private_run(tmp_path: Path, table: RatingTable) -> Path:
    """Users who consented to user-level DP up to ε = 10."""
    return enrol(tmp_path / "private", table, 10.0)
