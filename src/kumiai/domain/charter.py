"""The charter: who sits on the board, and how each kind of decision is taken.

A charter is a signed, versioned document. Version 1 is adopted when every founding member
has signed it; every later version is adopted by a passed `amend-charter` motion under the
version before it. Fractions are written "n/d" and compared in integers, so that any
verifier (verifiers/js too) reaches the same verdict without floating point.
"""

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput

CHARTER_TYPE, CHARTER_FORMAT = "kumiai.charter", 1
DAY = 86_400
_FRACTION = re.compile(r"([0-9]{1,4})/([0-9]{1,4})", re.ASCII)
_FIELDS = frozenset({"type", "format", "version", "founders", "seats", "rules", "conflicts"})
# Optional: {"association_share": "n/d"}, the association's cut of every royalty, taken
# before the members' (domain.royalties; without it, the default there applies).
_ROYALTIES = "royalties"
_RULE_FIELDS = frozenset({"quorum", "threshold", "period"})


class Decision(StrEnum):
    """Every kind of decision the board takes by motion."""

    ADMIT_MEMBER = "admit-member"
    APPROVE_PROJECT = "approve-project"
    SET_PRIORITIES = "set-priorities"
    ALLOCATE_FUNDS = "allocate-funds"
    ACCEPT_MILESTONE = "accept-milestone"
    GRANT_LICENCE = "grant-licence"
    CREATE_SPINOUT = "create-spinout"
    AMEND_CHARTER = "amend-charter"


# What a motion of each kind must say, so that the act can be carried out and the
# conflict-of-interest rule cannot be dodged by leaving the conflicted party unnamed.
REQUIRED_FIELDS: dict[Decision, tuple[str, ...]] = {
    Decision.ADMIT_MEMBER: ("member",),
    Decision.APPROVE_PROJECT: ("project",),
    Decision.SET_PRIORITIES: ("ranking",),
    Decision.ALLOCATE_FUNDS: ("project", "amount"),
    Decision.ACCEPT_MILESTONE: ("project", "milestone"),
    Decision.GRANT_LICENCE: ("licensee", "model"),
    Decision.CREATE_SPINOUT: ("spinout", "founders"),
    Decision.AMEND_CHARTER: ("charter",),
}


@dataclass(frozen=True)
class Fraction:
    """n/d, 0 < n <= d; compared by cross-multiplying whole numbers."""

    numerator: int
    denominator: int

    @classmethod
    def parse(cls, text: object, what: str, *, zero: bool = False) -> "Fraction":
        """`zero`: 0/d is allowed too (a share may be nothing; a quorum may not)."""
        match = _FRACTION.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInput(f"{what} {text!r} is not a fraction; write it as e.g. '1/2'")
        n, d = int(match[1]), int(match[2])
        if not (n >= 0 if zero else n > 0) or d <= 0 or n > d:
            lowest = "at least 0" if zero else "above 0"
            raise InvalidInput(f"{what} {text} must be {lowest} and at most 1, e.g. '2/3'")
        return cls(n, d)

    def reached(self, part: int, whole: int) -> bool:
        """part/whole >= n/d."""
        return part * self.denominator >= self.numerator * whole

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class Rule:
    """How one kind of decision is taken.

    quorum: the share of eligible seats that must vote (yes, no or abstain);
    threshold: the share of yes among yes and no (abstentions count for the quorum only);
    a tie never passes. `1/1` and `1/1` is unanimity: every eligible seat votes, none no.
    period: seconds from the proposal to the close.
    """

    quorum: Fraction
    threshold: Fraction
    period: int

    def document(self) -> dict[str, Any]:
        return {"quorum": str(self.quorum), "threshold": str(self.threshold), "period": self.period}


def _rule(quorum: str, threshold: str, days: int) -> Rule:
    return Rule(
        Fraction.parse(quorum, "quorum"), Fraction.parse(threshold, "threshold"), days * DAY
    )


DEFAULT_RULES: dict[Decision, Rule] = {
    Decision.ADMIT_MEMBER: _rule("1/2", "1/2", 14),
    Decision.APPROVE_PROJECT: _rule("1/2", "1/2", 7),
    Decision.SET_PRIORITIES: _rule("1/2", "1/2", 14),
    Decision.ALLOCATE_FUNDS: _rule("1/2", "2/3", 14),
    Decision.ACCEPT_MILESTONE: _rule("1/2", "1/2", 7),
    Decision.GRANT_LICENCE: _rule("1/2", "2/3", 14),
    Decision.CREATE_SPINOUT: _rule("2/3", "2/3", 14),
    Decision.AMEND_CHARTER: _rule("1/1", "1/1", 30),
}
# The payload fields that name members who do not vote: a licensee on its own licence,
# the founders of a spin-out on its creation.
DEFAULT_CONFLICTS: dict[Decision, tuple[str, ...]] = {
    Decision.GRANT_LICENCE: ("licensee",),
    Decision.CREATE_SPINOUT: ("founders",),
}


@dataclass(frozen=True)
class Charter:
    version: int
    founders: tuple[str, ...]
    seats: tuple[str, ...]
    rules: dict[Decision, Rule]
    conflicts: dict[Decision, tuple[str, ...]] = field(default_factory=dict)
    association_share: Fraction | None = None  # of each royalty; None: the default applies

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": CHARTER_TYPE,
            "format": CHARTER_FORMAT,
            "version": self.version,
            "founders": sorted(self.founders),
            "seats": sorted(self.seats),
            "rules": {d.value: self.rules[d].document() for d in Decision},
            "conflicts": {d.value: list(f) for d, f in sorted(self.conflicts.items())},
        }
        if self.association_share is not None:  # absent, the digest of older charters holds
            document[_ROYALTIES] = {"association_share": str(self.association_share)}
        return document

    def digest(self) -> str:
        """What founders sign and motions cite: sha256 of the canonical JSON."""
        return charter_digest(self.document())

    def rule(self, decision: Decision) -> Rule:
        return self.rules[decision]

    def conflicted(self, decision: Decision, payload: dict[str, Any]) -> frozenset[str]:
        """Members named in the payload fields the conflict rules list for this decision."""
        named: set[str] = set()
        for name in self.conflicts.get(decision, ()):
            value = payload.get(name)
            named.update([value] if isinstance(value, str) else value or [])
        return frozenset(named)

    def eligible(self, decision: Decision, payload: dict[str, Any]) -> tuple[str, ...]:
        """The seats that may vote on this motion: every seat but the conflicted."""
        conflicted = self.conflicted(decision, payload)
        return tuple(sorted(s for s in self.seats if s not in conflicted))

    @classmethod
    def from_document(cls, doc: object) -> "Charter":
        """Parse strictly: exactly the fields a charter has, every decision with a rule."""
        if not isinstance(doc, dict) or doc.keys() - {_ROYALTIES} != _FIELDS:
            raise InvalidInput(
                f"a charter must hold exactly the fields {', '.join(sorted(_FIELDS))} "
                f"(and optionally {_ROYALTIES})"
            )
        if doc["type"] != CHARTER_TYPE or type(doc["format"]) is not int or doc["format"] != 1:
            raise InvalidInput(f"not a {CHARTER_TYPE} document of format {CHARTER_FORMAT}")
        version = doc["version"]
        if type(version) is not int or version < 1:
            raise InvalidInput(f"charter version {version!r} must be a whole number from 1")
        founders, seats = _names(doc["founders"], "founders"), _names(doc["seats"], "seats")
        if not seats:
            raise InvalidInput("a charter needs at least one board seat")
        rules_doc, conflicts_doc = doc["rules"], doc["conflicts"]
        if not isinstance(rules_doc, dict) or set(rules_doc) != {d.value for d in Decision}:
            raise InvalidInput(
                "the charter must give a rule for exactly these decisions: "
                + ", ".join(d.value for d in Decision)
            )
        rules = {Decision(k): _parse_rule(k, v) for k, v in rules_doc.items()}
        if not isinstance(conflicts_doc, dict):
            raise InvalidInput("the charter's conflicts must map decisions to payload fields")
        conflicts = {
            decision_of(k): tuple(_names(v, f"conflicts of {k}")) for k, v in conflicts_doc.items()
        }
        share = _association_share(doc[_ROYALTIES]) if _ROYALTIES in doc else None
        return cls(version, tuple(founders), tuple(seats), rules, conflicts, share)


def _association_share(doc: object) -> Fraction:
    if not isinstance(doc, dict) or doc.keys() != {"association_share"}:
        raise InvalidInput("the charter's royalties must hold exactly association_share")
    return Fraction.parse(doc["association_share"], "the association share", zero=True)


def _names(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"the charter's {what} must be a list of names")
    if len(set(value)) != len(value) or value != sorted(value):
        raise InvalidInput(f"the charter's {what} must be sorted and name each once")
    return value


def _parse_rule(decision: str, doc: object) -> Rule:
    if not isinstance(doc, dict) or doc.keys() != _RULE_FIELDS:
        raise InvalidInput(f"the rule for {decision} must hold exactly quorum, threshold, period")
    period = doc["period"]
    if type(period) is not int or period < 1:
        raise InvalidInput(f"the voting period of {decision} must be a whole number of seconds")
    return Rule(
        Fraction.parse(doc["quorum"], f"the quorum of {decision}"),
        Fraction.parse(doc["threshold"], f"the threshold of {decision}"),
        period,
    )


def decision_of(text: object) -> Decision:
    """A decision type by name, or a refusal listing the known ones."""
    try:
        return Decision(text)
    except ValueError:
        raise InvalidInput(
            f"unknown decision type {text!r}; the charter knows: "
            + ", ".join(d.value for d in Decision)
        ) from None


def charter_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def founding_charter(
    founders: tuple[str, ...],
    seats: tuple[str, ...] = (),
    rules: dict[Decision, Rule] | None = None,
    association_share: Fraction | None = None,
) -> Charter:
    """Version 1: the founders hold the seats unless others are named; default rules."""
    charter = Charter(
        1,
        tuple(sorted(set(founders))),
        tuple(sorted(set(seats or founders))),
        {**DEFAULT_RULES, **(rules or {})},
        dict(DEFAULT_CONFLICTS),
        association_share,
    )
    return Charter.from_document(charter.document())  # one validation path for every charter


def amended(current: Charter, **changes: Any) -> Charter:
    """The next version: the current one with some of seats, rules, conflicts and the
    association share replaced."""
    rules = {**current.rules, **changes.pop("rules", {})}
    seats = tuple(sorted(set(changes.pop("seats", current.seats))))
    conflicts = changes.pop("conflicts", current.conflicts)
    share = changes.pop("association_share", current.association_share)
    if changes:
        raise InvalidInput(f"a charter amendment cannot change {', '.join(sorted(changes))}")
    charter = Charter(current.version + 1, current.founders, seats, rules, dict(conflicts), share)
    return Charter.from_document(charter.document())
