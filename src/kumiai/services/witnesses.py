"""Witnesses over the network: a cosignature published by a member's node, and every
witness's latest cosigned head, so that the witnesses can compare what they were shown.

Cosignatures are kept beside the log (the `cosignatures` table and the export), not in it:
an entry per cosignature would grow the log, and so need a new head, at every cosignature.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import CosignatureRow, MemberRow, TreeHeadRow
from kumiai.domain import cosigning
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.ledger import TreeHead
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import record_cosignature


def publish_cosignature(
    consortium: Consortium, witness: str, head: TreeHead, signature: str
) -> None:
    """Record `witness`'s cosignature on `head`, or refuse it and change nothing.

    The signature authenticates the request: it must verify with the member's key on
    record, over a head the coordinator itself signed and recorded.
    """
    with transaction(consortium.sessions) as session:
        member = session.get(MemberRow, witness)
        row = session.get(TreeHeadRow, head.size)
        recorded = TreeHead.from_json(row.document) if row else None
    why = cosigning.refusal(
        witness, member.public_key if member else None, head, recorded, signature
    )
    if why is not None:
        raise (NotFound if member is None else InvalidInput)(why)
    record_cosignature(consortium, witness, head, signature)


@dataclass(frozen=True)
class CosignedHead:
    """A witness's latest cosignature, the head it covers, and the key the coordinator lists."""

    witness: str
    head: TreeHead
    signature: str
    public_key: str

    def document(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "head": {"head": self.head.document(), "signature": self.head.signature},
            "signature": self.signature,
            "public_key": self.public_key,
        }


def cosigned_heads(consortium: Consortium) -> list[CosignedHead]:
    """Each witness's latest cosigned head, by witness name."""
    latest = (
        select(CosignatureRow.witness, func.max(CosignatureRow.size).label("size"))
        .group_by(CosignatureRow.witness)
        .subquery()
    )
    query = (
        select(CosignatureRow, TreeHeadRow.document, MemberRow.public_key)
        .join(
            latest,
            (CosignatureRow.witness == latest.c.witness) & (CosignatureRow.size == latest.c.size),
        )
        .join(TreeHeadRow, TreeHeadRow.size == CosignatureRow.size)
        .join(MemberRow, MemberRow.name == CosignatureRow.witness)
        .order_by(CosignatureRow.witness)
    )
    with transaction(consortium.sessions) as session:
        rows = list(session.execute(query))
    return [
        CosignedHead(c.witness, TreeHead.from_json(document), c.signature, key)
        for c, document, key in rows
    ]
