"""Milestones: the lead sets them, attaches evidence, and the board accepts or rejects them.

Evidence is a model version or a job of the project, or a document: only the document's
SHA-256 and file name are recorded, never the file, so a confidential report can be proven
later without being handed over. A milestone without evidence cannot go to the board.
"""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    JobRow,
    MemberRow,
    MilestoneEvidenceRow,
    MilestoneRow,
    ModelVersionRow,
    ProjectRow,
)
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.milestone import (
    EvidenceKind,
    MilestoneStatus,
    check_sha256,
    decision_of,
    parse_date,
    timing,
)
from kumiai.domain.names import check_slug
from kumiai.domain.project import ProjectStatus, require_lead
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get


@dataclass(frozen=True)
class Evidence:
    kind: str
    ref: str  # model id, job id, or the document's sha256
    name: str | None  # the document's file name
    added_at: datetime

    def document(self) -> dict[str, str]:
        if self.kind == EvidenceKind.DOCUMENT.value:
            return {"kind": self.kind, "sha256": self.ref, "name": self.name or ""}
        return {"kind": self.kind, "ref": self.ref}


@dataclass(frozen=True)
class MilestoneInfo:
    project: str
    name: str
    title: str
    due: str
    status: str  # open, accepted, rejected
    late: bool
    on_time: bool
    timing: str  # on time, late, due
    set_by: str
    decided_at: datetime | None
    motion: str | None
    evidence: tuple[Evidence, ...]


def _evidence(session: Session, project: str, name: str) -> tuple[Evidence, ...]:
    rows = session.scalars(
        select(MilestoneEvidenceRow)
        .where(MilestoneEvidenceRow.project == project, MilestoneEvidenceRow.milestone == name)
        .order_by(MilestoneEvidenceRow.id)
    )
    return tuple(Evidence(r.kind, r.ref, r.name, r.added_at) for r in rows)


def _info(session: Session, row: MilestoneRow, today: date) -> MilestoneInfo:
    accepted_on = (
        row.decided_at.date()
        if row.status == MilestoneStatus.ACCEPTED.value and row.decided_at
        else None
    )
    when = timing(date.fromisoformat(row.due), accepted_on, today)
    return MilestoneInfo(
        row.project,
        row.name,
        row.title,
        row.due,
        row.status,
        when.late,
        when.on_time,
        when.label,
        row.set_by,
        row.decided_at,
        row.motion,
        _evidence(session, row.project, row.name),
    )


def _get(session: Session, project: str, name: str) -> MilestoneRow:
    get(session, ProjectRow, project)
    row = session.get(MilestoneRow, (project, name))
    if row is None:
        raise NotFound(
            f"project {project!r} has no milestone {name!r}; see `kumiai milestone list {project}`"
        )
    return row


def add_milestone(
    consortium: Consortium, *, project: str, name: str, title: str, due: str, by: str
) -> MilestoneInfo:
    """The lead member sets a milestone; its node signs the `milestone.set` entry."""
    check_slug(name, "milestone")
    day = parse_date(due, "the due date")
    if not title.strip():
        raise InvalidInput(f"milestone {name!r} needs a title, e.g. --title 'First model'")
    with transaction(consortium.sessions) as session:
        row = get(session, ProjectRow, project)
        get(session, MemberRow, by)
        require_lead(project, row.proposed_by, by, "set its milestones")
        if row.status == ProjectStatus.CLOSED.value:
            raise StateError(f"project {project!r} is closed; it takes no new milestones")
        if session.get(MilestoneRow, (project, name)) is not None:
            raise InvalidInput(f"project {project!r} already has a milestone {name!r}")
        milestone = MilestoneRow(
            project=project,
            name=name,
            title=title.strip(),
            due=day.isoformat(),
            set_by=by,
            created_at=utc_now(),
            status=MilestoneStatus.OPEN.value,
        )
        session.add(milestone)
        session.flush()
        payload = {
            "project": project,
            "milestone": name,
            "title": title.strip(),
            "due": milestone.due,
        }
        consortium.ledger.append(
            session, Act(by, "milestone.set", payload, member=by, project=project)
        )
        return _info(session, milestone, utc_now().date())


def document_digest(path: Path) -> str:
    """The SHA-256 of a file, read in chunks; the file itself is not kept."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InvalidInput(f"cannot read the document {path} ({exc.strerror})") from None
    return digest.hexdigest()


def add_evidence(
    consortium: Consortium,
    *,
    project: str,
    name: str,
    by: str | None = None,
    models: tuple[str, ...] = (),
    jobs: tuple[str, ...] = (),
    documents: tuple[Path, ...] = (),
) -> MilestoneInfo:
    """The lead attaches evidence; the entry lists what this act added."""
    if not (models or jobs or documents):
        raise InvalidInput("name the evidence: --model ID, --job ID or --document FILE")
    hashed = [(check_sha256(document_digest(p)), p.name) for p in documents]
    with transaction(consortium.sessions) as session:
        row = _get(session, project, name)
        lead = get(session, ProjectRow, project)
        by = by or lead.proposed_by
        get(session, MemberRow, by)
        require_lead(project, lead.proposed_by, by, "add milestone evidence")
        if row.status == MilestoneStatus.ACCEPTED.value:
            raise StateError(f"milestone {name!r} of {project!r} is already accepted")
        items: list[tuple[EvidenceKind, str, str | None]] = []
        for model in models:
            if get(session, ModelVersionRow, model).project != project:
                raise InvalidInput(f"model {model!r} is not a model of project {project!r}")
            items.append((EvidenceKind.MODEL, model, None))
        for job in jobs:
            if get(session, JobRow, job).project != project:
                raise InvalidInput(f"job {job!r} is not a job of project {project!r}")
            items.append((EvidenceKind.JOB, job, None))
        items += [(EvidenceKind.DOCUMENT, digest, file) for digest, file in hashed]
        known = {(e.kind, e.ref) for e in _evidence(session, project, name)}
        repeated = [ref for kind, ref, _ in items if (kind.value, ref) in known]
        if repeated or len({(k, r) for k, r, _ in items}) != len(items):
            raise InvalidInput(f"this evidence is already attached: {', '.join(repeated)}")
        now = utc_now()
        added = []
        for kind, ref, file in items:
            session.add(
                MilestoneEvidenceRow(
                    project=project,
                    milestone=name,
                    kind=kind.value,
                    ref=ref,
                    name=file,
                    added_at=now,
                )
            )
            added.append(Evidence(kind.value, ref, file, now).document())
        session.flush()
        payload = {"project": project, "milestone": name, "evidence": added}
        consortium.ledger.append(
            session, Act(by, "milestone.evidence", payload, member=by, project=project)
        )
        return _info(session, row, now.date())


def list_milestones(
    consortium: Consortium, project: str | None = None, today: date | None = None
) -> list[MilestoneInfo]:
    today = today or utc_now().date()
    with transaction(consortium.sessions) as session:
        query = select(MilestoneRow).order_by(MilestoneRow.project, MilestoneRow.due)
        if project is not None:
            get(session, ProjectRow, project)
            query = query.where(MilestoneRow.project == project)
        return [_info(session, r, today) for r in session.scalars(query)]


def show_milestone(
    consortium: Consortium, project: str, name: str, today: date | None = None
) -> MilestoneInfo:
    with transaction(consortium.sessions) as session:
        return _info(session, _get(session, project, name), today or utc_now().date())


def check_decision_act(session: Session, payload: dict[str, Any]) -> MilestoneStatus:
    """An accept-milestone motion needs an undecided milestone with evidence."""
    outcome = decision_of(payload.get("reject"))
    row = _get(session, str(payload["project"]), str(payload["milestone"]))
    if row.status == MilestoneStatus.ACCEPTED.value:
        raise StateError(f"milestone {row.name!r} of {row.project!r} is already accepted")
    if not _evidence(session, row.project, row.name):
        raise InvalidInput(
            f"milestone {row.name!r} of {row.project!r} has no evidence; its lead attaches it "
            f"first: kumiai milestone evidence {row.project} {row.name} --model ID"
        )
    return outcome


def decide_by_motion(
    consortium: Consortium, session: Session, payload: dict[str, Any], motion: str
) -> None:
    """Carry out a passed accept-milestone motion: accepted, or rejected with reject=true."""
    outcome = check_decision_act(session, payload)
    row = _get(session, str(payload["project"]), str(payload["milestone"]))
    row.status, row.decided_at, row.motion = outcome.value, utc_now(), motion
    session.flush()
    kind = f"milestone.{outcome.value}"
    entry = {"project": row.project, "milestone": row.name, "motion": motion}
    consortium.ledger.append(session, Act(COORDINATOR, kind, entry, project=row.project))
