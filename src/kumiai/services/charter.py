"""The charter: proposed once, signed by every founder at its node, then amended by vote.

Each founder's signature is a ledger entry its own node signs (`port.sign_entry`) over the
charter's digest; the coordinator records the adoption in the transaction of the last one.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import CharterRow, CharterSignatureRow, MemberRow
from kumiai.domain.charter import Charter, Decision, Fraction, Rule, founding_charter
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


@dataclass(frozen=True)
class CharterInfo:
    version: int
    digest: str
    status: str  # proposed, adopted, superseded
    proposed_by: str
    proposed_at: datetime
    adopted_at: datetime | None
    motion: str | None
    signed_by: tuple[str, ...]
    awaiting: tuple[str, ...]  # founders yet to sign (version 1 only)
    document: dict[str, Any]


def adopted_charter(session: Session) -> Charter | None:
    """The charter in force: the newest adopted version, or None before adoption."""
    row = session.scalars(
        select(CharterRow)
        .where(CharterRow.adopted_at.is_not(None))
        .order_by(CharterRow.version.desc())
    ).first()
    return Charter.from_document(json.loads(row.document)) if row else None


def charter_version(session: Session, version: int) -> Charter:
    row = session.get(CharterRow, version)
    if row is None:
        raise NotFound(f"unknown charter version {version}; see `kumiai charter show`")
    return Charter.from_document(json.loads(row.document))


def _info(session: Session, row: CharterRow, newest_adopted: int | None) -> CharterInfo:
    signed = tuple(
        session.scalars(
            select(CharterSignatureRow.member)
            .where(CharterSignatureRow.version == row.version)
            .order_by(CharterSignatureRow.member)
        )
    )
    document = json.loads(row.document)
    awaiting = () if row.version > 1 else tuple(f for f in document["founders"] if f not in signed)
    if row.adopted_at is None:
        status = "proposed"
    else:
        status = "adopted" if row.version == newest_adopted else "superseded"
    return CharterInfo(
        row.version,
        row.digest,
        status,
        row.proposed_by,
        row.proposed_at,
        row.adopted_at,
        row.motion,
        signed,
        awaiting,
        document,
    )


def _newest_adopted(session: Session) -> int | None:
    return session.scalars(
        select(CharterRow.version)
        .where(CharterRow.adopted_at.is_not(None))
        .order_by(CharterRow.version.desc())
    ).first()


def propose_charter(
    consortium: Consortium,
    *,
    proposed_by: str,
    founders: tuple[str, ...] = (),
    seats: tuple[str, ...] = (),
    rules: dict[Decision, Rule] | None = None,
    association_share: Fraction | None = None,
) -> CharterInfo:
    """Version 1, to be signed by every founder (by default every member today).

    `association_share`: the association's cut of each royalty (None: the default)."""
    with transaction(consortium.sessions) as session:
        if session.get(CharterRow, 1) is not None:
            raise StateError(
                "a charter is already proposed; its founders sign it with `kumiai charter sign`, "
                "and later versions are adopted by an amend-charter motion"
            )
        get(session, MemberRow, proposed_by)
        founders = founders or tuple(session.scalars(select(MemberRow.name)))
        for member in {*founders, *seats}:
            get(session, MemberRow, member)
        if proposed_by not in founders:
            raise InvalidInput(f"{proposed_by!r} proposes the charter but is not a founder")
        charter = founding_charter(founders, seats, rules, association_share)
        document = charter.document()
        session.add(
            CharterRow(
                version=1,
                document=json.dumps(document, sort_keys=True),
                digest=charter.digest(),
                proposed_by=proposed_by,
                proposed_at=utc_now(),
            )
        )
        session.flush()
        payload = {"charter": document, "digest": charter.digest()}
        consortium.ledger.append(
            session, Act(proposed_by, "charter.proposed", payload, member=proposed_by)
        )
        return _info(session, get_charter_row(session, 1), None)


def get_charter_row(session: Session, version: int) -> CharterRow:
    row = session.get(CharterRow, version)
    if row is None:
        raise NotFound(
            f"no charter version {version}; propose one with `kumiai charter propose --by MEMBER`"
        )
    return row


def sign_charter(consortium: Consortium, member: str) -> CharterInfo:
    """A founder signs version 1 at its node; the last signature adopts it."""
    with transaction(consortium.sessions) as session:
        row = get_charter_row(session, 1)
        get(session, MemberRow, member)
        document = json.loads(row.document)
        if member not in document["founders"]:
            raise InvalidInput(
                f"{member!r} is not a founder of the charter; its founders are "
                + ", ".join(document["founders"])
            )
        if row.adopted_at is not None:
            raise StateError("the charter is already adopted; amend it by an amend-charter motion")
        if session.get(CharterSignatureRow, (1, member)) is not None:
            raise InvalidInput(f"{member!r} has already signed the charter")
        now = utc_now()
        session.add(CharterSignatureRow(version=1, member=member, signed_at=now))
        session.flush()
        acts = [Act(member, "charter.signed", {"version": 1, "digest": row.digest}, member=member)]
        info = _info(session, row, None)
        if not info.awaiting:
            row.adopted_at = now
            acts.append(
                Act(
                    COORDINATOR,
                    "charter.adopted",
                    {"version": 1, "digest": row.digest, "signers": list(info.signed_by)},
                )
            )
        consortium.ledger.append_many(session, acts)
        return _info(session, row, _newest_adopted(session))


def adopt_amendment(
    consortium: Consortium, session: Session, charter: Charter, motion: str, proposer: str
) -> None:
    """Carry out a passed amend-charter motion: the new version is in force from now."""
    now = utc_now()
    session.add(
        CharterRow(
            version=charter.version,
            document=json.dumps(charter.document(), sort_keys=True),
            digest=charter.digest(),
            proposed_by=proposer,
            proposed_at=now,
            adopted_at=now,
            motion=motion,
        )
    )
    session.flush()
    payload = {"version": charter.version, "digest": charter.digest(), "motion": motion}
    consortium.ledger.append(session, Act(COORDINATOR, "charter.adopted", payload))


def show_charter(consortium: Consortium, version: int | None = None) -> CharterInfo:
    """The charter in force (or the one being signed), or the version asked for."""
    with transaction(consortium.sessions) as session:
        newest = _newest_adopted(session)
        wanted = version if version is not None else (newest or 1)
        return _info(session, get_charter_row(session, wanted), newest)


def list_charters(consortium: Consortium) -> list[CharterInfo]:
    with transaction(consortium.sessions) as session:
        newest = _newest_adopted(session)
        rows = session.scalars(select(CharterRow).order_by(CharterRow.version))
        return [_info(session, row, newest) for row in rows]
