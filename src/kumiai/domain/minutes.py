"""The board's minutes, replayed from the ledger: every tally recomputed from the votes.

The coordinator writes the entries but cannot be trusted to count: an auditor replays
the charter, its signatures, the motions and the votes in log order and checks each
`motion.closed` against `domain.motion.tally`. verifiers/js/verify.mjs makes the same
checks with the same codes (tests/verifiers holds them to it).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kumiai.domain.charter import REQUIRED_FIELDS, Charter, Decision
from kumiai.domain.clock import to_iso
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import COORDINATOR, Entry
from kumiai.domain.motion import Choice, Motion, motion_digest, tally

Problem = tuple[str, str]  # (what is wrong, code)
_MOTION_FIELDS = frozenset(
    {"motion", "decision", "payload", "proposer", "charter", "closes_at", "digest"}
)
_DIGITS = re.compile(r"[1-9][0-9]{0,19}", re.ASCII)
_TALLY_COUNTS = ("eligible", "yes", "no", "abstain", "quorum_met", "passed")


@dataclass
class _Open:
    motion: Motion
    charter: Charter
    digest: str
    votes: dict[str, Choice] = field(default_factory=dict)
    outcome: str | None = None  # passed or failed, once closed
    used: bool = False  # its act has been carried out


@dataclass
class Minutes:
    """Replays governance entries in log order; `read` returns the problems of one entry."""

    proposed: Charter | None = None  # version 1, while it is being signed
    signers: set[str] = field(default_factory=set)
    charters: dict[int, Charter] = field(default_factory=dict)  # adopted versions
    current: Charter | None = None
    motions: dict[str, _Open] = field(default_factory=dict)

    def _held(self, motion_id: object) -> _Open | None:
        return self.motions.get(motion_id) if isinstance(motion_id, str) else None

    def read(self, entry: Entry) -> list[Problem]:
        handler = _HANDLERS.get(entry.kind)
        return handler(self, entry, entry.payload) if handler else []

    def _charter_proposed(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        try:
            charter = Charter.from_document(payload.get("charter"))
        except InvalidInput as exc:
            return [(f"the proposed charter is malformed ({exc})", "charter")]
        if self.proposed is not None or self.current is not None or charter.version != 1:
            return [("a founding charter proposed twice, or not as version 1", "charter")]
        if payload.get("digest") != charter.digest() or entry.actor not in charter.founders:
            return [("the charter's digest or proposer does not hold", "charter")]
        self.proposed = charter
        return []

    def _first_version(self, charter: Charter, payload: dict[str, Any]) -> bool:
        """The payload is about version 1 of the proposed charter, not yet adopted."""
        return (
            self.current is None
            and _is(payload.get("version"), 1)
            and payload.get("digest") == charter.digest()
        )

    def _charter_signed(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        charter = self.proposed
        if (
            charter is None
            or not self._first_version(charter, payload)
            or entry.actor not in charter.founders
            or entry.actor in self.signers
        ):
            return [
                (
                    f"{entry.actor!r} signs no charter awaiting its signature (not a founder, "
                    "another digest, twice, or after the adoption)",
                    "charter-signature",
                )
            ]
        self.signers.add(entry.actor)
        return []

    def _charter_adopted(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        bad = [("the charter adopted is not the one signed or voted", "charter")]
        if entry.actor != COORDINATOR:
            return bad
        motion_id = payload.get("motion")
        if motion_id is None:
            charter = self.proposed
            if (
                charter is None
                or not self._first_version(charter, payload)
                or not set(charter.founders) <= self.signers
            ):
                return bad
        else:
            held = self._held(motion_id)
            if held is None or held.outcome != "passed" or held.used:
                return bad
            if held.motion.decision is not Decision.AMEND_CHARTER:
                return bad
            try:
                charter = Charter.from_document(held.motion.payload.get("charter"))
            except InvalidInput:
                return bad
            if not _is(payload.get("version"), charter.version):
                return bad
            if payload.get("digest") != charter.digest():
                return bad
            held.used = True
        self.charters[charter.version] = charter
        self.current = charter
        return []

    def _motion_proposed(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        bad = [("a motion the charter in force does not allow", "motion")]
        charter = self.current
        if charter is None or payload.keys() != _MOTION_FIELDS:
            return bad
        document = {k: v for k, v in payload.items() if k != "digest"}
        motion_id, decision = payload["motion"], payload["decision"]
        motion_payload = payload["payload"]
        if (
            not isinstance(motion_id, str)
            or motion_id in self.motions
            or decision not in tuple(d.value for d in Decision)
            or not isinstance(motion_payload, dict)
            or not _is(payload["charter"], charter.version)
            or payload["proposer"] != entry.actor
            or entry.actor not in charter.seats
            or payload["digest"] != motion_digest(document)
        ):
            return bad
        kind = Decision(decision)
        if any(f not in motion_payload for f in REQUIRED_FIELDS[kind]):
            return bad
        for name in charter.conflicts.get(kind, ()):
            value = motion_payload.get(name)
            if not (isinstance(value, str) or _names(value)):
                return bad
        if not charter.eligible(kind, motion_payload):
            return bad
        try:
            closes_at = entry.time + timedelta(seconds=charter.rule(kind).period)
        except OverflowError:  # beyond the year 9999
            return bad
        if payload["closes_at"] != to_iso(closes_at):
            return bad
        motion = Motion(
            motion_id, kind, motion_payload, entry.actor, charter.version, entry.time, closes_at
        )
        self.motions[motion_id] = _Open(motion, charter, payload["digest"])
        return []

    def _motion_voted(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        held = self._held(payload.get("motion"))
        if (
            held is None
            or held.outcome is not None
            or payload.get("digest") != held.digest
            or payload.get("choice") not in tuple(c.value for c in Choice)
            or not _before(entry.time, held.motion.closes_at)
            or entry.actor not in held.charter.eligible(held.motion.decision, held.motion.payload)
            or entry.actor in held.votes
        ):
            return [
                (
                    f"a vote by {entry.actor!r} the charter does not count (not an eligible "
                    "seat, a second vote, after the close, or over another motion's digest)",
                    "vote",
                )
            ]
        held.votes[entry.actor] = Choice(payload["choice"])
        return []

    def _motion_closed(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        held = self._held(payload.get("motion"))
        bad = [("the close does not match the tally recomputed from the votes", "tally")]
        if held is None or held.outcome is not None or payload.get("digest") != held.digest:
            return bad
        eligible = held.charter.eligible(held.motion.decision, held.motion.payload)
        everyone = all(s in held.votes for s in eligible)
        if _before(entry.time, held.motion.closes_at) and not everyone:
            return bad
        result = tally(held.charter, held.motion, held.votes).document()
        recorded = payload.get("tally")
        if not isinstance(recorded, dict) or any(
            not _is(recorded.get(k), result[k]) for k in _TALLY_COUNTS
        ):
            return bad
        expected = "passed" if result["passed"] and "void" not in payload else "failed"
        if payload.get("outcome") != expected:
            return bad
        held.outcome = expected
        return []

    def _project_approved(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        if self.current is None:
            return []  # before a charter, one member approves
        held = self._held(payload.get("motion"))
        if (
            held is None
            or held.outcome != "passed"
            or held.used
            or held.motion.decision is not Decision.APPROVE_PROJECT
            or held.motion.payload.get("project") != payload.get("project")
        ):
            return [("a project approved without its passed motion", "not-voted")]
        held.used = True
        return []

    def _carried_out(
        self, payload: dict[str, Any], decision: Decision, matches: "_Matcher"
    ) -> list[Problem]:
        """An act only a passed motion carries out must name one that says the same."""
        held = self._held(payload.get("motion"))
        if (
            held is None
            or held.outcome != "passed"
            or held.used
            or held.motion.decision is not decision
            or not matches(held.motion.payload, payload)
        ):
            return [(f"a {decision.value} act without its passed motion", "not-voted")]
        held.used = True
        return []

    def _theme_ranked(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        return self._carried_out(payload, Decision.SET_PRIORITIES, _same_ranking)

    def _funds_allocated(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        return self._carried_out(payload, Decision.ALLOCATE_FUNDS, _same_allocation)

    def _milestone_decided(self, entry: Entry, payload: dict[str, Any]) -> list[Problem]:
        rejected = entry.kind == "milestone.rejected"

        def same(motion: dict[str, Any], act: dict[str, Any]) -> bool:
            return (
                _is(motion.get("project"), act.get("project"))
                and _is(motion.get("milestone"), act.get("milestone"))
                and (motion.get("reject") in (True, "true")) == rejected
            )

        return self._carried_out(payload, Decision.ACCEPT_MILESTONE, same)


_Matcher = Callable[[dict[str, Any], dict[str, Any]], bool]


def _same_ranking(motion: dict[str, Any], act: dict[str, Any]) -> bool:
    """A ranking is proposed as a list or as "a,b,c"; the act records the list."""
    ranking = motion.get("ranking")
    if isinstance(ranking, str):
        ranking = [t.strip() for t in ranking.split(",") if t.strip()]
    return _names(ranking) and _names(act.get("ranking")) and ranking == act.get("ranking")


def _whole(value: object) -> object:
    """A whole number proposed as digits ("6000000") reads as the number (domain.money)."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return value


def _same_allocation(motion: dict[str, Any], act: dict[str, Any]) -> bool:
    return (
        _is(motion.get("project"), act.get("project"))
        and _is(motion.get("source"), act.get("source"))
        and _is(_whole(motion.get("amount")), act.get("amount_yen"))
        and _is(_whole(motion.get("site_rounds")), act.get("site_rounds"))
    )


def _is(value: object, expected: object) -> bool:
    """Equal and of the same JSON type (True is not 1 here, as in JavaScript's ===)."""
    return type(value) is type(expected) and value == expected


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _before(moment: datetime, closes_at: datetime) -> bool:
    return moment < closes_at


_HANDLERS = {
    "charter.proposed": Minutes._charter_proposed,
    "charter.signed": Minutes._charter_signed,
    "charter.adopted": Minutes._charter_adopted,
    "motion.proposed": Minutes._motion_proposed,
    "motion.voted": Minutes._motion_voted,
    "motion.closed": Minutes._motion_closed,
    "project.approved": Minutes._project_approved,
    "theme.ranked": Minutes._theme_ranked,
    "funds.allocated": Minutes._funds_allocated,
    "milestone.accepted": Minutes._milestone_decided,
    "milestone.rejected": Minutes._milestone_decided,
}
