"""The node's policy check: may this node do this operation for this job on its dataset?

A pure function. The node calls it on every message, with the steward key, revocation list
and clock of its own home: it never takes the coordinator's word for any of them.
"""

from dataclasses import dataclass
from datetime import datetime

from kumiai.domain.agreement import SignedAgreement, signature_is_valid
from kumiai.domain.clock import to_iso
from kumiai.domain.job import SignedJob, job_signature_is_valid, operation_refusal


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    @classmethod
    def allow(cls, agreement_id: str) -> "Decision":
        return cls(True, f"covered by agreement {agreement_id}")


def check_job(
    *,
    job: SignedJob,
    coordinator_key: str,
    operation: str,
    server_round: int,
    dataset: str,
    steward: str,
    steward_public_keys: tuple[str, ...],
    agreement: SignedAgreement | None,
    revoked: frozenset[str],
    now: datetime,
) -> Decision:
    """Decide on one operation ('statistics', 'train' or 'evaluate') for one round.

    `job` must carry the signature of the coordinator key the node pinned at joining, and
    `agreement` is the node's own copy of the agreement the job names for `dataset`. Each
    refusal names what failed and what would fix it; the reason travels back to the job's
    record and the researcher. `steward_public_keys` holds every key the steward has held,
    so an agreement signed before a key rotation stays valid.
    """
    ticket = job.document

    def refuse(why: str) -> Decision:
        return Decision(False, f"{steward} refused job {ticket.job_id}: {why}")

    if not job_signature_is_valid(job, coordinator_key):
        return refuse(
            "the job document is not signed by the coordinator key this node pinned when it "
            "joined; only the consortium's own coordinator may submit work"
        )
    if dataset not in ticket.datasets:
        return refuse(f"the job does not name dataset {dataset!r}")
    if agreement is None:
        return refuse(
            f"no signed agreement for project {ticket.project!r} on dataset {dataset!r}; "
            "the steward must sign a data-use request first"
        )
    terms = agreement.terms
    if ticket.agreements.get(dataset) != terms.agreement_id:
        return refuse(
            f"the job names agreement {ticket.agreements.get(dataset)!r} for {dataset!r}, "
            f"not {terms.agreement_id!r}"
        )
    if not any(signature_is_valid(agreement, key) for key in steward_public_keys):
        return refuse(
            f"agreement {terms.agreement_id} is unsigned or its signature does not verify with "
            f"{steward}'s key; only an agreement the steward signed is accepted"
        )
    if terms.steward != steward:
        return refuse(
            f"agreement {terms.agreement_id} belongs to {terms.steward!r}, not {steward!r}"
        )
    if terms.agreement_id in revoked:
        return refuse(f"agreement {terms.agreement_id} was revoked; ask the steward for a new one")
    if terms.project != ticket.project:
        return refuse(
            f"agreement {terms.agreement_id} covers project {terms.project!r}, "
            f"not {ticket.project!r}"
        )
    if terms.dataset != dataset:
        return refuse(
            f"agreement {terms.agreement_id} covers dataset {terms.dataset!r}, not {dataset!r}"
        )
    if terms.purpose != ticket.purpose:
        return refuse(
            f"agreement {terms.agreement_id} allows the purpose {terms.purpose!r}, "
            f"not {ticket.purpose!r}"
        )
    if ticket.kind not in terms.job_kinds:
        allowed = ", ".join(k.value for k in terms.job_kinds)
        return refuse(
            f"agreement {terms.agreement_id} allows job kinds [{allowed}], "
            f"not {ticket.kind.value!r}"
        )
    if (wrong := operation_refusal(ticket.kind, operation)) is not None:
        return refuse(wrong)
    if now >= terms.expires_at:
        return refuse(
            f"agreement {terms.agreement_id} expired at {to_iso(terms.expires_at)}; "
            "ask the steward to sign a renewed request"
        )
    if ticket.rounds > terms.max_rounds:
        return refuse(
            f"the job plans {ticket.rounds} rounds but agreement {terms.agreement_id} allows at "
            f"most {terms.max_rounds}; run at most {terms.max_rounds} rounds"
        )
    if not ticket.secure_aggregation and not terms.plain_aggregation:
        return refuse(
            f"agreement {terms.agreement_id} requires secure aggregation (the coordinator may "
            "see only sums of updates); run the job with secure aggregation on"
        )
    if terms.epsilon_cap is not None and not ticket.private:
        return refuse(
            f"agreement {terms.agreement_id} requires differential privacy with "
            f"ε ≤ {terms.epsilon_cap:g}; run the job with --epsilon"
        )
    if (
        terms.epsilon_cap is not None
        and ticket.epsilon is not None
        and (ticket.epsilon > terms.epsilon_cap)
    ):
        return refuse(
            f"the job plans ε={ticket.epsilon:g}, over agreement {terms.agreement_id}'s cap "
            f"ε={terms.epsilon_cap:g}; ask for at most {terms.epsilon_cap:g}"
        )
    if server_round > terms.max_rounds:
        return refuse(
            f"round {server_round} exceeds the {terms.max_rounds} rounds agreement "
            f"{terms.agreement_id} allows"
        )
    return Decision.allow(terms.agreement_id)
