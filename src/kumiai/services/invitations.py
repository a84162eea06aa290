"""Invitations: the operator invites a member by name; its node joins with the token.

The coordinator keeps only the token's SHA-256, so an edited token is unknown, and marks
it used in the transaction that writes the member, so a token joins one node once.
"""

from dataclasses import dataclass
from datetime import datetime

from kumiai.adapters.flower.superlink import checked_supernode_key
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import InvitationRow, MemberRow
from kumiai.domain import keys
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.invitation import Invitation, new_invitation, read_token
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.member import MemberKind, parse_member_kind
from kumiai.domain.names import check_slug
from kumiai.services.consortium import Consortium
from kumiai.services.coordinator_tls import serving_files
from kumiai.services.ledger import Act
from kumiai.services.members import MemberInfo, join, require_admission
from kumiai.services.node_admission import members_changed
from kumiai.services.signed_acts import SignThis, Submission, run_signed


@dataclass(frozen=True)
class InviteInfo:
    token: str
    id: str
    member: str
    kind: str
    ca_fingerprint: str
    coordinator_key_fingerprint: str
    created_at: datetime


def invite_member(consortium: Consortium, name: str, kind: str) -> InviteInfo:
    """A one-time token for `name`'s node; the TLS files must exist (they are what it pins)."""
    check_slug(name, "member")
    member_kind = parse_member_kind(kind)
    if member_kind is MemberKind.SPINOUT:
        raise InvalidInput(
            "a spin-out joins when its create-spinout motion passes, not by invitation"
        )
    ca = serving_files(consortium.home).fingerprint()
    invitation = new_invitation(
        name, member_kind.value, ca, keys.fingerprint(consortium.coordinator_public_key())
    )
    with transaction(consortium.sessions) as session:
        if session.get(MemberRow, name) is not None:
            raise InvalidInput(f"member {name!r} already exists; invite another name")
        require_admission(session, name)  # checked again when the node joins
        now = utc_now()
        session.add(
            InvitationRow(
                id=invitation.id,
                member=name,
                kind=member_kind.value,
                secret_sha256=invitation.digest(),
                created_at=now,
            )
        )
        payload = {"member": name, "kind": member_kind.value, "invitation": invitation.id}
        consortium.ledger.append(session, Act(COORDINATOR, "member.invited", payload, member=name))
    return InviteInfo(
        invitation.token(),
        invitation.id,
        name,
        member_kind.value,
        ca,
        invitation.coordinator_key,
        now,
    )


def _redeem(
    consortium: Consortium,
    invitation: Invitation,
    public_key: str,
    supernode_key: str | None = None,
) -> MemberInfo:
    """In one transaction: the token checked and spent, the member joined with its own key."""
    with transaction(consortium.sessions) as session:
        row = session.get(InvitationRow, invitation.id)
        if row is None or row.secret_sha256 != invitation.digest():
            raise NotFound(
                f"unknown invitation {invitation.id} (or it was altered); ask the operator "
                "for a new one"
            )
        if row.used_at is not None:
            raise StateError(
                f"invitation {invitation.id} was already used at {to_iso(row.used_at)}; "
                "each invitation joins one node once"
            )
        if session.get(MemberRow, row.member) is not None:
            raise StateError(f"member {row.member!r} has already joined")
        require_admission(session, row.member)
        row.used_at = utc_now()
        member = join(
            consortium, session, row.member, MemberKind(row.kind), supernode_key=supernode_key
        )
        return MemberInfo(member.name, member.kind, member.key_fingerprint, member.home)


def join_with_invitation(
    consortium: Consortium,
    token: str,
    public_key: str,
    signatures: tuple[str, ...] = (),
    at: datetime | None = None,
    supernode_key: str | None = None,
) -> MemberInfo | SignThis:
    """One round of a node joining: its `member.joined` entry is signed by its new key.

    `supernode_key` is the public half of the SuperNode key the node made in its own home:
    it goes into the signed `member.joined` entry and into `members.supernode_key`, the key
    the SuperLink will register (and the only one it lets in for this member)."""
    invitation = read_token(token)
    if supernode_key is not None:
        supernode_key = checked_supernode_key(supernode_key)
    submission = Submission(invitation.member, public_key, signatures, at)
    joined = run_signed(
        consortium,
        submission,
        lambda: _redeem(consortium, invitation, public_key, supernode_key),
    )
    if isinstance(joined, MemberInfo):
        members_changed()  # a running SuperLink admits the new node now
    return joined


def trust_anchors(consortium: Consortium) -> dict[str, str]:
    """What a joining node fetches and checks against its invitation's fingerprints."""
    return {
        "ca_cert": serving_files(consortium.home).ca_cert.read_text(encoding="ascii"),
        "coordinator_key": consortium.coordinator_public_key(),
    }
