"""The spend a node logged that the coordinator never recorded, and what to record for it.

A node writes each round's ε to its own signed spend log before the update leaves; the
coordinator records it only when the round completes. A coordinator killed in between
(`kill -9`) leaves its record short of what the data really paid. This rule compares the
two and says what to record. It only ever raises a record: a log that shows less than was
recorded (truncated, rolled back to a backup) changes nothing, so no one can erase spend
by damaging a log.
"""

from dataclasses import dataclass
from typing import Any

from kumiai.domain.budget import JobSpend

RECOVERED = "privacy.recovered"  # the ledger entry kind


@dataclass(frozen=True)
class Recorded:
    """What the coordinator has recorded of one job's spend on one dataset."""

    epsilon: float = 0.0
    rounds: int = 0


@dataclass(frozen=True)
class Recovered:
    """Spend the node logged beyond the record: the new record and the rounds it adds."""

    job: str
    dataset: str
    epsilon: float  # the job's cumulative ε on this dataset, as the node logged it
    recorded_epsilon: float  # what the coordinator had recorded before
    rounds: tuple[int, ...]  # rounds the node logged that the coordinator had not recorded
    last_round: int

    @property
    def shortfall(self) -> float:
        return self.epsilon - self.recorded_epsilon

    def payload(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "dataset": self.dataset,
            "epsilon": self.epsilon,
            "recorded_epsilon": self.recorded_epsilon,
            "rounds": list(self.rounds),
        }


def shortfall(
    job: str, dataset: str, recorded: Recorded, logged: JobSpend | None
) -> Recovered | None:
    """What to record so the coordinator's record matches the node's log, or None.

    `logged` is the job's spend as the node's verified log tallies it (None: the node
    holds nothing for the job, or its log cannot be read). The new record is the larger of
    the two, per ε and per round, so it never lowers what was recorded.
    """
    if logged is None:
        return None
    if logged.spent <= recorded.epsilon and logged.rounds <= recorded.rounds:
        return None
    return Recovered(
        job=job,
        dataset=dataset,
        epsilon=max(logged.spent, recorded.epsilon),
        recorded_epsilon=recorded.epsilon,
        rounds=tuple(range(recorded.rounds + 1, logged.rounds + 1)),
        last_round=max(logged.rounds, recorded.rounds),
    )


def recovery_problem(payload: Any) -> tuple[str, str] | None:
    """(code, reason) when a `privacy.recovered` payload is not valid, for the auditor.

    A recovery that records less than was recorded before would be a way to erase spend,
    so an auditor refuses it; verifiers/js makes the same check with the same codes.
    """
    fields = payload if isinstance(payload, dict) else {}
    epsilon, recorded = fields.get("epsilon"), fields.get("recorded_epsilon")
    named = all(isinstance(fields.get(k), str) for k in ("job", "dataset"))
    if not (named and _number(epsilon) and _number(recorded)):
        return "malformed", "does not name the job, the dataset and both ε as numbers"
    if epsilon < recorded:
        return "recovered-lower", f"records ε={epsilon}, lower than the ε={recorded} recorded"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
