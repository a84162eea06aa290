"""Members' acts, signed at their own nodes: join, sign, refuse, revoke.

Each route is one round of `services.signed_acts`: `202 {"status": "sign", "what", "document",
"at"}` when the node must sign a document first (nothing was written), `200 {"status":
"done", "result"}` when the act is recorded. The node's client (`kumiai node …`) runs the
rounds; `/trust` is what a joining node checks against its invitation before it trusts
anything else.
"""

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow, http_request
from kumiai.interfaces.api.context import Home, PlainJSON
from kumiai.services import invitations, signed_acts
from kumiai.services.access import Principal, authenticate_new_key
from kumiai.services.signed_acts import SignThis

router = APIRouter(tags=["acts"])


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
    rows: int
    sha256: str
    sensitivity: str = "confidential"


class JoinBody(Round):
    token: str
    public_key: str
    supernode_key: str | None = None  # the public half of the node's SuperNode key


def answer(result: Any) -> PlainJSON:
    if isinstance(result, SignThis):
        return PlainJSON(result.as_dict(), status_code=202)
    return PlainJSON({"status": "done", "result": result})


def _member(caller: Principal) -> str:
    assert caller.member is not None  # only a member's node holds the steward role
    return caller.member


@router.get(
    "/trust",
    summary="The CA certificate and the coordinator's key",
    dependencies=[allow(Action.TRUST_READ)],
)
def trust(home: Home) -> PlainJSON:
    return PlainJSON(invitations.trust_anchors(home))


@router.post(
    "/join",
    summary="A node joins with its invitation, signed by its new key",
    dependencies=[allow(Action.JOIN)],
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


@router.post("/requests/{request_id}/sign", summary="The steward signs at its node")
def sign(
    home: Home,
    request_id: str,
    body: SignBody,
    caller: Annotated[Principal, allow(Action.REQUEST_SIGN)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.sign_at_node(home, submission, request_id, body.agreement_id))


@router.post("/requests/{request_id}/refuse", summary="The steward refuses, with a reason")
def refuse(
    home: Home,
    request_id: str,
    body: ReasonBody,
    caller: Annotated[Principal, allow(Action.REQUEST_REFUSE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.refuse_at_node(home, submission, request_id, body.reason))


@router.post("/agreements/{agreement_id}/revoke", summary="The steward revokes, node first")
def revoke(
    home: Home,
    agreement_id: str,
    body: ReasonBody,
    caller: Annotated[Principal, allow(Action.AGREEMENT_REVOKE)],
) -> PlainJSON:
    submission = signed_acts.submitted_by(home, _member(caller), body.signatures, body.at)
    return answer(signed_acts.revoke_at_node(home, submission, agreement_id, body.reason))


@router.post("/datasets", summary="A steward's node registers a dataset it keeps (metadata)")
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
