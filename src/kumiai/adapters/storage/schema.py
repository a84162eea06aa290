"""The coordinator's governance tables (SQLAlchemy 2). Migrations live in ./migrations."""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no time zones) and always hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime; kumiai stores UTC only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class MemberRow(Base):
    __tablename__ = "members"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    public_key: Mapped[str] = mapped_column(String(64))
    key_fingerprint: Mapped[str] = mapped_column(String(16))
    home: Mapped[str] = mapped_column(Text)
    joined_at: Mapped[datetime]
    # the node's SuperNode authentication key (OpenSSH), registered with the SuperLink
    supernode_key: Mapped[str | None] = mapped_column(Text, default=None)


class DatasetRow(Base):
    """Catalogue metadata only: the rows stay on the member's node."""

    __tablename__ = "datasets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    member: Mapped[str] = mapped_column(ForeignKey("members.name"))
    schema_json: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    sensitivity: Mapped[str] = mapped_column(String(20))
    registered_at: Mapped[datetime]
    epsilon_budget: Mapped[float | None]  # mirror of the steward's lifetime budget (display)


class ProjectRow(Base):
    __tablename__ = "projects"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[str] = mapped_column(ForeignKey("members.name"))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("members.name"))
    approved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class ProjectMemberRow(Base):
    __tablename__ = "project_members"
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"), primary_key=True)
    member: Mapped[str] = mapped_column(ForeignKey("members.name"), primary_key=True)


class RequestRow(Base):
    """A researcher's data-use request, awaiting the dataset steward's signature or refusal."""

    __tablename__ = "data_requests"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"))
    requested_by: Mapped[str] = mapped_column(ForeignKey("members.name"))
    purpose: Mapped[str] = mapped_column(Text)
    job_kinds: Mapped[str] = mapped_column(Text)
    max_rounds: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    epsilon_cap: Mapped[float | None]
    plain_aggregation: Mapped[bool] = mapped_column(default=False)
    aggregate_statistics: Mapped[str] = mapped_column(String(12), default="allowed")
    min_cohort: Mapped[int] = mapped_column(Integer, default=0)
    contribution_analysis: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    refusal_reason: Mapped[str | None] = mapped_column(Text)


class AgreementRow(Base):
    """Mirror of an agreement the steward signed; `document` is the signed canonical JSON."""

    __tablename__ = "agreements"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("data_requests.id"), unique=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"))
    steward: Mapped[str] = mapped_column(ForeignKey("members.name"))
    document: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(Text)


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    spec_json: Mapped[str] = mapped_column(Text)
    planned_rounds: Mapped[int] = mapped_column(Integer)
    completed_rounds: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)


class JobSiteRow(Base):
    """Whether each dataset's node took part in a job, and if not, the node's own reason."""

    __tablename__ = "job_sites"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"), primary_key=True)
    member: Mapped[str] = mapped_column(ForeignKey("members.name"))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)


class JobRoundRow(Base):
    __tablename__ = "job_rounds"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    metrics_json: Mapped[str] = mapped_column(Text)
    seconds: Mapped[float]
    recorded_at: Mapped[datetime]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project", "version"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    strategy: Mapped[str] = mapped_column(String(20))
    feature_plan_json: Mapped[str] = mapped_column(Text)
    parameters: Mapped[bytes] = mapped_column(LargeBinary)
    metrics_json: Mapped[str] = mapped_column(Text)
    lineage_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class LedgerEntryRow(Base):
    """One signed act. `leaf` is the exact canonical JSON hashed into the Merkle tree."""

    __tablename__ = "ledger_entries"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(63), index=True)
    time: Mapped[datetime]
    member: Mapped[str | None] = mapped_column(String(63), index=True)
    dataset: Mapped[str | None] = mapped_column(String(63), index=True)
    project: Mapped[str | None] = mapped_column(String(63), index=True)
    leaf: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeHeadRow(Base):
    """A tree head the coordinator signed after a commit."""

    __tablename__ = "tree_heads"
    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[str] = mapped_column(Text)


class CosignatureRow(Base):
    """A witness node's signature on a tree head it checked for consistency."""

    __tablename__ = "cosignatures"
    size: Mapped[int] = mapped_column(ForeignKey("tree_heads.size"), primary_key=True)
    witness: Mapped[str] = mapped_column(String(63), primary_key=True)
    signature: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime]


class PrivacySpendRow(Base):
    """Mirror of each node's spend for a job, for display only: the node's log is the record."""

    __tablename__ = "privacy_spend"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("datasets.name"), primary_key=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    planned: Mapped[float]
    spent: Mapped[float]
    delta: Mapped[float]
    noise_multiplier: Mapped[float]
    rounds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # running, completed, ended
    level: Mapped[str] = mapped_column(String(10), server_default="record")  # or "client"
    # The node's latest signed attestation of its spend log, presented before the next job.
    attestation: Mapped[str | None] = mapped_column(Text, nullable=True)


class CharterRow(Base):
    """One version of the charter; `document` is the canonical JSON its digest covers."""

    __tablename__ = "charters"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    proposed_by: Mapped[str] = mapped_column(String(63))
    proposed_at: Mapped[datetime]
    adopted_at: Mapped[datetime | None]
    motion: Mapped[str | None] = mapped_column(String(20))  # the amend motion, after version 1


class CharterSignatureRow(Base):
    """A founder's signature on version 1 (the signed ledger entry is the signature)."""

    __tablename__ = "charter_signatures"
    version: Mapped[int] = mapped_column(ForeignKey("charters.version"), primary_key=True)
    member: Mapped[str] = mapped_column(ForeignKey("members.name"), primary_key=True)
    signed_at: Mapped[datetime]


class MotionRow(Base):
    __tablename__ = "motions"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    decision: Mapped[str] = mapped_column(String(30))
    payload_json: Mapped[str] = mapped_column(Text)
    proposer: Mapped[str] = mapped_column(ForeignKey("members.name"))
    charter_version: Mapped[int] = mapped_column(ForeignKey("charters.version"))
    digest: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))  # open, passed, failed
    closed_at: Mapped[datetime | None]
    tally_json: Mapped[str | None] = mapped_column(Text)


class VoteRow(Base):
    """A seat's vote; the signed ledger entry is the vote, this row its mirror."""

    __tablename__ = "votes"
    motion: Mapped[str] = mapped_column(ForeignKey("motions.id"), primary_key=True)
    member: Mapped[str] = mapped_column(ForeignKey("members.name"), primary_key=True)
    choice: Mapped[str] = mapped_column(String(10))
    cast_at: Mapped[datetime]


class SpinoutRow(Base):
    """A spin-out company created by a passed create-spinout motion; it is also a member."""

    __tablename__ = "spinouts"
    name: Mapped[str] = mapped_column(ForeignKey("members.name"), primary_key=True)
    founders_json: Mapped[str] = mapped_column(Text)
    theme: Mapped[str | None] = mapped_column(String(63))
    project: Mapped[str | None] = mapped_column(ForeignKey("projects.name"))
    motion: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class LicenceRow(Base):
    """A model version licensed by a passed grant-licence motion; terms as in licence.granted."""

    __tablename__ = "licences"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    licensee: Mapped[str] = mapped_column(ForeignKey("members.name"))
    model: Mapped[str] = mapped_column(ForeignKey("model_versions.id"))
    terms_json: Mapped[str] = mapped_column(Text)
    motion: Mapped[str] = mapped_column(String(20))
    granted_at: Mapped[datetime]


class RevenueReportRow(Base):
    """One period's revenue under a licence and the royalties distributed from it (yen)."""

    __tablename__ = "revenue_reports"
    licence: Mapped[str] = mapped_column(ForeignKey("licences.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    revenue_yen: Mapped[int] = mapped_column(BigInteger)
    royalty_yen: Mapped[int] = mapped_column(BigInteger)
    association_yen: Mapped[int] = mapped_column(BigInteger)
    payouts_json: Mapped[str] = mapped_column(Text)  # {member: yen}
    contributions_seq: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime]


class ThemeRow(Base):
    """A research theme; `rank` is its place in the board's latest set-priorities motion."""

    __tablename__ = "themes"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(ForeignKey("members.name"))
    created_at: Mapped[datetime]
    rank: Mapped[int | None] = mapped_column(Integer)
    ranked_by: Mapped[str | None] = mapped_column(String(20))  # the set-priorities motion


class ProjectThemeRow(Base):
    """The theme a project is under (at most one)."""

    __tablename__ = "project_themes"
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"), primary_key=True)
    theme: Mapped[str] = mapped_column(ForeignKey("themes.name"))


class FundReceiptRow(Base):
    """Money received into a source (dues, a grant, an investor): integer yen."""

    __tablename__ = "fund_receipts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    payer: Mapped[str] = mapped_column(Text)
    amount_yen: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class FundAllocationRow(Base):
    """Money a passed allocate-funds motion gave a project from a source."""

    __tablename__ = "fund_allocations"
    motion: Mapped[str] = mapped_column(ForeignKey("motions.id"), primary_key=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"), index=True)
    source: Mapped[str] = mapped_column(String(63), index=True)
    amount_yen: Mapped[int] = mapped_column(BigInteger)
    site_rounds: Mapped[int | None] = mapped_column(BigInteger)
    allocated_at: Mapped[datetime]


class SpendRow(Base):
    """Money a project's lead member says the project spent."""

    __tablename__ = "spends"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    amount_yen: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    spent_on: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    recorded_by: Mapped[str] = mapped_column(ForeignKey("members.name"))
    recorded_at: Mapped[datetime]


class MilestoneRow(Base):
    __tablename__ = "milestones"
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    due: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    set_by: Mapped[str] = mapped_column(ForeignKey("members.name"))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))  # open, accepted, rejected
    decided_at: Mapped[datetime | None]
    motion: Mapped[str | None] = mapped_column(String(20))  # the deciding motion


class MilestoneEvidenceRow(Base):
    """One piece of evidence: a model version, a job, or a document's SHA-256 (not the file)."""

    __tablename__ = "milestone_evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(63))
    milestone: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(10))  # model, job, document
    ref: Mapped[str] = mapped_column(Text)  # a model id, a job id, or a document's sha256
    name: Mapped[str | None] = mapped_column(Text)  # a document's file name
    added_at: Mapped[datetime]
    __table_args__ = (
        ForeignKeyConstraint(["project", "milestone"], ["milestones.project", "milestones.name"]),
    )


class RequestNonceRow(Base):
    """A signed API request's nonce, kept until its signature expires: a replay is refused.

    In the database, not in memory, so every coordinator worker refuses the same replay.
    """

    __tablename__ = "request_nonces"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    keyid: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AccessGrantRow(Base):
    """A key the operator registered for a read-only role (an auditor or an investor)."""

    __tablename__ = "access_grants"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    public_key: Mapped[str] = mapped_column(String(64))
    key_fingerprint: Mapped[str] = mapped_column(String(16), unique=True)
    granted_at: Mapped[datetime]


class InvitationRow(Base):
    """A one-time invitation to join: only the SHA-256 of its secret is kept."""

    __tablename__ = "invitations"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    member: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(20))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
