"""Members' acts, signed at their own nodes: join, sign, refuse, revoke, register; a
researcher's request and project proposal; a board seat's vote.

Each route is one round of `services.signed_acts`: `202 {"status": "sign", "what", "document",
"at"}` when the node must sign a document first (nothing was written), `200 {"status":
"done", "result"}` when the act is recorded. The node's client (`kumiai node …`) runs the
rounds; `/trust` is what a joining node checks against its invitation before it trusts
anything else.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import SignedBeforeBody, allow, http_request
from kumiai.interfaces.api.context import STORED_INT_MAX, Home, PlainJSON
from kumiai.interfaces.api.openapi import error_responses
from kumiai.services import invitations, releasing, signed_acts
from kumiai.services.access import Principal, authenticate_new_key
from kumiai.services.signed_acts import SignThis


class SignThisReply(BaseModel):
    """202: nothing was written; the node signs `document` and submits the round again."""

    status: Literal["sign"]
    what: str = Field(description="What to sign: 'entry' or 'agreement'.")
    document: dict[str, Any]
    at: datetime = Field(description="The act's time: submit it again with the signatures.")


class DoneReply(BaseModel):
    """200: the act is recorded."""

    status: Literal["done"]
    result: Any


ROUND: dict[int | str, dict[str, Any]] = {
    200: {"model": DoneReply, "description": "The act is recorded."},
    202: {"model": SignThisReply, "description": "The node must sign first."},
}

router = APIRouter(tags=["acts"], route_class=SignedBeforeBody)


class Round(BaseModel):
    signatures: list[str] = Field(default=[], description="The node's signatures so far.")
    at: datetime | None = Field(default=None, description="The time the first round fixed.")


class SignBody(Round):
    agreement_id: str = Field(description="The id the node chose for the agreement.")


class ReasonBody(Round):
    reason: str = ""


class DatasetBody(Round):
    name: str
    target: str
    schema_: dict[str, str] = Field(alias="schema", description="Column name → type.")
    rows: int = Field(ge=0, le=STORED_INT_MAX)
    sha256: str
    sensitivity: str = "confidential"


class RequestBody(Round):
    request_id: str = Field(description="The id the node chose for the request.")
    project: str
    dataset: str
    job_kinds: str = "train,evaluate"
    max_rounds: int = 50
    expires_at: datetime
    epsilon_cap: float | None = None
    plain_aggregation: bool = False
    aggregate_statistics: str = "allowed"
    min_cohort: int = 0
    contribution_analysis: bool = False


class ProjectBody(Round):
    name: str
    purpose: str
    title: str = ""
    members: list[str] = []
    theme: str | None = Field(default=None, description="The theme it is put under, if any.")


class VoteBody(Round):
    choice: str = Field(description="yes, no or abstain.")
    digest: str = Field(
        description="The SHA-256 of the motion as the node showed it to its steward "
        "(domain.motion.shown_digest); a vote on a motion recorded otherwise is refused."
    )


class BudgetBody(Round):
    epsilon: float = Field(description="The dataset's lifetime ε, already set at the node.")


class KeyBody(Round):
    public_key: str = Field(description="The node's new public key, waiting at the node.")


class JoinBody(Round):
    token: str
    public_key: str
    supernode_key: str | None = None  # the public half of the node's SuperNode key


def answer(result: Any) -> PlainJSON:
    if isinstance(result, SignThis):
        return PlainJSON(result.as_dict(), status_code=202)
    return PlainJSON({"status": "done", "result": result})


def _member(caller: Principal) -> str:
    assert caller.member is not None  # only a member's node holds a member's roles
    return caller.member


@router.get(
    "/trust",
    summary="The CA certificate and the coordinator's key",
    dependencies=[allow(Action.TRUST_READ)],
    responses={200: {"model": dict[str, str], "description": "The trust anchors, as text."}},
)
def trust(home: Home) -> PlainJSON:
    return PlainJSON(invitations.trust_anchors(home))


@router.post(
    "/join",
    summary="A node joins with its invitation, signed by its new key",
    dependencies=[allow(Action.JOIN)],
    responses={**ROUND, **error_responses(401)},
)
async def join(request: Request, body: JoinBody, home: Home) -> PlainJSON:
    signed = http_request(request, await request.body())

    def run() -> Any:
        authenticate_new_key(home, signed, body.public_key)
        return invitations.join_with_invitation(
            home,
            body.token,
            body.public_key,
            tuple(body.signatures),
            body.at,
            supernode_key=body.supernode_key,
        )

    return answer(await anyio.to_thread.run_sync(run))


@router.post(
    "/requests/{request_id}/sign", summary="The steward signs at its node", responses=ROUND
)
def sign(
    home: Home,
    request_id: str,
    body: SignBody,
    caller: Annotated[Principal, allow(Action.REQUEST_SIGN)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.sign_at_node(home, submission, request_id, body.agreement_id))


@router.post(
    "/requests/{request_id}/refuse", summary="The steward refuses, with a reason", responses=ROUND
)
def refuse(
    home: Home,
    request_id: str,
    body: ReasonBody,
    caller: Annotated[Principal, allow(Action.REQUEST_REFUSE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.refuse_at_node(home, submission, request_id, body.reason))


@router.post(
    "/agreements/{agreement_id}/revoke", summary="The steward revokes, node first", responses=ROUND
)
def revoke(
    home: Home,
    agreement_id: str,
    body: ReasonBody,
    caller: Annotated[Principal, allow(Action.AGREEMENT_REVOKE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.revoke_at_node(home, submission, agreement_id, body.reason))


@router.post(
    "/datasets", summary="A steward's node registers a dataset it keeps (metadata)", responses=ROUND
)
def register(
    home: Home,
    body: DatasetBody,
    caller: Annotated[Principal, allow(Action.DATASET_REGISTER)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(
        signed_acts.register_at_node(
            home,
            submission,
            name=body.name,
            target=body.target,
            schema=body.schema_,
            rows=body.rows,
            sha256=body.sha256,
            sensitivity=body.sensitivity,
        )
    )


@router.post("/requests", summary="A researcher's node asks a steward for data")
def request_data(
    home: Home, body: RequestBody, caller: Annotated[Principal, allow(Action.REQUEST_MAKE)]
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    terms = body.model_dump(exclude={"request_id", "signatures", "at"})
    return answer(signed_acts.request_at_node(home, submission, body.request_id, **terms))


@router.post("/projects", summary="A researcher's node proposes a project")
def propose(
    home: Home, body: ProjectBody, caller: Annotated[Principal, allow(Action.PROJECT_PROPOSE)]
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(
        signed_acts.propose_at_node(
            home,
            submission,
            name=body.name,
            title=body.title,
            purpose=body.purpose,
            members=tuple(body.members),
            theme=body.theme,
        )
    )


@router.post("/motions/{motion_id}/votes", summary="A board seat votes, signed at its node")
def vote(
    home: Home,
    motion_id: str,
    body: VoteBody,
    caller: Annotated[Principal, allow(Action.MOTION_VOTE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.vote_at_node(home, submission, motion_id, body.choice, body.digest))


@router.post("/members/{member}/key", summary="A node rotates its key, the old one vouching")
def rotate(
    home: Home,
    member: str,
    body: KeyBody,
    caller: Annotated[Principal, allow(Action.KEY_ROTATE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.rotate_at_node(home, submission, member, body.public_key))


@router.post("/datasets/{name}/budget", summary="The steward's node mirrors its ε budget")
def budget(
    home: Home,
    name: str,
    body: BudgetBody,
    caller: Annotated[Principal, allow(Action.BUDGET_SET)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    epsilon = signed_acts.budget_at_node(home, submission, name, body.epsilon)
    if isinstance(epsilon, SignThis):
        return answer(epsilon)
    return answer({"dataset": name, "lifetime": epsilon})


class ReleaseBody(Round):
    spent: float = Field(
        ge=0, description="The job's ε spent on the dataset, as the node logged it."
    )
    rounds: int = Field(ge=0, le=STORED_INT_MAX, description="Its last round spent.")
    attestation: str = Field(description="The node's signed spend attestation for the dataset.")


@router.post(
    "/jobs/{job_id}/privacy/{dataset}/release",
    summary="A steward's node released a job's ε in its own spend log",
    responses=ROUND,
)
def release(
    home: Home,
    job_id: str,
    dataset: str,
    body: ReleaseBody,
    caller: Annotated[Principal, allow(Action.PRIVACY_RELEASE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(
        releasing.release_at_node(
            home,
            submission,
            job_id,
            dataset,
            spent=body.spent,
            rounds=body.rounds,
            attestation=body.attestation,
        )
    )
