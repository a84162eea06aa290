"""Licences: a grant-licence motion proposes one; when it passes, the licence is granted.

The terms the board votes on are the terms `licence.granted` records and every royalty is
computed from (domain.licence); the licensee does not vote on its own licence (charter).
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    LicenceRow,
    MemberRow,
    ModelVersionRow,
    MotionRow,
    RevenueReportRow,
)
from kumiai.domain.charter import Decision
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.licence import LicenceTerms, licence_terms
from kumiai.domain.names import check_slug
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get

if TYPE_CHECKING:
    from kumiai.services.motions import MotionInfo


@dataclass(frozen=True)
class RevenueLine:
    period: str
    revenue_yen: int
    royalty_yen: int
    association_yen: int
    payouts: dict[str, int]
    contributions_seq: int
    reported_at: datetime


@dataclass(frozen=True)
class LicenceInfo:
    licence: str
    licensee: str
    model: str
    terms: dict[str, Any]
    motion: str
    granted_at: datetime
    revenue: list[RevenueLine]


def get_licence(session: Session, licence: str) -> LicenceRow:
    row = session.get(LicenceRow, licence)
    if row is None:
        raise NotFound(f"unknown licence {licence!r}; see `kumiai licence list`")
    return row


def check_licence(session: Session, payload: dict[str, Any]) -> LicenceTerms:
    """The act must be possible: a new licence id, a known licensee, a released model, terms."""
    licence, terms = payload.get("licence"), payload.get("terms")
    if not isinstance(licence, str) or terms is None:
        raise InvalidInput(
            "a grant-licence motion names its licence and terms; propose it with "
            "`kumiai licence propose MODEL --licensee M ...`"
        )
    check_slug(licence, "licence")
    if session.get(LicenceRow, licence) is not None:
        raise StateError(f"licence {licence!r} is already granted")
    if not isinstance(payload["licensee"], str):
        raise InvalidInput("the licensee must be a member's name")
    get(session, MemberRow, payload["licensee"])
    if not isinstance(payload["model"], str):
        raise InvalidInput("the model must be a released model version's id")
    get(session, ModelVersionRow, payload["model"])  # a row here is a released version
    return LicenceTerms.from_document(terms)


def propose_licence(
    consortium: Consortium,
    *,
    model: str,
    licensee: str,
    field_of_use: str,
    territory: str,
    starts: str,
    ends: str,
    royalty_bp: int,
    restrictions: tuple[str, ...] = (),
    proposer: str,
) -> "MotionInfo":
    """A grant-licence motion naming the next licence id, `licence-N`."""
    from kumiai.services.motions import propose_motion  # motions carries out licences

    terms = licence_terms(
        field_of_use=field_of_use,
        territory=territory,
        starts=starts,
        ends=ends,
        royalty_rate_bp=royalty_bp,
        restrictions=restrictions,
    )
    with transaction(consortium.sessions) as session:
        proposed = session.scalar(
            select(func.count())
            .select_from(MotionRow)
            .where(MotionRow.decision == Decision.GRANT_LICENCE.value)
        )
    payload = {
        "licence": f"licence-{(proposed or 0) + 1}",
        "licensee": licensee,
        "model": model,
        "terms": terms.document(),
    }
    return propose_motion(
        consortium, decision=Decision.GRANT_LICENCE.value, payload=payload, proposer=proposer
    )


def grant_by_motion(
    consortium: Consortium, session: Session, payload: dict[str, Any], motion: str
) -> None:
    """Carry out a passed grant-licence motion, inside the transaction that closes it."""
    terms = check_licence(session, payload)
    model = get(session, ModelVersionRow, payload["model"])
    row = LicenceRow(
        id=payload["licence"],
        licensee=payload["licensee"],
        model=model.id,
        terms_json=json.dumps(terms.document()),
        motion=motion,
        granted_at=utc_now(),
    )
    session.add(row)
    session.flush()
    entry = {
        "licence": row.id,
        "licensee": row.licensee,
        "model": row.model,
        "terms": terms.document(),
        "motion": motion,
    }
    consortium.ledger.append(
        session,
        Act(COORDINATOR, "licence.granted", entry, member=row.licensee, project=model.project),
    )


def _info(session: Session, row: LicenceRow) -> LicenceInfo:
    reports = session.scalars(
        select(RevenueReportRow)
        .where(RevenueReportRow.licence == row.id)
        .order_by(RevenueReportRow.period)
    )
    return LicenceInfo(
        row.id,
        row.licensee,
        row.model,
        json.loads(row.terms_json),
        row.motion,
        row.granted_at,
        [
            RevenueLine(
                r.period,
                r.revenue_yen,
                r.royalty_yen,
                r.association_yen,
                json.loads(r.payouts_json),
                r.contributions_seq,
                r.reported_at,
            )
            for r in reports
        ],
    )


def list_licences(consortium: Consortium) -> list[LicenceInfo]:
    with transaction(consortium.sessions) as session:
        rows = session.scalars(select(LicenceRow).order_by(LicenceRow.granted_at, LicenceRow.id))
        return [_info(session, r) for r in rows]


def show_licence(consortium: Consortium, licence: str) -> LicenceInfo:
    with transaction(consortium.sessions) as session:
        return _info(session, get_licence(session, licence))
