"""Money: integer yen, funds by source, spend by category, budget against actual.

Every amount is a whole number of yen, never a float, so that an offline verifier in any
language reaches the same totals. An amount is at most MAX_YEN (10^15 yen), far below
JavaScript's largest exact integer (2^53 - 1, about 9 x 10^15), so sums stay exact there.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TypeVar

from kumiai.domain.errors import InvalidInput

MAX_YEN = 10**15
E = TypeVar("E", bound=StrEnum)
_DIGITS = re.compile(r"[1-9][0-9]*", re.ASCII)


class FundKind(StrEnum):
    """Where money comes from."""

    DUES = "dues"
    GRANT = "grant"
    INVESTOR = "investor"


class SpendCategory(StrEnum):
    PERSONNEL = "personnel"
    COMPUTE = "compute"
    DATA = "data"
    EQUIPMENT = "equipment"
    OTHER = "other"


def _choice(kind: type[E], text: object, what: str) -> E:
    try:
        return kind(text)
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not one of: {', '.join(k.value for k in kind)}"
        ) from None


def fund_kind(text: object) -> FundKind:
    return _choice(FundKind, text, "fund kind")


def spend_category(text: object) -> SpendCategory:
    return _choice(SpendCategory, text, "spend category")


def positive_whole(value: object, what: str, limit: int = MAX_YEN) -> int:
    """A whole number from 1 to `limit`: an integer, or its digits as text ("5000000").

    Refused: zero, negatives, fractions ("1.5", 1.5), booleans, leading zeros, and
    anything above the limit.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value) and len(value) <= 20:
        value = int(value)
    if type(value) is not int or value < 1:
        raise InvalidInput(f"{what} must be a whole number above 0, not {value!r}")
    if value > limit:
        raise InvalidInput(f"{what} {value} is above the most kumiai records, {limit}")
    return value


def yen(value: object, what: str = "the amount") -> int:
    """An amount of money: a positive whole number of yen."""
    return positive_whole(value, f"{what} (yen)")


def check_allocation(amount: int, source: str, unallocated: int) -> None:
    """An allocation may not spend money the source has not received, or has given away."""
    if amount > unallocated:
        raise InvalidInput(
            f"source {source!r} has {unallocated} yen unallocated, less than the "
            f"{amount} yen asked; see `kumiai funds`"
        )


def check_spent_on(day: date, today: date) -> date:
    """Spend is recorded once incurred: a date after today is refused."""
    if day > today:
        raise InvalidInput(
            f"spend dated {day.isoformat()} is in the future (today is {today.isoformat()}); "
            "record it once it is incurred"
        )
    return day


@dataclass(frozen=True)
class Budget:
    """A project's money: allocated (the budget) against spend (the actual), by category.

    Overspend is allowed, because a cost is incurred before it is recorded, but shown:
    `left` goes below zero and `overspent` is true.
    """

    allocated: int
    spent: dict[str, int]  # every category, 0 when none
    total_spent: int
    left: int
    overspent: bool


def budget(allocated: int, spends: Iterable[tuple[str, int]]) -> Budget:
    by_category: dict[str, int] = {c.value: 0 for c in SpendCategory}
    for category, amount in spends:
        by_category[spend_category(category).value] += amount
    total = sum(by_category.values())
    return Budget(allocated, by_category, total, allocated - total, total > allocated)


def balances(
    received: Mapping[str, int], allocated: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Per source: received, allocated and unallocated (received - allocated)."""
    return {
        source: {
            "received": amount,
            "allocated": allocated.get(source, 0),
            "unallocated": amount - allocated.get(source, 0),
        }
        for source, amount in sorted(received.items())
    }
