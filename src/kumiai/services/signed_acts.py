"""Acts a member's node signs on its own machine and submits: run, ask, sign, run again.

One round runs the ordinary service function with the member's node standing behind
`SubmittedNode`. If the service needs a signature the node has not given, the round stops
with `Unsigned`, its transaction rolls back (nothing written) and the node is shown the exact
document to sign (`SignThis`). The node checks it says what its steward meant, signs it and
submits the act again with every signature so far and the same `at`, the time the first
round fixed, so the document is the same bytes. When every signature is there the act is
written, in one transaction, as in the one-directory mode.

If the ledger moved between two rounds (another act took the seq), the next round asks for
a signature over the new entry; the node's client signs again, a few rounds at most.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AgreementRow, DatasetRow, MemberRow, RequestRow
from kumiai.domain import keys
from kumiai.domain.clock import frozen_at, to_iso, utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.domain.roles import require_own
from kumiai.services.access import key_holder
from kumiai.services.agreements import (
    AgreementInfo,
    RequestInfo,
    refuse_request,
    request_data_use,
    revoke_agreement,
    sign_request,
)
from kumiai.services.consortium import Consortium
from kumiai.services.datasets import DatasetInfo, record_dataset
from kumiai.services.lookup import get
from kumiai.services.members import MemberInfo, rotate_key
from kumiai.services.motions import MotionInfo, cast_vote
from kumiai.services.privacy import set_budget
from kumiai.services.projects import ProjectInfo, propose_project
from kumiai.services.remote_node import SubmittedNode, Unsigned

Result = TypeVar("Result")
ROUND_WINDOW = timedelta(minutes=2)  # how long a first round's time may be reused
_AGREEMENT_ID = re.compile(r"agr-[0-9a-f]{8}")
_REQUEST_ID = re.compile(r"req-[0-9a-f]{8}")


@dataclass(frozen=True)
class Submission:
    """What the node sent: who it is, the signatures so far, the time the first round fixed."""

    member: str
    public_key: str
    signatures: tuple[str, ...] = ()
    at: datetime | None = None
    next_key: str | None = None  # a key rotation's new public key, made at the node


@dataclass(frozen=True)
class SignThis:
    """The round's answer when a signature is missing: what to sign, and the fixed time."""

    what: str  # "entry" or "agreement"
    document: dict[str, Any]
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"status": "sign", "what": self.what, "document": self.document, "at": self.at}


def run_signed(
    consortium: Consortium, submission: Submission, act: Callable[[], Result]
) -> Result | SignThis:
    """One round of a member's act (see the module's docstring)."""
    now = utc_now()
    at = submission.at or now
    if not now - ROUND_WINDOW <= at <= now + timedelta(seconds=30):
        raise InvalidInput(
            f"the act's time {to_iso(at)} is more than {ROUND_WINDOW.seconds // 60} minutes "
            "from the coordinator's clock; submit it again without a time"
        )
    node = SubmittedNode(
        submission.member,
        submission.public_key,
        submission.signatures,
        next_public_key=submission.next_key,
    )
    try:
        # `frozen_at` and `acting` hold for the whole process: safe because the API runs
        # one route at a time (interfaces.api.app); every time the act writes is `at`.
        with consortium.acting(submission.member, node), frozen_at(at):
            return act()
    except Unsigned as missing:
        if missing.member != submission.member:
            raise
        return SignThis(missing.what, missing.document, at)


def submitted_by(
    consortium: Consortium, member: str, signatures: Sequence[str], at: datetime | None
) -> Submission:
    """The submission of a registered member's node, with the key it signs with today."""
    with transaction(consortium.sessions) as session:
        key = get(session, MemberRow, member).public_key
    return Submission(member, key, tuple(signatures), at)


# -- the steward's acts ------------------------------------------------------------------


def _steward_of_request(consortium: Consortium, request_id: str) -> str:
    with transaction(consortium.sessions) as session:
        request = get(session, RequestRow, request_id)
        return get(session, DatasetRow, request.dataset).member


def sign_at_node(
    consortium: Consortium, submission: Submission, request_id: str, agreement_id: str
) -> AgreementInfo | SignThis:
    """The steward's node signs a request's terms on its own machine."""
    steward = _steward_of_request(consortium, request_id)
    require_own(submission.member, steward, f"request {request_id}")
    if not _AGREEMENT_ID.fullmatch(agreement_id):
        raise InvalidInput(f"agreement id {agreement_id!r} is not of the form agr-1a2b3c4d")
    return run_signed(
        consortium, submission, lambda: sign_request(consortium, request_id, agreement_id)
    )


def refuse_at_node(
    consortium: Consortium, submission: Submission, request_id: str, reason: str
) -> RequestInfo | SignThis:
    steward = _steward_of_request(consortium, request_id)
    require_own(submission.member, steward, f"request {request_id}")
    return run_signed(
        consortium, submission, lambda: refuse_request(consortium, request_id, reason)
    )


def revoke_at_node(
    consortium: Consortium, submission: Submission, agreement_id: str, reason: str
) -> AgreementInfo | SignThis:
    """The node wrote the revocation in its own home first; this records it."""
    with transaction(consortium.sessions) as session:
        steward = get(session, AgreementRow, agreement_id).steward
    require_own(submission.member, steward, f"agreement {agreement_id}")
    return run_signed(
        consortium, submission, lambda: revoke_agreement(consortium, agreement_id, reason)
    )


def register_at_node(
    consortium: Consortium,
    submission: Submission,
    *,
    name: str,
    target: str,
    schema: dict[str, str],
    rows: int,
    sha256: str,
    sensitivity: str,
) -> DatasetInfo | SignThis:
    """A dataset the node checked and keeps; the catalogue records its metadata, for the
    submitting member only (a node registers its own member's data)."""
    return run_signed(
        consortium,
        submission,
        lambda: record_dataset(
            consortium,
            member=submission.member,
            name=name,
            target=target,
            schema=schema,
            rows=rows,
            sha256=sha256,
            sensitivity=sensitivity,
        ),
    )


# -- a member's other acts: each for the submitting member only ----------------------------


def request_at_node(
    consortium: Consortium,
    submission: Submission,
    request_id: str,
    *,
    project: str,
    dataset: str,
    job_kinds: str,
    max_rounds: int,
    expires_at: datetime,
    epsilon_cap: float | None,
    plain_aggregation: bool,
    aggregate_statistics: str,
    min_cohort: int,
    contribution_analysis: bool,
) -> RequestInfo | SignThis:
    """A researcher's node asks for data; the node chose the request id, so every round is
    the same entry, and an id already taken (a replayed request) is refused."""
    if not _REQUEST_ID.fullmatch(request_id):
        raise InvalidInput(f"request id {request_id!r} is not of the form req-1a2b3c4d")
    with transaction(consortium.sessions) as session:
        if session.get(RequestRow, request_id) is not None:
            raise InvalidInput(
                f"request {request_id} already exists; a node asks again under a new id"
            )
    return run_signed(
        consortium,
        submission,
        lambda: request_data_use(
            consortium,
            project=project,
            dataset=dataset,
            requested_by=submission.member,
            job_kinds=job_kinds,
            max_rounds=max_rounds,
            expires_at=expires_at,
            epsilon_cap=epsilon_cap,
            plain_aggregation=plain_aggregation,
            aggregate_statistics=aggregate_statistics,
            min_cohort=min_cohort,
            contribution_analysis=contribution_analysis,
            request_id=request_id,
        ),
    )


def propose_at_node(
    consortium: Consortium,
    submission: Submission,
    *,
    name: str,
    title: str,
    purpose: str,
    members: tuple[str, ...],
    theme: str | None = None,
) -> ProjectInfo | SignThis:
    """A researcher's node proposes a project, always in its own member's name; under
    `theme`, its node also signs the `project.themed` entry that follows (as `kumiai project
    propose --theme`)."""
    return run_signed(
        consortium,
        submission,
        lambda: propose_project(
            consortium,
            name=name,
            title=title,
            purpose=purpose,
            proposed_by=submission.member,
            members=members,
            theme=theme,
        ),
    )


def vote_at_node(
    consortium: Consortium, submission: Submission, motion_id: str, choice: str, pinned: str
) -> MotionInfo | SignThis:
    """A board seat's vote, signed at the seat's own node over the digest of the motion it
    showed its steward (`pinned`): refused unless that is the motion as recorded
    (`domain.motion.check_pinned`). A second vote is refused by `domain.motion.check_vote`,
    as in the one-directory mode."""
    return run_signed(
        consortium,
        submission,
        lambda: cast_vote(consortium, motion_id, submission.member, choice, pinned=pinned),
    )


def rotate_at_node(
    consortium: Consortium, submission: Submission, member: str, new_key: str
) -> MemberInfo | SignThis:
    """The node made its new key and keeps it waiting; the `member.key-rotated` entry is
    signed with the old key, which vouches for the new one (as `members.rotate_key`). The
    node puts the new key in place once this is recorded."""
    require_own(submission.member, member, f"the key of {member}")
    holder = key_holder(consortium, new_key)
    if holder is not None:
        raise InvalidInput(
            f"key {keys.fingerprint(new_key)} already belongs to {holder}; a node rotates "
            "to a key of its own making"
        )
    return run_signed(
        consortium,
        replace(submission, next_key=new_key),
        lambda: rotate_key(consortium, member),
    )


def budget_at_node(
    consortium: Consortium, submission: Submission, dataset: str, epsilon: float
) -> float | SignThis:
    """The steward's node set its dataset's lifetime ε in its own home, where its guard
    enforces it; the catalogue mirrors it with the `privacy.budget-set` entry the node signs
    (as `kumiai budget set`), for its own dataset only."""
    with transaction(consortium.sessions) as session:
        steward = get(session, DatasetRow, dataset).member
    require_own(submission.member, steward, f"dataset {dataset}")
    return run_signed(consortium, submission, lambda: set_budget(consortium, dataset, epsilon))
