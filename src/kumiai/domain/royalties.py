"""Royalties: how a licensee's revenue becomes yen for the association and each member.

Pure integer arithmetic, so that anyone holding the ledger export reaches the same yen
(`kumiai royalties verify`). The rule, `RULE`:

1. royalty = floor(revenue × rate_bp / 10000);
2. association = floor(royalty × n / d), the charter's association share n/d (default 1/5);
3. the remainder (royalty − association) is split among members by the model's recorded
   contribution shares. Shares are recorded per dataset; a member's weight is the sum of its
   datasets' shares, each taken as the exact decimal written in the ledger (0.125 is
   125/1000), and a member whose sum is negative weighs zero. Each member first gets
   floor(remainder × weight / total weight); the yen left over (fewer than the members)
   go one each to the members with the largest fractional remainders, ties to the
   alphabetically first name. If no member weighs anything, the association keeps the
   remainder.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from kumiai.domain.charter import Charter
from kumiai.domain.errors import InvalidInput

RULE = "kumiai.royalties/1: floor rate, association first, member shares, largest remainder"
DEFAULT_ASSOCIATION_SHARE = Fraction(1, 5)


def association_share(charter: Charter | None) -> Fraction:
    """The charter's association share of each royalty, or the default (1/5) it leaves open."""
    share = charter.association_share if charter is not None else None
    if share is None:
        return DEFAULT_ASSOCIATION_SHARE
    return Fraction(share.numerator, share.denominator)


def share_value(value: object, what: str) -> Fraction:
    """A recorded share as an exact fraction: an integer, or a float's shortest decimal."""
    if type(value) is int:
        return Fraction(value)
    if type(value) is float and math.isfinite(value):
        return Fraction(repr(value))
    raise InvalidInput(f"the contribution share of {what} is {value!r}, not a finite number")


def member_weights(shares: dict[str, object], owners: dict[str, str]) -> dict[str, Fraction]:
    """Each member's weight: the sum of its datasets' shares, zero when negative."""
    sums: dict[str, Fraction] = {}
    for dataset, value in shares.items():
        member = owners.get(dataset)
        if member is None:
            raise InvalidInput(f"dataset {dataset!r} has a share but no registered owner")
        sums[member] = sums.get(member, Fraction(0)) + share_value(value, dataset)
    return {member: max(total, Fraction(0)) for member, total in sums.items()}


def split(amount: int, weights: dict[str, Fraction]) -> dict[str, int]:
    """`amount` yen by weight, exactly: floors, then largest remainders, ties by name.

    The payouts sum to `amount`; a zero weight gets 0. Nothing depends on the order of
    `weights`. With no positive weight, everyone gets 0 (the caller keeps the amount).
    """
    if type(amount) is not int or amount < 0:
        raise InvalidInput(f"cannot split {amount!r} yen: whole yen from 0")
    if any(w < 0 for w in weights.values()):
        raise InvalidInput("a weight is negative; negative shares count as zero")
    total = sum(weights.values(), Fraction(0))
    if total == 0:
        return dict.fromkeys(sorted(weights), 0)
    exact = {m: amount * w / total for m, w in weights.items()}
    payouts = {m: math.floor(x) for m, x in exact.items()}
    leftover = amount - sum(payouts.values())
    by_remainder = sorted(exact, key=lambda m: (-(exact[m] - payouts[m]), m))
    for member in by_remainder[:leftover]:
        payouts[member] += 1
    return {m: payouts[m] for m in sorted(payouts)}


@dataclass(frozen=True)
class Distribution:
    revenue_yen: int
    royalty_yen: int
    association_yen: int
    payouts: dict[str, int]
    rule: str = RULE

    def document(self) -> dict[str, Any]:
        return {
            "revenue_yen": self.revenue_yen,
            "royalty_yen": self.royalty_yen,
            "association_yen": self.association_yen,
            "payouts": dict(sorted(self.payouts.items())),
            "rule": self.rule,
        }


def distribute(
    revenue_yen: int,
    rate_bp: int,
    association_share: Fraction,
    shares: dict[str, object],
    owners: dict[str, str],
) -> Distribution:
    """The whole rule (see the module docstring): revenue to royalty to yen per member."""
    if type(revenue_yen) is not int or revenue_yen < 0:
        raise InvalidInput(f"revenue {revenue_yen!r} must be whole yen from 0")
    if type(rate_bp) is not int or not 1 <= rate_bp <= 10_000:
        raise InvalidInput(f"royalty rate {rate_bp!r} bp is outside 1..10000")
    if not 0 <= association_share <= 1:
        raise InvalidInput(f"the association share {association_share} is not between 0 and 1")
    royalty = revenue_yen * rate_bp // 10_000
    association = math.floor(royalty * association_share)
    weights = member_weights(shares, owners)
    remainder = royalty - association
    if sum(weights.values(), Fraction(0)) == 0:
        association, remainder = royalty, 0  # nobody to share with: the association keeps it
    return Distribution(revenue_yen, royalty, association, split(remainder, weights))
