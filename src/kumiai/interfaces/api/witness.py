"""Witnesses: publish a cosignature, and read every witness's latest cosigned head.

A node fetches `/ledger/head`, checks it against the last head it witnessed with a proof
from `/ledger/consistency`, cosigns it and POSTs the cosignature here. It then reads the
other witnesses' cosigned heads and compares them with its own (`kumiai node witness`).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from kumiai.domain.ledger import TreeHead
from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import Home, PlainJSON, reply, stored_int
from kumiai.interfaces.api.openapi import ok
from kumiai.services import witnesses
from kumiai.services.peer_evidence import rotation_evidence

router = APIRouter(prefix="/witness", tags=["witness"])


class Cosignature(BaseModel):
    witness: str = Field(description="The member whose node cosigns.")
    head: dict[str, Any] = Field(description="The signed head as GET /ledger/head gave it.")
    signature: str = Field(description="The member's Ed25519 signature (base64) on the head.")


class Recorded(BaseModel):
    model_config = ConfigDict(extra="forbid")
    witness: str
    size: int
    recorded: bool


@router.post(
    "/cosignatures",
    summary="Publish a cosignature; the signature authenticates it",
    dependencies=[allow(Action.COSIGN)],
    responses=ok(Recorded, "The cosignature is recorded."),
)
def publish(home: Home, cosignature: Cosignature) -> PlainJSON:
    head = TreeHead.from_document(cosignature.head)
    witnesses.publish_cosignature(home, cosignature.witness, head, cosignature.signature)
    return reply({"witness": cosignature.witness, "size": head.size, "recorded": True})


@router.get(
    "/cosigned",
    summary="Every witness's latest cosigned head, with its signature",
    dependencies=[allow(Action.WITNESS_READ)],
)
def cosigned(home: Home) -> PlainJSON:
    return reply([c.document() for c in witnesses.cosigned_heads(home)])


class RotationEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    leaf: str = Field(description="The signed entry's canonical JSON, as hashed into the tree.")
    path: list[str] = Field(description="Its inclusion proof under the tree of `size` entries.")


@router.get(
    "/rotations",
    summary="A member's key rotations, proven under a head a witness checked",
    dependencies=[allow(Action.WITNESS_READ)],
    responses=ok(list[RotationEvidence]),
)
def rotations(
    home: Home,
    member: Annotated[str, Query(description="The witness whose key changed.")],
    size: Annotated[int, stored_int("The size of the head the witness checked.")],
) -> PlainJSON:
    """A witness follows a new key only along these entries, checked against its own head
    (kumiai.domain.witness_rotation); the coordinator can withhold them, not forge them."""
    return reply(rotation_evidence(home, member, size))
