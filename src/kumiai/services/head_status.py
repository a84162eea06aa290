"""The latest tree head as a reader checks it: its signature, its cosignatures, and each
member's witness status (the last head its node cosigned).

Read-only, for the dashboard's overview: every signature is checked here with the keys on
record, so a page never shows a head or a cosignature as good on the coordinator's word.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import CosignatureRow, MemberRow
from kumiai.domain.ledger import TreeHead, cosignature_valid, head_signature_valid
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import latest_head


@dataclass(frozen=True)
class CosignatureView:
    witness: str
    time: datetime
    valid: bool  # over this head, with the witness's key on record


@dataclass(frozen=True)
class WitnessView:
    member: str
    kind: str
    last_cosigned: int | None  # the size of the last head its node cosigned; None: never
    current: bool  # it cosigned the latest head


@dataclass(frozen=True)
class HeadStatus:
    head: TreeHead
    verified: bool  # the coordinator's signature over the head checks
    cosignatures: tuple[CosignatureView, ...]
    witnesses: tuple[WitnessView, ...]


def head_status(consortium: Consortium) -> HeadStatus:
    """The latest signed head, its checked cosignatures and every member's witness status."""
    head = latest_head(consortium)
    with transaction(consortium.sessions) as session:
        members = list(session.scalars(select(MemberRow).order_by(MemberRow.name)))
        keys = {m.name: m.public_key for m in members}
        rows = list(
            session.scalars(
                select(CosignatureRow)
                .where(CosignatureRow.size == head.size)
                .order_by(CosignatureRow.witness)
            )
        )
        last = dict(
            session.execute(
                select(CosignatureRow.witness, func.max(CosignatureRow.size)).group_by(
                    CosignatureRow.witness
                )
            ).all()
        )
        kinds = {m.name: m.kind for m in members}
    cosignatures = tuple(
        CosignatureView(
            r.witness,
            r.time,
            r.witness in keys and cosignature_valid(head, r.witness, r.signature, keys[r.witness]),
        )
        for r in rows
    )
    good = {c.witness for c in cosignatures if c.valid}
    witnesses = tuple(
        WitnessView(name, kinds[name], last.get(name), name in good) for name in sorted(kinds)
    )
    verified = head_signature_valid(head, consortium.coordinator_public_key())
    return HeadStatus(head, verified, cosignatures, witnesses)
