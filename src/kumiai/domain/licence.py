"""Licences of a released model, and the revenue their licensees report.

A licence's terms are what the board votes on (a `grant-licence` motion) and what every
royalty is computed from, so they are validated here, once, for the service and the
offline verifier alike. Dates are "YYYY-MM-DD"; a reporting period is a quarter
("2027-Q1") or a month ("2027-03"), and must overlap the licence's term.
"""

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from kumiai.domain.errors import InvalidInput

MAX_BP = 10_000  # 100 %
# The largest revenue one report may carry: every yen figure derived from it stays below
# 2^53, so a JavaScript reader of the export sees the same integers.
MAX_REVENUE_YEN = 10**15
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)", re.ASCII)
_QUARTER = re.compile(r"(\d{4})-Q([1-4])", re.ASCII)
_MONTH = re.compile(r"(\d{4})-(\d\d)", re.ASCII)
_TERM_FIELDS = frozenset(
    {"field_of_use", "territory", "starts", "ends", "royalty_rate_bp", "restrictions"}
)


def parse_date(text: object, what: str) -> date:
    match = _DATE.fullmatch(text) if isinstance(text, str) else None
    try:
        if match is None:
            raise ValueError
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date; write it as YYYY-MM-DD") from None


@dataclass(frozen=True)
class LicenceTerms:
    """OpenRAIL-style terms: where and for what the model may be used, until when, at what rate."""

    field_of_use: str
    territory: str
    starts: date
    ends: date
    royalty_rate_bp: int  # basis points of revenue: 500 is 5 %
    restrictions: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        return {
            "field_of_use": self.field_of_use,
            "territory": self.territory,
            "starts": self.starts.isoformat(),
            "ends": self.ends.isoformat(),
            "royalty_rate_bp": self.royalty_rate_bp,
            "restrictions": list(self.restrictions),
        }

    @classmethod
    def from_document(cls, doc: object) -> "LicenceTerms":
        """Parse strictly, with every refusal `licence_terms` makes."""
        if not isinstance(doc, dict) or doc.keys() != _TERM_FIELDS:
            raise InvalidInput(
                f"licence terms must hold exactly the fields {', '.join(sorted(_TERM_FIELDS))}"
            )
        restrictions = doc["restrictions"]
        if not isinstance(restrictions, list):
            raise InvalidInput("the licence's restrictions must be a list of sentences")
        return licence_terms(
            field_of_use=doc["field_of_use"],
            territory=doc["territory"],
            starts=doc["starts"],
            ends=doc["ends"],
            royalty_rate_bp=doc["royalty_rate_bp"],
            restrictions=restrictions,
        )


def _text(value: object, what: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"the licence's {what} is empty; name it, e.g. {example}")
    return value.strip()


def licence_terms(
    *,
    field_of_use: object,
    territory: object,
    starts: object,
    ends: object,
    royalty_rate_bp: object,
    restrictions: list[object] | tuple[object, ...] = (),
) -> LicenceTerms:
    """Validated terms: a field and a territory, a term that ends after it starts, 1..10000 bp."""
    if type(royalty_rate_bp) is not int or not 1 <= royalty_rate_bp <= MAX_BP:
        raise InvalidInput(
            f"royalty rate {royalty_rate_bp!r} bp is outside 1..{MAX_BP} basis points "
            "(500 bp is 5 % of revenue)"
        )
    first, last = parse_date(starts, "the licence start"), parse_date(ends, "the licence end")
    if last < first:
        raise InvalidInput(f"the licence ends ({last}) before it starts ({first})")
    rules = tuple(_text(r, "restriction", '"no clinical decision"') for r in restrictions)
    return LicenceTerms(
        _text(field_of_use, "field of use", '"cardiology triage"'),
        _text(territory, "territory", '"JP"'),
        first,
        last,
        royalty_rate_bp,
        rules,
    )


def period_bounds(period: object) -> tuple[date, date]:
    """The first and last day of a quarter ("2027-Q1") or a month ("2027-03")."""
    text = period if isinstance(period, str) else ""
    if quarter := _QUARTER.fullmatch(text):
        year, q = int(quarter[1]), int(quarter[2])
        first_month, last_month = 3 * q - 2, 3 * q
    elif (month := _MONTH.fullmatch(text)) and 1 <= int(month[2]) <= 12:
        year, first_month = int(month[1]), int(month[2])
        last_month = first_month
    else:
        raise InvalidInput(
            f"period {period!r} is not a quarter or a month; write e.g. 2027-Q1 or 2027-03"
        )
    if year < 1:
        raise InvalidInput(f"period {period!r} names no calendar year")
    end = date(year + 1, 1, 1) if last_month == 12 else date(year, last_month + 1, 1)
    return date(year, first_month, 1), date.fromordinal(end.toordinal() - 1)


def check_revenue_report(
    terms: LicenceTerms,
    *,
    licensee: str,
    reporter: str,
    period: object,
    revenue_yen: object,
    reported_periods: set[str],
) -> None:
    """Only the licensee reports, once per period, a period inside the term, whole yen >= 0."""
    if reporter != licensee:
        raise InvalidInput(
            f"only the licensee {licensee!r} reports revenue under this licence, not {reporter!r}"
        )
    first, last = period_bounds(period)
    if last < terms.starts or first > terms.ends:
        raise InvalidInput(
            f"period {period} ({first} to {last}) lies outside the licence's term "
            f"({terms.starts} to {terms.ends})"
        )
    if period in reported_periods:
        raise InvalidInput(
            f"revenue for {period} is already reported under this licence; one report per period"
        )
    if type(revenue_yen) is not int or not 0 <= revenue_yen <= MAX_REVENUE_YEN:
        raise InvalidInput(
            f"revenue {revenue_yen!r} must be whole yen from 0 to {MAX_REVENUE_YEN:,}"
        )
