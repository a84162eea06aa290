"""What a running job reports, written into its record: one commit per event.

Kept apart from the training service so that interfaces can show progress (`RoundReport`)
without importing Flower.
"""

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRoundRow, JobRow, JobSiteRow, PrivacySpendRow
from kumiai.domain.budget import parse_attestation
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import KumiaiError
from kumiai.domain.job import JobDocument
from kumiai.domain.ledger import COORDINATOR, TreeHead
from kumiai.domain.metrics import SiteScore, combine
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.transparency import record_cosignature


@dataclass(frozen=True)
class RoundReport:
    round: int
    rounds: int
    train_loss: float | None
    overall: dict[str, float | int | None]
    sites: dict[str, dict[str, float | int | None]]
    seconds: float
    epsilons: dict[str, float] = field(default_factory=dict)  # cumulative ε per dataset
    member_epsilon: float | None = None  # client-level DP: Flower's accountant, per member
    # The aggregates each site sent (histograms), for metrics beyond accuracy and AUC
    scores: dict[str, SiteScore] = field(default_factory=dict, repr=False, compare=False)


class TrainingProgress(Protocol):
    """What an interface shows while a job runs (a Rich bar in the CLI)."""

    def admitted(self, job_id: str, sites: list[str], refused: dict[str, str]) -> None: ...

    def refused(self, dataset: str, reason: str, server_round: int) -> None: ...

    def round_done(self, report: RoundReport) -> None: ...


class JobRecorder:
    """Writes what the federation reports into the job's record, one commit per event."""

    def __init__(
        self,
        consortium: Consortium,
        job: JobDocument,
        progress: TrainingProgress | None,
        level: str = "record",
    ) -> None:
        self.consortium, self.progress, self.level = consortium, progress, level
        self.job_id, self.rounds, self.project = job.job_id, job.rounds, job.project
        self.refused: dict[str, str] = {}
        self.planned: dict[str, dict[str, float]] = {}
        self.last: RoundReport | None = None
        self.seconds: list[float] = []

    def _site(self, session, dataset: str) -> JobSiteRow | None:  # type: ignore[no-untyped-def]
        return session.get(JobSiteRow, (self.job_id, dataset))

    def sites_decided(
        self,
        admitted: Collection[str],
        refused: dict[str, str],
        offline: dict[str, str] | None = None,
    ) -> None:
        """Every site leaves 'pending' here: participating, refused, or absent with a reason.

        `offline` are the sites whose node never answered (`domain.quorum`): refused with
        that reason, signed by the coordinator, since their node said nothing.

        A node whose answer named no dataset (it failed before its guard knew which) cannot be
        matched to a site; the sites left over are marked absent and carry those answers, so
        no site is silently missing from the job or the model's lineage.
        """
        unmatched = {k: v for k, v in refused.items() if self._unknown(k)}
        refused = {k: v for k, v in refused.items() if k not in unmatched}
        with transaction(self.consortium.sessions) as session:
            for dataset in admitted:
                if (row := self._site(session, dataset)) is not None:
                    row.status = "participating"
            for dataset, reason in refused.items():
                if (row := self._site(session, dataset)) is not None:
                    row.status, row.reason = "refused", reason
                    self._log_refusal(session, row, reason, 0)
            for dataset, reason in (offline or {}).items():
                if (row := self._site(session, dataset)) is not None:
                    row.status, row.reason = "refused", reason
                    self._log_refusal(session, row, reason, 0, said_by_node=False)
                    refused[dataset] = reason
            for row in session.scalars(
                select(JobSiteRow).where(
                    JobSiteRow.job_id == self.job_id, JobSiteRow.status == "pending"
                )
            ):
                why = "; ".join(unmatched.values()) or "no node answered for it"
                row.status, row.reason = "absent", f"its node did not take part: {why}"
                refused[row.dataset] = row.reason
        self.refused.update(refused)
        if self.progress:
            self.progress.admitted(self.job_id, sorted(admitted), refused)

    def _unknown(self, key: str) -> bool:
        return key == "?" or key.startswith("node-")

    def site_refused(self, dataset: str, reason: str, server_round: int) -> None:
        text = f"round {server_round}: {reason}"
        with transaction(self.consortium.sessions) as session:
            if (row := self._site(session, dataset)) is not None:
                row.status, row.reason = "left", text
                self._log_refusal(session, row, reason, server_round)
        self.refused[dataset] = text
        if self.progress:
            self.progress.refused(dataset, text, server_round)

    def _log_refusal(
        self,
        session: Any,
        row: JobSiteRow,
        reason: str,
        server_round: int,
        said_by_node: bool = True,
    ) -> None:
        """Signed by the refusing member's key: the node, not the coordinator, said no.

        A member whose node runs on its own machine (no home here) cannot sign on this side:
        a node that died or went silent said nothing, so the coordinator signs what it saw."""
        local = said_by_node and self.consortium.node_is_here(row.member)
        payload = {
            "job": self.job_id,
            "dataset": row.dataset,
            "round": server_round,
            "reason": reason,
        }
        act = Act(
            row.member if local else COORDINATOR,
            "job.refused",
            payload,
            member=row.member,
            dataset=row.dataset,
            project=self.project,
        )
        self.consortium.ledger.append(session, act)

    def cosigned(self, witness: str, head_json: str, signature: str) -> None:
        record_cosignature(self.consortium, witness, TreeHead.from_json(head_json), signature)

    def spend_attested(self, dataset: str, attestation: str) -> None:
        """Keep the node's latest signed word on its spend log (shown again before its next job)."""
        with transaction(self.consortium.sessions) as session:
            row = session.get(PrivacySpendRow, (self.job_id, dataset))
            if row is not None:
                row.attestation = attestation

    def privacy_planned(self, dataset: str, plan: dict[str, float]) -> None:
        """Mirror what the node reserved (display only: the node's spend log is the record)."""
        self.planned[dataset] = plan
        with transaction(self.consortium.sessions) as session:
            session.merge(
                PrivacySpendRow(
                    job_id=self.job_id,
                    dataset=dataset,
                    project=self.project,
                    planned=plan["epsilon"],
                    spent=0.0,
                    delta=plan["delta"],
                    noise_multiplier=plan["noise_multiplier"],
                    rounds=0,
                    status="running",
                    level=self.level,
                )
            )

    def round_done(
        self,
        server_round: int,
        train_loss: float | None,
        scores: dict[str, SiteScore],
        seconds: float,
        epsilons: dict[str, float],
        member_epsilon: float | None = None,
    ) -> None:
        report = RoundReport(
            round=server_round,
            rounds=self.rounds,
            train_loss=train_loss,
            overall=combine(list(scores.values())).as_dict() if scores else {},
            sites={d: s.as_dict() for d, s in sorted(scores.items())},
            seconds=seconds,
            epsilons=dict(sorted(epsilons.items())),
            member_epsilon=member_epsilon,
            scores=dict(scores),
        )
        with transaction(self.consortium.sessions) as session:
            session.add(
                JobRoundRow(
                    job_id=self.job_id,
                    round=server_round,
                    seconds=seconds,
                    recorded_at=utc_now(),
                    metrics_json=json.dumps(
                        {
                            "train_loss": train_loss,
                            "overall": report.overall,
                            "sites": report.sites,
                            "epsilon": report.epsilons,
                            "member_epsilon": member_epsilon,
                        }
                    ),
                )
            )
            get(session, JobRow, self.job_id).completed_rounds = server_round
            payload = {
                "job": self.job_id,
                "round": server_round,
                "participants": sorted(scores),
                "examples": report.overall.get("examples"),
                "epsilon": report.epsilons,
            }
            if member_epsilon is not None:
                payload["member_epsilon"] = member_epsilon
            for dataset, spent in epsilons.items():
                row = session.get(PrivacySpendRow, (self.job_id, dataset))
                if row is not None:
                    row.spent, row.rounds = spent, server_round
            act = Act(COORDINATOR, "round.completed", payload, project=self.project)
            self.consortium.ledger.append(session, act)
        self.last = report
        self.seconds.append(seconds)
        if self.progress:
            self.progress.round_done(report)


def latest_attestations(consortium: Consortium, datasets: list[str]) -> dict[str, str]:
    """Per dataset, the attestation of the longest spend log its node has signed for.

    A log only grows, so the one with the most lines is the latest; the node checks it
    (its own signature, its own log) before a new private job.
    """
    best: dict[str, tuple[int, str]] = {}
    with transaction(consortium.sessions) as session:
        rows = session.scalars(
            select(PrivacySpendRow).where(
                PrivacySpendRow.dataset.in_(datasets), PrivacySpendRow.attestation.is_not(None)
            )
        )
        for row in rows:
            text = str(row.attestation)
            try:
                lines = parse_attestation(text)[0].lines
            except KumiaiError:
                continue  # not the node's word after all; the node would refuse it anyway
            if lines >= best.get(row.dataset, (-1, ""))[0]:
                best[row.dataset] = (lines, text)
    return {dataset: text for dataset, (_, text) in best.items()}
