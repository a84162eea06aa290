"""Data-use requests and the agreements stewards sign, refuse or revoke.

The steward's node is the authority: it signs with its own key (the coordinator asks, through
the node port, and receives the signed document), keeps the document, and is told of a
revocation first. The
coordinator's tables mirror both so researchers and auditors can see them.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    AgreementRow,
    DatasetRow,
    MemberRow,
    ProjectMemberRow,
    ProjectRow,
    RequestRow,
)
from kumiai.domain.agreement import AgreementTerms
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.disclosure import ALLOWED, check_min_cohort, check_statistics_mode
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.job import parse_job_kinds
from kumiai.domain.privacy import check_epsilon_cap
from kumiai.domain.project import ProjectStatus, require_active
from kumiai.domain.schema import ColumnType, compare_schemas
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import all_rows, get, project_datasets


@dataclass(frozen=True)
class RequestInfo:
    id: str
    project: str
    dataset: str
    steward: str
    requested_by: str
    purpose: str
    job_kinds: tuple[str, ...]
    max_rounds: int
    expires_at: datetime
    status: str
    refusal_reason: str | None
    epsilon_cap: float | None
    aggregate_statistics: str = "allowed"
    min_cohort: int = 0
    contribution_analysis: bool = False


@dataclass(frozen=True)
class AgreementInfo:
    id: str
    request_id: str
    project: str
    dataset: str
    steward: str
    signed_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


def _request_info(session, row: RequestRow) -> RequestInfo:  # type: ignore[no-untyped-def]
    steward = get(session, DatasetRow, row.dataset).member
    return RequestInfo(
        row.id,
        row.project,
        row.dataset,
        steward,
        row.requested_by,
        row.purpose,
        tuple(row.job_kinds.split(",")),
        row.max_rounds,
        row.expires_at,
        row.status,
        row.refusal_reason,
        row.epsilon_cap,
        row.aggregate_statistics,
        row.min_cohort,
        row.contribution_analysis,
    )


def _agreement_info(row: AgreementRow) -> AgreementInfo:
    return AgreementInfo(
        row.id,
        row.request_id,
        row.project,
        row.dataset,
        row.steward,
        row.signed_at,
        row.expires_at,
        row.revoked_at,
        row.revocation_reason,
    )


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def request_data_use(
    consortium: Consortium,
    *,
    project: str,
    dataset: str,
    requested_by: str,
    job_kinds: str | tuple[str, ...] = "train,evaluate",
    max_rounds: int = 50,
    expires_at: datetime,
    epsilon_cap: float | None = None,
    plain_aggregation: bool = False,
    aggregate_statistics: str = ALLOWED,
    min_cohort: int = 0,
    contribution_analysis: bool = False,
    request_id: str | None = None,
) -> RequestInfo:
    """Ask a dataset's steward to let a project use it, for the project's stated purpose.

    `request_id` is chosen by a researcher's node acting through the API, so that the entry
    it signs is the same bytes in every round (services.signed_acts)."""
    kinds = parse_job_kinds(job_kinds)
    check_statistics_mode(aggregate_statistics)
    check_min_cohort(min_cohort)
    if epsilon_cap is not None:
        epsilon_cap = check_epsilon_cap(epsilon_cap)
    if max_rounds < 1:
        raise InvalidInput(f"max rounds must be at least 1 (got {max_rounds})")
    if expires_at <= utc_now():
        raise InvalidInput(f"expiry {to_iso(expires_at)} is in the past; give a future date")
    with transaction(consortium.sessions) as session:
        project_row = get(session, ProjectRow, project)
        require_active(project, ProjectStatus(project_row.status))
        dataset_row = get(session, DatasetRow, dataset)
        get(session, MemberRow, requested_by)
        if session.get(ProjectMemberRow, (project, requested_by)) is None:
            raise InvalidInput(
                f"{requested_by!r} is not a member of project {project!r}; only "
                "its members may request data for it"
            )
        others = [d for d in project_datasets(session, project) if d.name != dataset]
        compare_schemas(
            {
                d.name: {c: ColumnType(t) for c, t in json.loads(d.schema_json).items()}
                for d in [*others, dataset_row]
            }
        )
        row = RequestRow(
            id=request_id or _new_id("req"),
            project=project,
            dataset=dataset,
            requested_by=requested_by,
            purpose=project_row.purpose,
            job_kinds=",".join(k.value for k in kinds),
            max_rounds=max_rounds,
            expires_at=expires_at,
            epsilon_cap=epsilon_cap,
            plain_aggregation=plain_aggregation,
            aggregate_statistics=aggregate_statistics,
            min_cohort=min_cohort,
            contribution_analysis=contribution_analysis,
            status="pending",
            created_at=utc_now(),
        )
        session.add(row)
        session.flush()
        info = _request_info(session, row)
        payload = {
            "request": row.id,
            "project": project,
            "dataset": dataset,
            "steward": info.steward,
            "purpose": row.purpose,
            "job_kinds": list(info.job_kinds),
            "max_rounds": max_rounds,
            "expires_at": to_iso(expires_at),
            "epsilon_cap": epsilon_cap,
            "plain_aggregation": plain_aggregation,
            "aggregate_statistics": aggregate_statistics,
            "min_cohort": min_cohort,
            "contribution_analysis": contribution_analysis,
        }
        consortium.ledger.append(
            session,
            Act(
                requested_by,
                "request.made",
                payload,
                member=requested_by,
                dataset=dataset,
                project=project,
            ),
        )
        return info


def _pending(session, request_id: str) -> RequestRow:  # type: ignore[no-untyped-def]
    row = get(session, RequestRow, request_id)
    if row.status != "pending":
        raise StateError(f"request {request_id} is already {row.status}; a steward decides once")
    return row


def sign_request(
    consortium: Consortium, request_id: str, agreement_id: str | None = None
) -> AgreementInfo:
    """The dataset's steward signs the request's terms at its own node, with its own key.

    `agreement_id`: chosen by a node that signs on its own machine, so the terms it is shown
    and the terms it signs are the same bytes (services.steward_acts).
    """
    with transaction(consortium.sessions) as session:
        request = _pending(session, request_id)
        steward = get(session, DatasetRow, request.dataset).member
        now = utc_now()
        terms = AgreementTerms(
            agreement_id=agreement_id or _new_id("agr"),
            request_id=request.id,
            project=request.project,
            dataset=request.dataset,
            steward=steward,
            purpose=request.purpose,
            job_kinds=parse_job_kinds(request.job_kinds),
            max_rounds=request.max_rounds,
            expires_at=request.expires_at,
            signed_at=now,
            epsilon_cap=request.epsilon_cap,
            plain_aggregation=request.plain_aggregation,
            aggregate_statistics=request.aggregate_statistics,
            min_cohort=request.min_cohort,
            contribution_analysis=request.contribution_analysis,
        )
        node = consortium.node(steward)
        signed = node.sign_agreement(terms)
        node.store_agreement(signed)
        request.status, request.decided_at = "signed", now
        row = AgreementRow(
            id=terms.agreement_id,
            request_id=request.id,
            project=request.project,
            dataset=request.dataset,
            steward=steward,
            document=signed.to_json(),
            signed_at=now,
            expires_at=request.expires_at,
        )
        session.add(row)
        payload = {"agreement": terms.payload(), "signature": signed.signature}
        consortium.ledger.append(
            session,
            Act(
                steward,
                "agreement.signed",
                payload,
                member=steward,
                dataset=request.dataset,
                project=request.project,
            ),
        )
        return _agreement_info(row)


def refuse_request(consortium: Consortium, request_id: str, reason: str) -> RequestInfo:
    if not reason.strip():
        raise InvalidInput("give a reason for the refusal; the researcher will read it")
    with transaction(consortium.sessions) as session:
        request = _pending(session, request_id)
        request.status, request.decided_at = "refused", utc_now()
        request.refusal_reason = reason.strip()
        info = _request_info(session, request)
        payload = {"request": request.id, "reason": request.refusal_reason}
        consortium.ledger.append(
            session,
            Act(
                info.steward,
                "request.refused",
                payload,
                member=info.steward,
                dataset=request.dataset,
                project=request.project,
            ),
        )
        return info


def revoke_agreement(consortium: Consortium, agreement_id: str, reason: str) -> AgreementInfo:
    """Revocation is written to the steward's node first: from then on the node refuses."""
    with transaction(consortium.sessions) as session:
        row = get(session, AgreementRow, agreement_id)
        if row.revoked_at is not None:
            raise StateError(
                f"agreement {agreement_id} was already revoked at {to_iso(row.revoked_at)}"
            )
        now = utc_now()
        consortium.node(row.steward).revoke(agreement_id, to_iso(now), reason)
        row.revoked_at, row.revocation_reason = now, reason or "revoked by the steward"
        payload = {"agreement": agreement_id, "reason": row.revocation_reason}
        consortium.ledger.append(
            session,
            Act(
                row.steward,
                "agreement.revoked",
                payload,
                member=row.steward,
                dataset=row.dataset,
                project=row.project,
            ),
        )
        return _agreement_info(row)


def list_requests(consortium: Consortium, project: str | None = None) -> list[RequestInfo]:
    with transaction(consortium.sessions) as session:
        rows = all_rows(session, RequestRow, RequestRow.created_at)
        return [_request_info(session, r) for r in rows if project in (None, r.project)]


def list_agreements(consortium: Consortium, project: str | None = None) -> list[AgreementInfo]:
    with transaction(consortium.sessions) as session:
        rows = all_rows(session, AgreementRow, AgreementRow.signed_at)
        return [_agreement_info(r) for r in rows if project in (None, r.project)]


def agreements_for_job(session, project: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The newest agreement document per dataset of a project, as the coordinator holds them.

    Revoked ones are included on purpose: the node, not the coordinator, decides to refuse.
    """
    rows = session.scalars(
        select(AgreementRow).where(AgreementRow.project == project).order_by(AgreementRow.signed_at)
    ).all()
    return {r.dataset: r.document for r in rows}
