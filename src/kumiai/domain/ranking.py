"""How a recommender is scored, per user, so that only sums leave a device.

For each user: the squared error of the predicted ratings of their test items (RMSE is the
square root of the summed errors over the summed counts), and the top-10 ranking of every
item they have not rated in training. A test item rated at least `RELEVANT` (4 of 5 stars)
is relevant; NDCG@10 is the discounted gain of the relevant items in the top 10 over the
best possible; hit rate@10 is whether any relevant item is in the top 10. Users with no
relevant test item have no ranking figures (they are counted apart), as is usual.

Example: a user whose only relevant test item ranks 3rd has NDCG@10 = 1/log2(4) = 0.5 and
a hit.
"""

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

RELEVANT = 4.0
TOP_K = 10
RATING_RANGE = (0.5, 5.0)


def score_user(
    predicted: "NDArray[np.float64]",
    train_items: "NDArray[np.int64]",
    test_items: "NDArray[np.int64]",
    test_ratings: "NDArray[np.float64]",
    *,
    k: int = TOP_K,
) -> dict[str, float]:
    """One user's sums: squared_error, ratings, ndcg, hits, ranked_users."""
    import numpy as np

    low, high = RATING_RANGE
    error = np.clip(predicted[test_items], low, high) - test_ratings
    sums = {
        "squared_error": float(np.sum(error * error)),
        "ratings": float(len(test_items)),
        "ndcg": 0.0,
        "hits": 0.0,
        "ranked_users": 0.0,
    }
    relevant = set(test_items[test_ratings >= RELEVANT].tolist())
    if not relevant:
        return sums
    candidates = np.ones(len(predicted), dtype=bool)
    candidates[train_items] = False
    pool = np.flatnonzero(candidates)
    top = pool[np.argsort(-predicted[pool], kind="stable")[:k]]
    gains = [1.0 / math.log2(rank + 2) for rank, item in enumerate(top) if int(item) in relevant]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    sums.update(ndcg=sum(gains) / ideal, hits=1.0 if gains else 0.0, ranked_users=1.0)
    return sums


def combine(per_user: list[dict[str, float]]) -> dict[str, float]:
    """RMSE, NDCG@10 and hit rate@10 from the users' sums."""
    total = {name: sum(s[name] for s in per_user) for name in per_user[0]} if per_user else {}
    ratings, ranked = total.get("ratings", 0.0), total.get("ranked_users", 0.0)
    return {
        "rmse": math.sqrt(total["squared_error"] / ratings) if ratings else float("nan"),
        "ndcg_at_10": total["ndcg"] / ranked if ranked else float("nan"),
        "hit_rate_at_10": total["hits"] / ranked if ranked else float("nan"),
    }


def add_sums(total: dict[str, float], one: dict[str, float]) -> dict[str, float]:
    """Running sums: the coordinator keeps these, never a user's own figures."""
    for name, value in one.items():
        total[name] = total.get(name, 0.0) + value
    return total


def from_sums(total: dict[str, float]) -> dict[str, float]:
    return combine([total]) if total else combine([])
