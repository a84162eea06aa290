"""The minimum rows a site needs, checked against the split every node actually makes."""

from collections import Counter

import numpy as np
import pytest

from kumiai.domain.errors import InvalidInput
from kumiai.domain.schema import ColumnType
from kumiai.domain.split import (
    MIN_LABELLED_ROWS,
    check_splittable,
    minimum_rows,
    split_sizes,
)
from kumiai.node.worker import split_rows


def _split(counts: dict[str, int], test_fraction: float = 0.25) -> None:
    labels = np.array([label for label, n in counts.items() for _ in range(n)], dtype=object)
    columns = {"age": np.arange(len(labels), dtype=np.float64)}
    split_rows("d", {"age": ColumnType.NUMERIC}, columns, labels, 0, test_fraction)


@pytest.mark.parametrize(
    "counts",
    [
        {"0": 5, "1": 5},
        {"0": 9, "1": 1},
        {"a": 3, "b": 3, "c": 3, "d": 2},
        {str(k): 2 for k in range(6)},
    ],
)
@pytest.mark.parametrize("test_fraction", [0.1, 0.25, 0.5])
def test_every_site_at_the_minimum_splits(counts: dict[str, int], test_fraction: float) -> None:
    least = minimum_rows(counts, test_fraction)
    first = next(iter(counts))  # grow the first class to exactly the minimum: same classes
    counts = {**counts, first: counts[first] + max(0, least - sum(counts.values()))}
    assert minimum_rows(counts, test_fraction) == least
    _split(counts, test_fraction)  # raises if the minimum were too small
    check_splittable("site", counts, test_fraction)


def test_below_the_stratified_minimum_the_split_itself_fails() -> None:
    counts = {str(k): 2 for k in range(6)}  # 12 rows: a test share of 3 cannot hold 6 classes
    assert minimum_rows(counts, 0.25) == 21
    with pytest.raises(ValueError, match="number of classes"):
        _split(counts)
    with pytest.raises(InvalidInput) as error:
        check_splittable("data file x.csv", counts)
    message = str(error.value)
    assert "x.csv has 12 row(s) with a target in 6 classes" in message
    assert "at least 21" in message and "every class" in message


def test_a_tiny_site_is_refused_with_the_count_and_the_minimum() -> None:
    with pytest.raises(InvalidInput, match=rf"has 4 row\(s\) .* at least {MIN_LABELLED_ROWS}"):
        check_splittable("data file x.csv", Counter({"0": 2, "1": 2}))
    with pytest.raises(InvalidInput, match=r"has 0 row\(s\)"):
        check_splittable("data file x.csv", Counter())
    check_splittable("data file x.csv", Counter({"0": 9, "1": 1}))


def test_split_sizes_round_the_test_share_up_like_scikit_learn() -> None:
    assert split_sizes(10, 0.25) == (7, 3)
    assert split_sizes(21, 0.25) == (15, 6)
    assert split_sizes(11, 0.1) == (9, 2)
