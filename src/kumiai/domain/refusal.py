"""A node's own signed copy of each refusal, so the coordinator cannot erase one unseen.

The coordinator records a node's refusal in the ledger, but it could later drop the tail of
its log (the refusals and the heads after them) before any witness saw it. The refusing
node therefore keeps its own signed copy, and cosigns no head until the refusal is in it
(`unrecorded`); from then on erasing it would be a fork its witness catches.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kumiai.domain.canonical import canonical_json, load_json, require_version
from kumiai.domain.clock import parse_iso, to_iso
from kumiai.domain.errors import InvalidInput, UnsupportedVersion

REFUSAL_TYPE, REFUSAL_VERSION = "kumiai.refusal", 2


@dataclass(frozen=True)
class Refusal:
    member: str
    job: str
    dataset: str
    reason: str
    time: datetime

    def payload(self) -> dict[str, Any]:
        return {
            "type": REFUSAL_TYPE,
            "version": REFUSAL_VERSION,
            "member": self.member,
            "job": self.job,
            "dataset": self.dataset,
            "reason": self.reason,
            "time": to_iso(self.time),
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.payload())


def signed_refusal(refusal: Refusal, signature: str) -> str:
    return canonical_json({"refusal": refusal.payload(), "signature": signature}).decode()


def parse_refusal_copy(text: str) -> tuple[Refusal, str]:
    """(refusal, signature) of a node's copy; InvalidInput names what is wrong."""
    try:
        doc = load_json(text)
        body = doc["refusal"]
        require_version(
            body,
            REFUSAL_TYPE,
            REFUSAL_VERSION,
            what="this refusal copy",
            fix="It was written by another kumiai release; keep it with that release's audit.",
        )
        refusal = Refusal(
            str(body["member"]),
            str(body["job"]),
            str(body["dataset"]),
            str(body["reason"]),
            parse_iso(str(body["time"])),
        )
        return refusal, str(doc["signature"])
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"refusal copy is malformed ({exc})") from None


def unrecorded(refusals: list[Refusal], recorded: set[tuple[str, str]]) -> list[str]:
    """The refusals the ledger does not hold, one line each.

    `recorded`: (job, dataset) of the `job.refused` entries this member signed that are
    included under the head about to be witnessed. A node cosigns no head until each of its
    refusals is in it; once it has cosigned one, erasing the refusal is a rewrite of history
    that every later witness check catches as a fork.
    """
    return [
        f"the ledger does not hold this node's refusal of job {r.job} on {r.dataset!r} "
        f"({to_iso(r.time)}): the coordinator erased it, or never recorded it"
        for r in refusals
        if (r.job, r.dataset) not in recorded
    ]
