"""The node's durable privacy-spend log for one dataset, in the node's own home.

Appends are serialised by an exclusive file lock, so two jobs starting together on one
dataset cannot both pass the budget check and overspend it together; each line is fsynced
before the node lets an update leave, so spend is never lost. The lock is `filelock`'s, not
raw `fcntl`, so a node runs on Windows as well as on Unix.
"""

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kumiai.adapters.files import write_json_atomic
from kumiai.domain import keys
from kumiai.domain.budget import (
    GENESIS,
    RELEASE,
    RESERVE,
    SPEND,
    BudgetDecision,
    BudgetView,
    SpendRecord,
    attest,
    check_attested,
    check_reservation,
    line_hash,
    parse_attestation,
    parse_log,
    record_line,
    signed_attestation,
    tally,
)
from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import InvalidInput, StateError
from kumiai.domain.privacy import check_epsilon_cap
from kumiai.node.home import NodeHome


def _lines(data: bytes) -> list[str]:
    return [line for line in data.decode("utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class _Verified:
    """A prefix of a spend log this process has verified, and its records."""

    size: int
    digest: bytes
    keys: tuple[str, ...]
    records: list[SpendRecord]
    last: str  # the hash of its last line, which the next line must name

    def holds(self, data: bytes, keys: tuple[str, ...]) -> bool:
        """`data` begins with exactly the verified bytes, under the same steward keys."""
        return (
            len(data) >= self.size
            and keys == self.keys
            and hashlib.sha256(data[: self.size]).digest() == self.digest
        )


_VERIFIED: dict[str, _Verified] = {}


class SpendLog:
    def __init__(self, node: NodeHome, dataset: str) -> None:
        self.node, self.dataset = node, dataset
        folder = node.root / "privacy"
        self.log = folder / f"{dataset}.spend.jsonl"
        self.budget = folder / f"{dataset}.budget.json"
        self.lock = folder / f"{dataset}.lock"

    # -- the steward's lifetime budget ---------------------------------------------------
    def lifetime(self) -> float | None:
        if not self.budget.is_file():
            return None
        return float(json.loads(self.budget.read_text())["epsilon"])

    def set_lifetime(self, epsilon: float) -> None:
        with self._locked():
            view = self._view()
            epsilon = check_epsilon_cap(epsilon)
            if epsilon < view.spent + view.committed:
                raise InvalidInput(
                    f"dataset {self.dataset!r} has already spent {view.spent:.3f} and committed "
                    f"{view.committed:.3f}; its lifetime budget cannot be set below "
                    f"{view.spent + view.committed:.3f}"
                )
            write_json_atomic(self.budget, {"dataset": self.dataset, "epsilon": epsilon})

    # -- reading -------------------------------------------------------------------------
    def _lines(self) -> list[str]:
        return _lines(self.log.read_bytes()) if self.log.is_file() else []

    def _records(self) -> list[SpendRecord]:
        """Every record, verified. Lines verified earlier in this process are not verified
        again while the bytes that held them are unchanged (their SHA-256 is compared):
        a node checks its log before every update, and a long-lived node's log grows by
        thousands of lines."""
        public = self.node.steward_keys()

        def verify(message: bytes, signature: str) -> bool:
            return any(keys.verify(k, message, signature) for k in public)

        data = self.log.read_bytes() if self.log.is_file() else b""
        known = _VERIFIED.get(str(self.log))
        try:
            if known is not None and known.holds(data, public):
                new = parse_log(
                    _lines(data[known.size :]),
                    verify,
                    after=len(known.records),
                    prev=known.last,
                )
                records = known.records + new
            else:
                records = parse_log(_lines(data), verify)
        except InvalidInput as exc:
            raise InvalidInput(f"dataset {self.dataset!r}: {exc}") from None
        if data.endswith(b"\n") and records:
            last = _lines(data)[-1]
            _VERIFIED[str(self.log)] = _Verified(
                len(data), hashlib.sha256(data).digest(), public, records, line_hash(last)
            )
        return records

    def _view(self) -> BudgetView:
        return tally(self.lifetime(), self._records())

    def view(self) -> BudgetView:
        with self._locked():
            return self._view()

    def records(self) -> list[SpendRecord]:
        """Every line of the log, verified: what the steward's pages list."""
        with self._locked():
            return self._records()

    # -- writing -------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across processes and threads: a fresh lock object per use, so no
        reentrancy is shared between threads that hold one SpendLog. Imported here: the
        read-only commands import this module but never lock, and filelock costs start-up."""
        from filelock import FileLock

        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.lock):
            yield

    def _append(
        self,
        kind: str,
        job: str,
        project: str,
        epsilon: float,
        delta: float,
        round_: int = 0,
        details: dict[str, Any] | None = None,
    ) -> None:
        lines = self._lines()
        record = SpendRecord(
            len(lines),
            kind,
            job,
            project,
            epsilon,
            delta,
            round_,
            details or {},
            line_hash(lines[-1]) if lines else GENESIS,
        )
        signature = keys.sign(self.node.private_key(), canonical_json(record.document()))
        with self.log.open("a") as handle:
            handle.write(record_line(record, signature) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def attestation(self) -> str:
        """This node's signed word on how far the log has grown (for the coordinator to keep)."""
        with self._locked():
            mark = attest(self.node.member_name, self.dataset, self._lines())
            return signed_attestation(mark, keys.sign(self.node.private_key(), mark.signed_bytes()))

    def _contradicts(self, attested: str) -> str | None:
        """Why the log contradicts an attestation the coordinator presented, or None."""
        try:
            mark, signature = parse_attestation(attested)
        except InvalidInput as exc:
            return f"the coordinator presented a {exc}"
        signed = any(
            keys.verify(k, mark.signed_bytes(), signature) for k in self.node.steward_keys()
        )
        if not signed or mark.member != self.node.member_name or mark.dataset != self.dataset:
            return (
                f"the coordinator presented a spend attestation for {mark.dataset!r} that this "
                "node did not sign"
            )
        return check_attested(self._lines(), mark)

    def reserve(
        self,
        *,
        job: str,
        project: str,
        planned: float,
        delta: float,
        agreement_cap: float | None,
        details: dict[str, Any],
        attested: str | None = None,
    ) -> BudgetDecision:
        """Check the whole planned spend and hold it, atomically with respect to other jobs.

        `attested` is the latest attestation of this log the coordinator holds: a log that
        no longer contains the attested line has lost spend, and no budget is counted from it.
        """
        with self._locked():
            if attested is not None and (problem := self._contradicts(attested)) is not None:
                return BudgetDecision(False, problem)
            decision = check_reservation(
                self._view(), project=project, job=job, planned=planned, agreement_cap=agreement_cap
            )
            if decision.allowed:
                self._append(RESERVE, job, project, planned, delta, 0, details)
            return decision

    def spend(self, *, job: str, round_: int, epsilon: float) -> None:
        """Record the job's cumulative spend after a round, before its update leaves."""
        with self._locked():
            spent = self._view().jobs.get(job)
            if spent is None or spent.reserved == 0:
                raise StateError(f"job {job} holds no privacy reservation on {self.dataset!r}")
            if spent.released:
                raise StateError(f"job {job} was released on {self.dataset!r}; it may not train")
            if epsilon > spent.reserved + 1e-9:
                raise StateError(
                    f"job {job} would spend ε={epsilon:.3f}, over its reservation "
                    f"ε={spent.reserved:.3f}"
                )
            self._append(
                SPEND, job, spent.project, epsilon, float(spent.details.get("delta", 0.0)), round_
            )

    def release(self, job: str) -> bool:
        """The job is over: stop holding what it did not spend. False if nothing was held."""
        with self._locked():
            held = self._view().jobs.get(job)
            if held is None or held.released:
                return False
            self._append(
                RELEASE,
                job,
                held.project,
                held.spent,
                float(held.details.get("delta", 0.0)),
                held.rounds,
            )
            return True
