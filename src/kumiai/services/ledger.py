"""The transparency ledger: every governance act, signed by its actor, in an RFC 6962 log.

Entries are written in the same database transaction as the change they record, so the
tables and the log can never disagree. When a transaction that appended entries commits,
the coordinator signs a tree head for the new size in that same transaction.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from kumiai.adapters.storage.schema import LedgerEntryRow, TreeHeadRow
from kumiai.domain import merkle
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import (
    KINDS,
    Entry,
    SignedEntry,
    TreeHead,
    sign_head,
)

EntrySigner = Callable[[Entry], SignedEntry]  # signs as the entry's actor, wherever its key is
CoordinatorKey = Callable[[], Ed25519PrivateKey]
_PENDING = "kumiai-ledger-pending"
_SYNCED = "kumiai-ledger-synced"
_LOCKED = "kumiai-ledger-locked"
# PostgreSQL: the advisory lock every appending transaction holds until it ends, so that two
# coordinator processes give one gap-free sequence. (SQLite's BEGIN IMMEDIATE already does.)
_APPEND_LOCK = 0x6B756D6961  # "kumia"


@dataclass(frozen=True)
class Act:
    """One act to record: who, what, about which subjects."""

    actor: str
    kind: str
    payload: dict[str, Any]
    member: str | None = None
    dataset: str | None = None
    project: str | None = None


class Ledger:
    """Appends signed entries and seals each transaction with a signed tree head."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sign: EntrySigner,
        coordinator_key: CoordinatorKey,
    ) -> None:
        self.sessions = sessions
        self._sign = sign
        self._coordinator_key = coordinator_key
        self._tree: merkle.MerkleTree | None = None
        event.listen(sessions, "before_commit", self._seal)
        event.listen(sessions, "after_rollback", self._forget)

    # -- the in-memory tree, kept in step with the table ---------------------------------
    def _sync(self, session: Session) -> merkle.MerkleTree:
        if session.info.get(_SYNCED) and self._tree is not None:
            return self._tree
        stored = session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0
        if self._tree is None or self._tree.size > stored:
            self._tree = merkle.MerkleTree(
                session.scalars(select(LedgerEntryRow.leaf_hash).order_by(LedgerEntryRow.seq))
            )
        elif self._tree.size < stored:  # another process appended since we last looked
            self._tree.extend(
                session.scalars(
                    select(LedgerEntryRow.leaf_hash)
                    .where(LedgerEntryRow.seq >= self._tree.size)
                    .order_by(LedgerEntryRow.seq)
                )
            )
        session.info[_SYNCED] = True
        return self._tree

    def tree(self) -> merkle.MerkleTree:
        with self.sessions() as session:
            session.info.pop(_SYNCED, None)
            return self._sync(session)

    def _forget(self, session: Session) -> None:
        if session.info.pop(_PENDING, False):
            self._tree = None  # entries of the rolled-back transaction are in memory only
        session.info.pop(_SYNCED, None)
        session.info.pop(_LOCKED, None)

    def _lock(self, session: Session) -> None:
        """Hold the append lock from the first append to the transaction's end (PostgreSQL).

        What was read before the lock may be stale: the tree is read again under it.
        """
        if session.info.get(_LOCKED) or session.get_bind().dialect.name != "postgresql":
            return
        session.execute(select(func.pg_advisory_xact_lock(_APPEND_LOCK)))
        session.info[_LOCKED] = True
        session.info.pop(_SYNCED, None)

    # -- appending -----------------------------------------------------------------------
    def append(self, session: Session, act: Act, at: datetime | None = None) -> SignedEntry:
        return self.append_many(session, [act], at)[-1]

    def append_many(
        self, session: Session, acts: list[Act], at: datetime | None = None
    ) -> list[SignedEntry]:
        """Sign and insert acts in order, inside the caller's transaction.

        `at`: the entry time, when the act's own rules were checked at that moment (a
        motion's closing time is counted from it, and a replay recomputes it from the entry).
        """
        self._lock(session)
        tree = self._sync(session)
        now = at or utc_now()
        rows: list[dict[str, Any]] = []
        signed_entries: list[SignedEntry] = []
        for act in acts:
            if act.kind not in KINDS:
                raise InvalidInput(f"unknown ledger entry kind {act.kind!r}")
            signed = self._sign(Entry(tree.size, now, act.actor, act.kind, act.payload))
            leaf = signed.leaf_bytes()
            digest = merkle.leaf_hash(leaf)
            rows.append(
                {
                    "seq": tree.size,
                    "kind": act.kind,
                    "actor": act.actor,
                    "time": now,
                    "member": act.member,
                    "dataset": act.dataset,
                    "project": act.project,
                    "leaf": leaf.decode(),
                    "leaf_hash": digest,
                }
            )
            tree.append(digest)
            signed_entries.append(signed)
        session.execute(insert(LedgerEntryRow), rows)
        session.info[_PENDING] = True
        return signed_entries

    def _seal(self, session: Session) -> None:
        """Before the commit: the coordinator signs the head of the log as it now stands."""
        session.info.pop(_LOCKED, None)
        if not session.info.pop(_PENDING, False) or self._tree is None:
            return
        head = sign_head(
            TreeHead(self._tree.size, self._tree.root().hex(), utc_now()),
            self._coordinator_key(),
        )
        session.merge(TreeHeadRow(size=head.size, document=head.to_json()))
        session.flush()

    # -- reading -------------------------------------------------------------------------
    def latest_head(self, session: Session) -> TreeHead | None:
        row = session.scalars(select(TreeHeadRow).order_by(TreeHeadRow.size.desc())).first()
        return TreeHead.from_json(row.document) if row else None


def coordinator_key_path(home: Path) -> Path:
    return home / "coordinator" / "key.pem"
