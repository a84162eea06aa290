"""What the coordinator hands a node so that it can check its peers' masking keys itself.

The node trusts no key the coordinator relays (kumiai.domain.peer_trust): it wants, for each
peer dataset, the ledger entries that say who owns it and which keys that member holds, each
with an inclusion proof against the tree head the node itself last witnessed. So the nodes
witness the latest head first, then each gets proofs for its own head's size.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import DatasetRow, LedgerEntryRow
from kumiai.domain.errors import NotFound
from kumiai.domain.peer_trust import LoggedEntry
from kumiai.node.port import NodePort
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import latest_head, witness_all


def identity_evidence(
    consortium: Consortium, datasets: Iterable[str], size: int
) -> list[dict[str, Any]]:
    """The `member.joined`, `member.key-rotated` and `dataset.registered` entries of
    `datasets` and their owners among the first `size` entries, each with its inclusion
    proof under the tree of `size` entries (`LoggedEntry` documents)."""
    names = sorted(set(datasets))
    with transaction(consortium.sessions) as session:
        owners = set(session.scalars(select(DatasetRow.member).where(DatasetRow.name.in_(names))))
        rows = list(
            session.execute(
                select(LedgerEntryRow.seq, LedgerEntryRow.leaf)
                .where(
                    LedgerEntryRow.seq < size,
                    or_(
                        (LedgerEntryRow.kind == "dataset.registered")
                        & LedgerEntryRow.dataset.in_(names),
                        LedgerEntryRow.kind.in_(("member.joined", "member.key-rotated"))
                        & LedgerEntryRow.actor.in_(owners),
                    ),
                )
                .order_by(LedgerEntryRow.seq)
            )
        )
    tree = consortium.ledger.tree()
    return [
        LoggedEntry(seq, leaf, tuple(p.hex() for p in tree.inclusion_proof(seq, size))).document()
        for seq, leaf in rows
    ]


def evidence_for_nodes(
    consortium: Consortium, sites: dict[str, tuple[NodePort, str]]
) -> dict[str, list[dict[str, Any]]]:
    """dataset -> the evidence its node needs, under the head that node witnessed.

    `sites`: dataset -> (its node, its member). The participating members' nodes witness the
    latest head first; a node that refuses to witness keeps its older head, and its proofs
    are made for that head's size (it then refuses any peer entry beyond it).
    """
    witness_all(consortium, members={member for _, member in sites.values()})
    evidence = {}
    for dataset, (node, _) in sites.items():
        head = node.last_witnessed()
        evidence[dataset] = identity_evidence(consortium, sites, head.size) if head else []
    return evidence


def rotation_evidence(consortium: Consortium, member: str, size: int) -> list[dict[str, Any]]:
    """`member`'s `member.key-rotated` entries among the first `size` entries, each with its
    inclusion proof under the tree of `size` entries: what a witness that pins `member`'s
    old key checks before it follows the new one (kumiai.domain.witness_rotation)."""
    latest = latest_head(consortium)
    if not 0 < size <= latest.size:
        raise NotFound(
            f"the latest signed tree head has {latest.size} entries; ask for rotation proofs "
            f"under a size from 1 to {latest.size}, not {size}"
        )
    with transaction(consortium.sessions) as session:
        rows = list(
            session.execute(
                select(LedgerEntryRow.seq, LedgerEntryRow.leaf)
                .where(
                    LedgerEntryRow.seq < size,
                    LedgerEntryRow.kind == "member.key-rotated",
                    LedgerEntryRow.actor == member,
                )
                .order_by(LedgerEntryRow.seq)
            )
        )
    tree = consortium.ledger.tree()
    return [
        LoggedEntry(seq, leaf, tuple(p.hex() for p in tree.inclusion_proof(seq, size))).document()
        for seq, leaf in rows
    ]
