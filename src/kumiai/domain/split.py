"""How many labelled rows a site needs before its rows can be split into train and test.

Each node holds out `test_fraction` of its rows (node.worker.split_rows, scikit-learn's
train_test_split), stratified by class when every class has at least two rows. The split
fails when the test share rounds to no row, when nothing is left to train on, or, when
stratified, when either part is smaller than the number of classes. Registration refuses
such a site up front, with the count and the minimum, instead of a job failing later.

`SiteSplit` (a site's rows once split) and `site_seed` live here, pure, so a yardstick on
one machine can hold a node's split without importing the node. NumPy is named for the
type checker only: the node port imports this module on every command, reading included.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kumiai.domain.errors import InvalidInput
from kumiai.domain.schema import Schema
from kumiai.domain.training import TrainingSettings

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from kumiai.domain.preprocessing import Columns

# Fewer labelled rows than this cannot give a test share worth a score (at the default
# test fraction of 0.25, 10 rows leave 3 for testing and 7 for training).
MIN_LABELLED_ROWS = 10
DEFAULT_TEST_FRACTION: float = TrainingSettings.test_fraction


def split_sizes(rows: int, test_fraction: float) -> tuple[int, int]:
    """(train, test) rows, rounded as scikit-learn rounds them: the test share up."""
    test = math.ceil(test_fraction * rows)
    return rows - test, test


def stratifies(class_counts: Mapping[str, int]) -> bool:
    """split_rows stratifies only when every class has at least two rows."""
    return bool(class_counts) and min(class_counts.values()) >= 2


def minimum_rows(class_counts: Mapping[str, int], test_fraction: float) -> int:
    """The fewest labelled rows a site with these classes needs for its split."""
    classes = len(class_counts) if stratifies(class_counts) else 1
    rows = MIN_LABELLED_ROWS
    while min(split_sizes(rows, test_fraction)) < classes:
        rows += 1
    return rows


def check_splittable(
    where: str,
    class_counts: Mapping[str, int],
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> None:
    """Refuse a site too small to split; `where` names the file or dataset in the message."""
    rows = sum(class_counts.values())
    least = minimum_rows(class_counts, test_fraction)
    if rows >= least:
        return
    classes = f" in {len(class_counts)} classes" if len(class_counts) > 1 else ""
    why = (
        f"so that training and test rows each hold every class at a test fraction of "
        f"{test_fraction:g}"
        if least > MIN_LABELLED_ROWS
        else f"to split them into training and test rows (test fraction {test_fraction:g})"
    )
    raise InvalidInput(
        f"{where} has {rows} row(s) with a target{classes}; a site needs at least {least} "
        f"{why}. Add rows, or check that the target column and its missing values are "
        "what you meant"
    )


def site_seed(seed: int, dataset: str) -> int:
    """Each site gets its own, reproducible shuffle from the job's seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{dataset}".encode()).digest()[:4], "big")


@dataclass(frozen=True)
class SiteSplit:
    """One site's rows, split into train and test, typed but not yet encoded."""

    dataset: str
    schema: Schema
    train: Columns
    train_labels: NDArray[Any]
    test: Columns
    test_labels: NDArray[Any]
