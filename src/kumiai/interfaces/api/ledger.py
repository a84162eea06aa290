"""The transparency ledger: entries, one entry, proofs, the latest signed head, the export
and the keys to check it with.

A reader checks what it gets with the domain's Merkle functions (RFC 6962) and the
coordinator's key, never by trusting this server.
"""

import json
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from kumiai.domain.request_auth import content_digest
from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import Home, PlainJSON, Seq, reply, stored_int
from kumiai.interfaces.api.openapi import ok
from kumiai.services import transparency
from kumiai.services.transparency import ConsistencyProof, EntryView

# Public, every route: a transparency log anyone can check needs no key.
router = APIRouter(prefix="/ledger", tags=["ledger"], dependencies=[allow(Action.LEDGER_READ)])


class HeadDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    version: int
    size: int
    root: str
    time: str


class SignedHead(BaseModel):
    """`{head, signature}`: check the signature with the coordinator's key from /trust."""

    model_config = ConfigDict(extra="forbid")
    head: HeadDocument
    signature: str


class InclusionProofReply(BaseModel):
    """Check it with `kumiai.domain.merkle.verify_inclusion`, not by trusting `verified`."""

    model_config = ConfigDict(extra="forbid")
    seq: int
    leaf_hash: str
    tree_size: int
    root: str
    head_signature: str
    path: list[str]
    verified: bool


@router.get(
    "/entries",
    summary="`kumiai ledger show --json`, with `after` to page",
    responses=ok(list[EntryView]),
)
def entries(
    home: Home,
    kind: Annotated[str | None, Query(description="A kind or prefix: 'agreement.'")] = None,
    after: Annotated[int | None, stored_int("Only entries with a greater seq.")] = None,
    member: str | None = None,
    dataset: str | None = None,
    project: str | None = None,
    last: Annotated[int | None, stored_int("Only the last N matching.")] = None,
) -> PlainJSON:
    return reply(
        transparency.show_entries(
            home,
            member=member,
            dataset=dataset,
            project=project,
            kind=kind,
            limit=last,
            after=after,
        )
    )


@router.get("/entries/{seq}", summary="One entry", responses=ok(EntryView))
def entry(home: Home, seq: Seq) -> PlainJSON:
    return reply(transparency.show_entry(home, seq))


@router.get(
    "/entries/{seq}/proof",
    summary="`kumiai ledger prove SEQ`: inclusion proof",
    responses=ok(InclusionProofReply),
)
def inclusion_proof(home: Home, seq: Seq) -> PlainJSON:
    return reply(transparency.prove_inclusion(home, seq).document())


@router.get(
    "/consistency",
    summary="A consistency proof from size `old` to size `new`",
    responses=ok(ConsistencyProof),
)
def consistency_proof(
    home: Home,
    old: Annotated[int, stored_int("The older tree size.")],
    new: Annotated[int, stored_int("The newer tree size, up to the latest head's.")],
) -> PlainJSON:
    return reply(transparency.prove_consistency(home, old, new))


@router.get(
    "/head", summary="The latest signed tree head: {head, signature}", responses=ok(SignedHead)
)
def head(home: Home) -> PlainJSON:
    return reply(json.loads(transparency.latest_head(home).to_json()))


EXPORT_CHUNK = 64 * 1024


@router.get(
    "/export",
    summary="`kumiai ledger export`: the whole log as JSON lines",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One signed entry per line, oldest first: the very bytes `kumiai "
            "ledger export` writes, with their length and SHA-256 (`Content-Digest`, RFC 9530) "
            "so that a client keeps nothing cut short or altered.",
            "content": {"application/jsonl": {"schema": {"type": "string"}}},
        }
    },
)
def export(home: Home) -> StreamingResponse:
    data, _ = transparency.export_lines(home)  # one snapshot, read in one transaction
    chunks = (data[i : i + EXPORT_CHUNK] for i in range(0, len(data), EXPORT_CHUNK))
    return StreamingResponse(
        chunks,
        media_type="application/jsonl",
        headers={
            "Content-Disposition": 'attachment; filename="ledger-export.jsonl"',
            "Content-Length": str(len(data)),
            "Content-Digest": content_digest(data),
        },
    )


@router.get(
    "/keys",
    summary="`kumiai ledger export --keys`: each member's current public key, and the "
    "coordinator's",
    responses=ok(dict[str, str]),
)
def member_keys(home: Home) -> PlainJSON:
    """Public like the log, which carries every key already; an auditor should still compare
    them with keys it got through another channel before pinning them."""
    return reply(transparency.member_keys(home))
