"""Column types, target expressions, and the rule that sites must share one schema."""

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from kumiai.domain.errors import InvalidInput, SchemaMismatch


class ColumnType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


Schema = dict[str, ColumnType]

# The largest magnitude a numeric cell may have. Preprocessing sums every value's square
# across all sites (domain.preprocessing); at |x| <= 1e100 a square is at most 1e200, so no
# real number of rows can overflow a float64 (about 1.8e308), and no measured quantity
# comes near it. `inf`, `-inf` and values such as `1e308` are refused at registration.
MAX_MAGNITUDE = 1e100
NOT_A_NUMBER = "is not a number"


def read_number(text: str) -> tuple[float | None, str]:
    """A numeric cell's value, or None and why it cannot be used (empty when it is fine)."""
    try:
        value = float(text)
    except ValueError:
        return None, NOT_A_NUMBER
    if not math.isfinite(value):
        return None, "is not a finite number"
    if abs(value) > MAX_MAGNITUDE:
        return None, f"is beyond ±{MAX_MAGNITUDE:g}, the largest magnitude kumiai accepts"
    return value, ""


def parse_column_types(text: str | None) -> dict[str, ColumnType]:
    """Parse `col=numeric,other=categorical` as given on the command line."""
    result: dict[str, ColumnType] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, kind = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            result[name.strip()] = ColumnType(kind.strip().lower())
        except ValueError:
            raise InvalidInput(
                f"column type {item.strip()!r} is not of the form COLUMN=numeric or "
                "COLUMN=categorical"
            ) from None
    return result


def parse_missing_markers(text: str | None) -> dict[str, tuple[str, ...]]:
    """Parse `chol=0,ca=?` : values that mean 'missing' in a given column (repeat for several)."""
    result: dict[str, tuple[str, ...]] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(
                f"missing-value marker {item.strip()!r} is not of the form COLUMN=VALUE "
                "(e.g. chol=0)"
            )
        result[name.strip()] = (*result.get(name.strip(), ()), value.strip())
    return result


_TARGET = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>.+?)\s*$")


@dataclass(frozen=True)
class TargetSpec:
    """A target column, optionally turned binary by a comparison such as `num>0`."""

    column: str
    op: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        return self.column if self.op is None else f"{self.column}{self.op}{self.value}"

    @property
    def is_binary_rule(self) -> bool:
        return self.op is not None


def parse_target(text: str) -> TargetSpec:
    """`num` (classes as found) or `num>0`, `Type!=L` (binary: '1' where the rule holds)."""
    if not text or not text.strip():
        raise InvalidInput("no target given; name the column to predict, e.g. --target num>0")
    match = _TARGET.match(text)
    if match is None:
        return TargetSpec(text.strip())
    op, value = match["op"], match["value"]
    if op in {">", ">=", "<", "<="}:
        try:
            float(value)
        except ValueError:
            raise InvalidInput(
                f"target rule {text!r} compares with {value!r}, which is not a number; "
                "use == or != to compare with text"
            ) from None
    return TargetSpec(match["col"].strip(), op, value)


def compare_schemas(site_schemas: dict[str, Schema]) -> Schema:
    """Return the common schema, or list per site the columns that differ."""
    if not site_schemas:
        raise InvalidInput("no sites to compare; a job needs at least one dataset")
    all_columns = sorted({c for s in site_schemas.values() for c in s})
    problems: list[str] = []
    for site, schema in sorted(site_schemas.items()):
        missing = [c for c in all_columns if c not in schema]
        if missing:
            problems.append(f"{site} lacks {', '.join(missing)}")
    for column in all_columns:
        types = {site: s[column] for site, s in site_schemas.items() if column in s}
        if len(set(types.values())) > 1:
            listing = ", ".join(f"{site}={t.value}" for site, t in sorted(types.items()))
            problems.append(f"column {column} has different types ({listing})")
    if problems:
        raise SchemaMismatch(
            "sites' columns differ: "
            + "; ".join(problems)
            + ". Register every site with the same columns and types (use --ignore to drop "
            "extra columns, --types to fix a type)"
        )
    first = next(iter(site_schemas.values()))
    return {c: first[c] for c in all_columns}
