"""Jobs, their kinds, and the one signed document that decides what a node does for a job.

Everything a node obeys (kind, rounds, privacy, optimiser, aggregation) is in the job
document. The coordinator signs it with the key every node pinned at joining, the ledger
records it, and the node admits it once against its own agreement and budget. A later
message is only ever compared with it, never obeyed.
"""

import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import parse_iso, to_iso
from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import TrainingSettings


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


def operation_refusal(kind: JobKind, operation: str) -> str | None:
    """Why a job of `kind` may not ask for `operation`, or None when it may."""
    if operation in ALLOWED_OPERATIONS[kind]:
        return None
    return f"a job of kind {kind.value!r} may not ask for {operation!r}"


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


JOB_TYPE, SIGNED_JOB_TYPE, JOB_VERSION = "kumiai.job", "kumiai.signed-job", 2
# A job id names files in every node home: letters, digits, '.', '_' and '-' only.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class JobDocument:
    """What a job asks of the nodes, whole: the node obeys this and nothing else."""

    job_id: str
    project: str
    purpose: str
    kind: JobKind
    datasets: tuple[str, ...]
    settings: TrainingSettings
    agreements: dict[str, str]  # dataset -> the id of the agreement the job runs under
    issued_at: datetime

    @property
    def rounds(self) -> int:
        return self.settings.rounds

    @property
    def private(self) -> bool:
        return self.settings.private

    @property
    def epsilon(self) -> float | None:
        return self.settings.epsilon

    @property
    def secure_aggregation(self) -> bool:
        return self.settings.secure_aggregation

    def payload(self) -> dict[str, Any]:
        return {
            "type": JOB_TYPE,
            "version": JOB_VERSION,
            "job_id": self.job_id,
            "project": self.project,
            "purpose": self.purpose,
            "kind": self.kind.value,
            "datasets": list(self.datasets),
            "settings": asdict(self.settings),
            "agreements": dict(sorted(self.agreements.items())),
            "issued_at": to_iso(self.issued_at),
        }

    @classmethod
    def from_payload(cls, doc: Any) -> "JobDocument":
        try:
            if doc.get("type") != JOB_TYPE or doc.get("version") != JOB_VERSION:
                raise ValueError(f"not a version-{JOB_VERSION} {JOB_TYPE}")
            extra = set(doc) - _PAYLOAD_KEYS
            if extra:
                raise ValueError(f"unknown field(s) {sorted(extra)}")
            settings = doc["settings"]
            unknown = set(settings) - {f.name for f in fields(TrainingSettings)}
            if unknown:
                raise ValueError(f"unknown setting(s) {sorted(unknown)}")
            if not _JOB_ID.fullmatch(str(doc["job_id"])):
                raise ValueError(f"job id {doc['job_id']!r} is not a valid name")
            return cls(
                job_id=str(doc["job_id"]),
                project=str(doc["project"]),
                purpose=str(doc["purpose"]),
                kind=JobKind(doc["kind"]),
                datasets=tuple(str(d) for d in doc["datasets"]),
                settings=TrainingSettings(**settings),
                agreements={str(k): str(v) for k, v in dict(doc["agreements"]).items()},
                issued_at=parse_iso(str(doc["issued_at"])),
            )
        except InvalidInput as exc:
            raise InvalidInput(f"job document has an invalid setting: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"job document is malformed ({exc}); the coordinator must send a "
                f"version-{JOB_VERSION} {JOB_TYPE}"
            ) from None


_PAYLOAD_KEYS = frozenset(JobDocument.__dataclass_fields__) | {"type", "version"}


@dataclass(frozen=True)
class SignedJob:
    """A job document with the coordinator's Ed25519 signature over its canonical JSON."""

    document: JobDocument
    signature: str

    def signed_bytes(self) -> bytes:
        return self._canonical[0]

    def to_json(self) -> str:
        return self._canonical[1]

    @cached_property
    def _canonical(self) -> tuple[bytes, str]:
        """The signed bytes and the whole document, computed once: both are frozen, and a
        node compares them on every message of a job."""
        payload = self.document.payload()
        whole = {
            "type": SIGNED_JOB_TYPE,
            "version": JOB_VERSION,
            "job": payload,
            "signature": self.signature,
        }
        return canonical_json(payload), canonical_json(whole).decode("utf-8")

    @classmethod
    def from_json(cls, text: str) -> "SignedJob":
        """Parsed once per distinct text: every message of a job carries the same document."""
        return _parse_signed_job(text)


@lru_cache(maxsize=64)
def _parse_signed_job(text: str) -> SignedJob:
    try:
        doc = json.loads(text)
        if doc.get("type") != SIGNED_JOB_TYPE or doc.get("version") != JOB_VERSION:
            raise ValueError(f"not a version-{JOB_VERSION} {SIGNED_JOB_TYPE}")
        signature = str(doc["signature"])
        job = doc["job"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"signed job document is malformed ({exc}); the coordinator must send a "
            f"version-{JOB_VERSION} {SIGNED_JOB_TYPE}"
        ) from None
    return SignedJob(JobDocument.from_payload(job), signature)


def sign_job(document: JobDocument, coordinator_key: Ed25519PrivateKey) -> SignedJob:
    return SignedJob(document, keys.sign(coordinator_key, canonical_json(document.payload())))


def job_signature_is_valid(job: SignedJob, coordinator_public_key: str) -> bool:
    return keys.verify(coordinator_public_key, job.signed_bytes(), job.signature)


def differing_fields(admitted: JobDocument, presented: JobDocument) -> list[str]:
    """Dotted names of every field where a later message's document departs from the admitted.

    Named so that a refusal says exactly what the coordinator tried to change.
    """

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key in value:
                out.update(flat(value[key], f"{prefix}{key}."))
            return out
        return {prefix.rstrip("."): value}

    a, b = flat(admitted.payload()), flat(presented.payload())
    return sorted(k for k in a.keys() | b.keys() if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()
