"""Privacy budgets: what a dataset has spent, what running jobs have committed, what is left.

The node keeps an append-only spend log per dataset. Each record is canonical JSON,
chained to the one before by its SHA-256 and signed with the node's key, so a forged,
edited, deleted or replayed record breaks the chain at a named line. Spend is counted in
ε per job (DP-SGD over that job's steps, accounted by dp-accounting) and added across jobs
and projects (basic composition: conservative).
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

from kumiai.domain.canonical import canonical_json, load_json, require_version
from kumiai.domain.errors import InvalidInput, UnsupportedVersion

GENESIS = "0" * 64
SPEND_TYPE = "kumiai.spend"
SPEND_VERSION = 2  # 2: signed as RFC 8785 canonical JSON
RESERVE, SPEND, RELEASE = "reserve", "spend", "release"


@dataclass(frozen=True)
class SpendRecord:
    """One line of a dataset's spend log.

    reserve: a job passed the budget check and holds its whole planned ε.
    spend: after round `round` the job has spent `epsilon` in total (cumulative).
    release: the job ended; whatever it did not spend is no longer held.
    """

    seq: int
    kind: str
    job: str
    project: str
    epsilon: float
    delta: float
    round: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # σ, q, steps... for the reserve
    prev: str = GENESIS

    def document(self) -> dict[str, Any]:
        return {
            "type": SPEND_TYPE,
            "version": SPEND_VERSION,
            "seq": self.seq,
            "kind": self.kind,
            "job": self.job,
            "project": self.project,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "round": self.round,
            "details": self.details,
            "prev": self.prev,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any], where: str = "this record") -> "SpendRecord":
        require_version(
            doc,
            SPEND_TYPE,
            SPEND_VERSION,
            what=where,
            fix=(
                "This kumiai cannot verify the old signatures, so it cannot count the budget: "
                "finish the dataset's jobs with the kumiai release that wrote the log."
            ),
        )
        return cls(
            int(doc["seq"]),
            str(doc["kind"]),
            str(doc["job"]),
            str(doc["project"]),
            float(doc["epsilon"]),
            float(doc["delta"]),
            int(doc["round"]),
            dict(doc["details"]),
            str(doc["prev"]),
        )


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def record_line(record: SpendRecord, signature: str) -> str:
    return canonical_json({"record": record.document(), "signature": signature}).decode()


@dataclass
class JobSpend:
    project: str
    reserved: float = 0.0
    spent: float = 0.0
    rounds: int = 0
    planned_rounds: int = 0
    released: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def committed(self) -> float:
        """Held for the rest of a running job."""
        return 0.0 if self.released else max(self.reserved - self.spent, 0.0)


@dataclass
class BudgetView:
    lifetime: float | None
    jobs: dict[str, JobSpend]

    @property
    def spent(self) -> float:
        return sum(j.spent for j in self.jobs.values())

    @property
    def committed(self) -> float:
        return sum(j.committed for j in self.jobs.values())

    def project_spent(self, project: str) -> float:
        return sum(j.spent for j in self.jobs.values() if j.project == project)

    def project_committed(self, project: str) -> float:
        return sum(j.committed for j in self.jobs.values() if j.project == project)

    @property
    def left(self) -> float | None:
        return None if self.lifetime is None else self.lifetime - self.spent - self.committed


def tally(lifetime: float | None, records: list[SpendRecord]) -> BudgetView:
    jobs: dict[str, JobSpend] = {}
    for r in records:
        job = jobs.setdefault(r.job, JobSpend(r.project))
        if r.kind == RESERVE:
            job.reserved, job.details = r.epsilon, dict(r.details)
            job.planned_rounds = int(r.details.get("rounds", 0))
        elif r.kind == SPEND:
            job.spent, job.rounds = max(job.spent, r.epsilon), max(job.rounds, r.round)
        elif r.kind == RELEASE:
            job.released = True
    return BudgetView(lifetime, jobs)


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    reason: str


def check_reservation(
    view: BudgetView, *, project: str, job: str, planned: float, agreement_cap: float | None
) -> BudgetDecision:
    """May this job hold `planned` ε? Checked against the project's cap and the lifetime."""
    if job in view.jobs:
        return BudgetDecision(False, f"job {job} already holds a reservation on this dataset")
    if agreement_cap is not None:
        used = view.project_spent(project) + view.project_committed(project)
        if used + planned > agreement_cap + 1e-12:
            return BudgetDecision(
                False,
                (
                    f"the job plans ε={planned:.3f}, but the agreement caps project {project!r} at "
                    f"ε={agreement_cap:g} and {used:.3f} is already spent or committed; at most "
                    f"{max(agreement_cap - used, 0):.3f} is left"
                ),
            )
    if view.lifetime is not None:
        left = view.lifetime - view.spent - view.committed
        if planned > left + 1e-12:
            return BudgetDecision(
                False,
                (
                    f"the job plans ε={planned:.3f}, but only {max(left, 0):.3f} of the dataset's "
                    f"lifetime budget ε={view.lifetime:g} is left (spent {view.spent:.3f}, "
                    f"committed {view.committed:.3f})"
                ),
            )
    return BudgetDecision(True, f"ε={planned:.3f} reserved")


def parse_log(
    lines: list[str], verify: Any, *, after: int = 0, prev: str = GENESIS
) -> list[SpendRecord]:
    """Records of a spend log, or InvalidInput naming the first line that breaks the chain.

    `verify(message_bytes, signature) -> bool` checks the node's signature. To go on from
    lines already verified, give their count (`after`) and the hash of the last (`prev`):
    `lines` are then the ones that follow.
    """
    records: list[SpendRecord] = []
    for number, line in enumerate(lines, start=after + 1):
        where = f"spend log line {number}"
        try:
            doc = load_json(line)
            record = SpendRecord.from_document(doc["record"], where)
            signature = str(doc["signature"])
        except UnsupportedVersion:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"{where} is malformed ({exc}); the spend log was tampered with "
                "or damaged; restore it from backup"
            ) from None
        if record.prev != prev or record.seq != number - 1:
            raise InvalidInput(
                f"{where} does not follow the line before it (a record was "
                "inserted, deleted, reordered or replayed); restore the spend "
                "log from backup"
            )
        if not verify(canonical_json(record.document()), signature):
            raise InvalidInput(
                f"{where} is not signed by this node (a forged record); restore "
                "the spend log from backup"
            )
        records.append(record)
        prev = line_hash(line)
    return records


# -- attestations: the node's signed word on how far its log had grown -----------------
ATTESTATION_TYPE = "kumiai.spend-attestation"


@dataclass(frozen=True)
class SpendAttestation:
    """How many lines a dataset's spend log had, and the hash of the last, signed by its node.

    The node hands one out with every reply that changed its log; the coordinator keeps the
    latest and presents it before the next private job. A log that no longer contains the
    attested line (lines deleted, or a backup restored) is caught before any budget check
    counts from it. The coordinator cannot forge one; it can only withhold it.
    """

    member: str
    dataset: str
    lines: int
    tail: str  # line_hash of line `lines` (GENESIS for an empty log)

    def payload(self) -> dict[str, Any]:
        return {
            "type": ATTESTATION_TYPE,
            "version": SPEND_VERSION,
            "member": self.member,
            "dataset": self.dataset,
            "lines": self.lines,
            "tail": self.tail,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.payload())

    @classmethod
    def from_payload(cls, doc: Any) -> "SpendAttestation":
        require_version(
            doc,
            ATTESTATION_TYPE,
            SPEND_VERSION,
            what="this spend attestation",
            fix="Run a new private job so the node attests its log again.",
        )
        return cls(str(doc["member"]), str(doc["dataset"]), int(doc["lines"]), str(doc["tail"]))


def attest(member: str, dataset: str, lines: list[str]) -> SpendAttestation:
    return SpendAttestation(member, dataset, len(lines), line_hash(lines[-1]) if lines else GENESIS)


def signed_attestation(attestation: SpendAttestation, signature: str) -> str:
    return canonical_json({"attestation": attestation.payload(), "signature": signature}).decode()


def parse_attestation(text: str) -> tuple[SpendAttestation, str]:
    """(attestation, signature); InvalidInput names what is wrong with the document."""
    try:
        doc = load_json(text)
        return SpendAttestation.from_payload(doc["attestation"]), str(doc["signature"])
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"spend attestation is malformed ({exc})") from None


def check_attested(lines: list[str], attestation: SpendAttestation) -> str | None:
    """Why `lines` do not continue the log the node attested, or None when they do."""
    if len(lines) < attestation.lines:
        return (
            f"its spend log for {attestation.dataset!r} has {len(lines)} line(s), but this node "
            f"signed that it had {attestation.lines}: lines were removed (a truncated log or an "
            "old backup); restore the log before the dataset is used again"
        )
    if attestation.lines and line_hash(lines[attestation.lines - 1]) != attestation.tail:
        return (
            f"line {attestation.lines} of its spend log for {attestation.dataset!r} is not the "
            "one this node signed for: the log was rewritten; restore it before the dataset "
            "is used again"
        )
    return None
