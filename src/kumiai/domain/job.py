"""Jobs, their kinds, and the ticket every federated message carries to the nodes."""

import json
from dataclasses import dataclass
from enum import StrEnum

from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput


class JobKind(StrEnum):
    TRAIN = "train"
    EVALUATE = "evaluate"
    STATISTICS = "statistics"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


# Which node operations each kind of job may ask for. A training job also needs the
# summaries for preprocessing and evaluates its model; an evaluation job never trains.
ALLOWED_OPERATIONS: dict[JobKind, frozenset[str]] = {
    JobKind.TRAIN: frozenset({"statistics", "train", "evaluate"}),
    JobKind.EVALUATE: frozenset({"statistics", "evaluate"}),
    JobKind.STATISTICS: frozenset({"statistics"}),
}

# Flower message types -> the node operation they ask for.
OPERATION_OF_MESSAGE = {"train": "train", "evaluate": "evaluate", "query": "statistics"}


def parse_job_kinds(text: str | list[str] | tuple[str, ...]) -> tuple[JobKind, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    kinds: list[JobKind] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            kinds.append(JobKind(item))
        except ValueError:
            allowed = ", ".join(k.value for k in JobKind)
            raise InvalidInput(f"job kind {item!r} is not known; use one of: {allowed}") from None
    if not kinds:
        raise InvalidInput("no job kinds given; name at least one of: train, evaluate, statistics")
    return tuple(dict.fromkeys(kinds))


@dataclass(frozen=True)
class JobTicket:
    """What a job asks of the nodes. The node checks it against its own signed agreement."""

    job_id: str
    project: str
    purpose: str
    kind: JobKind
    datasets: tuple[str, ...]
    rounds: int
    private: bool = False  # record-level DP-SGD at every node
    epsilon: float | None = None  # the ε the job plans per dataset, when calibrated to one
    secure_aggregation: bool = True  # the coordinator sees only sums of updates

    def to_json(self) -> str:
        return canonical_json(
            {
                "type": "kumiai.job-ticket",
                "version": 1,
                "job_id": self.job_id,
                "project": self.project,
                "purpose": self.purpose,
                "kind": self.kind.value,
                "datasets": list(self.datasets),
                "rounds": self.rounds,
                "private": self.private,
                "epsilon": self.epsilon,
                "secure_aggregation": self.secure_aggregation,
            }
        ).decode("utf-8")

    @classmethod
    def from_json(cls, text: str) -> "JobTicket":
        try:
            doc = json.loads(text)
            if doc.get("type") != "kumiai.job-ticket" or doc.get("version") != 1:
                raise ValueError("not a version-1 job ticket")
            return cls(
                job_id=str(doc["job_id"]),
                project=str(doc["project"]),
                purpose=str(doc["purpose"]),
                kind=JobKind(doc["kind"]),
                datasets=tuple(str(d) for d in doc["datasets"]),
                rounds=int(doc["rounds"]),
                private=bool(doc.get("private", False)),
                epsilon=None if doc.get("epsilon") is None else float(doc["epsilon"]),
                secure_aggregation=bool(doc.get("secure_aggregation", True)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"job ticket is malformed ({exc}); the coordinator must send a "
                "version-1 kumiai.job-ticket"
            ) from None
