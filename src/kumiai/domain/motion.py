"""Motions and votes: what may be proposed, who may vote, and the tally.

The tally is a pure function of the charter the motion was proposed under and the votes,
so that anyone holding the ledger can recompute every outcome (domain.minutes does).
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kumiai.domain.canonical import canonical_json
from kumiai.domain.charter import REQUIRED_FIELDS, Charter, Decision, decision_of
from kumiai.domain.clock import parse_iso, to_iso
from kumiai.domain.errors import InvalidInput, StateError


class Choice(StrEnum):
    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


def choice_of(text: object) -> Choice:
    try:
        return Choice(text)
    except ValueError:
        raise InvalidInput(f"a vote is yes, no or abstain, not {text!r}") from None


@dataclass(frozen=True)
class Motion:
    """A proposal to the board, under one version of the charter."""

    id: str
    decision: Decision
    payload: dict[str, Any]
    proposer: str
    charter_version: int
    proposed_at: datetime
    closes_at: datetime

    def document(self) -> dict[str, Any]:
        """What voters sign the digest of: the motion exactly as proposed."""
        return {
            "motion": self.id,
            "decision": self.decision.value,
            "payload": self.payload,
            "proposer": self.proposer,
            "charter": self.charter_version,
            "closes_at": to_iso(self.closes_at),
        }

    def digest(self) -> str:
        return motion_digest(self.document())


def motion_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def shown_digest(shown: Mapping[str, Any]) -> str:
    """The digest of a motion as a coordinator shows it (`kumiai motion show --json`),
    recomputed from the content shown: the motion, decision, payload, proposer, charter
    version and closing time. A voter's node pins this, never the digest the coordinator
    states, and refuses a motion whose stated digest is not this one."""
    try:
        document = {
            "motion": shown["id"],
            "decision": shown["decision"],
            "payload": shown["payload"],
            "proposer": shown["proposer"],
            "charter": shown["charter_version"],
            "closes_at": to_iso(parse_iso(str(shown["closes_at"]), "the closing time")),
        }
    except (KeyError, TypeError):
        raise StateError("the coordinator showed a motion without its full content") from None
    digest = motion_digest(document)
    if shown.get("digest") != digest:
        raise StateError(
            f"the coordinator shows motion {shown['id']} with digest {shown.get('digest')}, but "
            f"the content it shows has digest {digest}; refused, nothing signed"
        )
    return digest


def check_pinned(motion: Motion, recorded: str, pinned: str) -> None:
    """A vote counts only for the motion its voter was shown: the digest the voter's node
    pinned must be the digest recorded at the proposal, and the motion's content must still
    have that digest (a coordinator that swapped the title, action or payload after the
    motion was shown cannot collect the vote for the new content)."""
    if motion.digest() != recorded:
        raise StateError(
            f"motion {motion.id}'s content no longer has the digest recorded when it was "
            f"proposed ({recorded}); no vote is taken on it"
        )
    if pinned != recorded:
        raise StateError(
            f"the vote pins motion {motion.id} with digest {pinned}, but the motion as recorded "
            f"has digest {recorded}: it is not the motion the voter was shown; show it again "
            "(kumiai node vote) and vote on what it says"
        )


def propose(
    charter: Charter,
    *,
    motion_id: str,
    decision: str,
    payload: dict[str, Any],
    proposer: str,
    now: datetime,
) -> Motion:
    """A motion the charter allows, or a refusal naming what contradicts it."""
    kind = decision_of(decision)
    if proposer not in charter.seats:
        raise InvalidInput(
            f"{proposer!r} holds no board seat under charter version {charter.version}; "
            f"a seat holder must propose ({', '.join(charter.seats)})"
        )
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in payload]
    if missing:
        raise InvalidInput(
            f"a {kind.value} motion must name {', '.join(missing)}; "
            f"add them with --set {missing[0]}=..."
        )
    for name in charter.conflicts.get(kind, ()):
        value = payload.get(name)
        if not (isinstance(value, str) or _names(value)):
            raise InvalidInput(f"the {name!r} of a {kind.value} motion must name members")
    if not charter.eligible(kind, payload):
        raise InvalidInput(
            f"no seat may vote on this {kind.value} motion: every seat holder is conflicted"
        )
    closes_at = now + timedelta(seconds=charter.rule(kind).period)
    return Motion(motion_id, kind, payload, proposer, charter.version, now, closes_at)


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_vote(
    charter: Charter,
    motion: Motion,
    voter: str,
    voted: Mapping[str, Choice],
    now: datetime,
    closed: bool = False,
) -> None:
    """Refuse a vote the charter does not allow; `voted` holds the votes cast so far."""
    where = f"motion {motion.id}"
    if closed:
        raise StateError(f"{where} is closed; its tally is final (see kumiai motion show)")
    if now >= motion.closes_at:
        raise StateError(
            f"{where} stopped taking votes at {to_iso(motion.closes_at)}; close it with "
            f"kumiai motion close {motion.id}"
        )
    if voter not in charter.seats:
        raise InvalidInput(
            f"{voter!r} holds no board seat under charter version {charter.version} and "
            f"cannot vote on {where}"
        )
    if voter in charter.conflicted(motion.decision, motion.payload):
        raise InvalidInput(
            f"{voter!r} is conflicted on {where} ({motion.decision.value} names it) and "
            "does not vote on it"
        )
    if voter in voted:
        raise InvalidInput(f"{voter!r} has already voted {voted[voter].value} on {where}")


@dataclass(frozen=True)
class Tally:
    eligible: int
    yes: int
    no: int
    abstain: int
    quorum_met: bool
    passed: bool
    reason: str

    def document(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "yes": self.yes,
            "no": self.no,
            "abstain": self.abstain,
            "quorum_met": self.quorum_met,
            "passed": self.passed,
            "reason": self.reason,
        }


def tally(charter: Charter, motion: Motion, votes: Mapping[str, Choice]) -> Tally:
    """The outcome: only the votes of eligible seats count.

    Passed when the votes cast reach the quorum of eligible seats, the yes votes reach the
    threshold of yes and no, and yes outnumbers no (a tie never passes).
    """
    rule = charter.rule(motion.decision)
    eligible = charter.eligible(motion.decision, motion.payload)
    counted = [votes[s] for s in eligible if s in votes]
    yes, no = counted.count(Choice.YES), counted.count(Choice.NO)
    abstain = counted.count(Choice.ABSTAIN)
    quorum_met = rule.quorum.reached(len(counted), len(eligible))
    if not quorum_met:
        reason = f"quorum not met: {len(counted)} of {len(eligible)} voted, {rule.quorum} needed"
        return Tally(len(eligible), yes, no, abstain, False, False, reason)
    passed = yes > no and rule.threshold.reached(yes, yes + no)
    verb = "reached" if passed else "did not reach"
    reason = f"{yes} yes of {yes + no} yes and no {verb} the threshold {rule.threshold}"
    return Tally(len(eligible), yes, no, abstain, True, passed, reason)


def may_close(charter: Charter, motion: Motion, votes: Mapping[str, Choice], now: datetime) -> bool:
    """After the voting period, or as soon as every eligible seat has voted."""
    eligible = charter.eligible(motion.decision, motion.payload)
    return now >= motion.closes_at or all(s in votes for s in eligible)


def require_closable(
    charter: Charter, motion: Motion, votes: Mapping[str, Choice], now: datetime
) -> None:
    if not may_close(charter, motion, votes, now):
        raise StateError(
            f"motion {motion.id} takes votes until {to_iso(motion.closes_at)} and not every "
            "eligible seat has voted; close it then"
        )
