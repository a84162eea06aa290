"""A node on its own machine reports that it released a job's ε: the coordinator's mirror.

The coordinator cannot release a remote node's reservation (`services.jobs.release_privacy`
marks the row as awaiting its node). The node releases in its own signed spend log and then
tells the coordinator, with a signed request carrying its spend attestation for the
dataset. Here the report is checked (only the dataset's own member, an attestation its node
signed and no older than the one held, a job the coordinator reserved for), the mirror's
spend is raised to the node's figure by `domain.releasing.release_report` (the rule of
`services.recovery`: never lowered) with a `privacy.recovered` entry signed at the node, and
the row is ended, in one transaction. A second report of the same release writes nothing.
"""

from typing import Any

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import DatasetRow, MemberRow, PrivacySpendRow
from kumiai.domain import keys
from kumiai.domain.budget import parse_attestation
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.recovery import RECOVERED, Recorded
from kumiai.domain.releasing import ENDED, release_report
from kumiai.domain.roles import require_own
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import get
from kumiai.services.recorder import latest_attestations
from kumiai.services.signed_acts import SignThis, Submission, run_signed


def release_at_node(
    consortium: Consortium,
    submission: Submission,
    job_id: str,
    dataset: str,
    *,
    spent: float,
    rounds: int,
    attestation: str,
) -> dict[str, Any] | SignThis:
    """One round of a node's release report (see the module's docstring)."""
    with transaction(consortium.sessions) as session:
        owner = get(session, DatasetRow, dataset).member
        public = get(session, MemberRow, submission.member).public_key
    require_own(submission.member, owner, f"dataset {dataset}")
    _check_attestation(consortium, submission.member, public, dataset, attestation)
    return run_signed(
        consortium,
        submission,
        lambda: record_release(
            consortium, submission.member, job_id, dataset, spent, rounds, attestation
        ),
    )


def record_release(
    consortium: Consortium,
    member: str,
    job_id: str,
    dataset: str,
    spent: float,
    rounds: int,
    attestation: str,
) -> dict[str, Any]:
    """Raise the mirror to the node's figure and end the row, in one transaction."""
    with transaction(consortium.sessions) as session:
        row = session.get(PrivacySpendRow, (job_id, dataset))
        if row is None:
            raise NotFound(
                f"the coordinator reserved no ε for job {job_id} on {dataset!r}; there is "
                "nothing to release here (see `kumiai budget`)"
            )
        if row.status == ENDED:  # reported before: nothing more to write
            return _result(row, released=False)
        found = release_report(
            job_id, dataset, Recorded(row.spent, row.rounds), row.planned, spent, rounds
        )
        if found is not None:
            row.spent, row.rounds = found.epsilon, found.last_round
            act = Act(
                member,
                RECOVERED,
                found.payload(),
                member=member,
                dataset=dataset,
                project=row.project,
            )
            consortium.ledger.append(session, act)
        row.status, row.attestation = ENDED, attestation
        return _result(row, released=True)


def _result(row: PrivacySpendRow, released: bool) -> dict[str, Any]:
    return {
        "job": row.job_id,
        "dataset": row.dataset,
        "reserved": row.planned,
        "spent": row.spent,
        "rounds": row.rounds,
        "status": row.status,
        "released": released,
    }


def _check_attestation(
    consortium: Consortium, member: str, public: str, dataset: str, text: str
) -> None:
    """The node's own signed word on its log for this dataset, not older than the one held."""
    mark, signature = parse_attestation(text)
    if (
        mark.member != member
        or mark.dataset != dataset
        or not keys.verify(public, mark.signed_bytes(), signature)
    ):
        raise InvalidInput(
            f"the spend attestation sent for {dataset!r} is not signed by {member}'s node for "
            "that dataset; send the one `kumiai node release` makes"
        )
    held = latest_attestations(consortium, [dataset]).get(dataset)
    if held is not None and parse_attestation(held)[0].lines > mark.lines:
        raise InvalidInput(
            f"the spend attestation sent for {dataset!r} covers {mark.lines} line(s) of its "
            f"log, fewer than the {parse_attestation(held)[0].lines} the node attested "
            "before: its log lost lines; restore it before releasing"
        )
