"""Milestones: what a project promised by when, the evidence, and whether it is late.

Whether a milestone is late is a pure function of its due date, its acceptance and today:
the service passes today's date, so tests fix it.
"""

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from kumiai.domain.errors import InvalidInput

_DATE = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class MilestoneStatus(StrEnum):
    OPEN = "open"  # waiting for evidence or a board decision
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # more evidence may be added and the board asked again


class EvidenceKind(StrEnum):
    MODEL = "model"
    JOB = "job"
    DOCUMENT = "document"


def parse_date(text: object, what: str) -> date:
    """A calendar date written YYYY-MM-DD, as the ledger records it."""
    try:
        if not (isinstance(text, str) and _DATE.fullmatch(text)):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date; write it YYYY-MM-DD") from None


def check_sha256(digest: str) -> str:
    if not _SHA256.fullmatch(digest):
        raise InvalidInput(f"{digest!r} is not a SHA-256 digest (64 lowercase hex digits)")
    return digest


def decision_of(value: object) -> MilestoneStatus:
    """What a passed accept-milestone motion does: accept, or reject with "reject": true."""
    if value in (None, False, "false"):
        return MilestoneStatus.ACCEPTED
    if value in (True, "true"):
        return MilestoneStatus.REJECTED
    raise InvalidInput(f"'reject' must be true or false, not {value!r}")


@dataclass(frozen=True)
class Timing:
    """late: past due and not accepted by then; on_time: accepted on or before the due date."""

    late: bool
    on_time: bool
    label: str  # on time, late, due (not yet due, not accepted)


def timing(due: date, accepted_on: date | None, today: date) -> Timing:
    """Late if past due without acceptance, or accepted after the due date."""
    if accepted_on is not None:
        on_time = accepted_on <= due
        return Timing(not on_time, on_time, "on time" if on_time else "late")
    late = today > due
    return Timing(late, False, "late" if late else "due")
