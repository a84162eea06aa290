"""Members join with an Ed25519 key pair their node makes; the private key never leaves it."""

from dataclasses import dataclass

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow
from kumiai.domain import keys
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.domain.member import parse_member_kind
from kumiai.domain.names import check_slug
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import all_rows, get


@dataclass(frozen=True)
class MemberInfo:
    name: str
    kind: str
    key_fingerprint: str
    home: str


def _info(row: MemberRow) -> MemberInfo:
    return MemberInfo(row.name, row.kind, row.key_fingerprint, row.home)


def add_member(consortium: Consortium, name: str, kind: str) -> MemberInfo:
    """The member's node creates its identity and key; the coordinator registers the public key."""
    check_slug(name, "member")
    member_kind = parse_member_kind(kind)
    with transaction(consortium.sessions) as session:
        if session.get(MemberRow, name) is not None:
            raise InvalidInput(f"member {name!r} already exists; choose another name")
        node = consortium.node(name)
        public = node.join(name, member_kind.value, consortium.coordinator_public_key())
        row = MemberRow(
            name=name,
            kind=member_kind.value,
            public_key=public,
            key_fingerprint=keys.fingerprint(public),
            home=node.address,
            joined_at=utc_now(),
        )
        session.add(row)
        # Self-signed: the new key vouches for itself; auditors may pin it out of band.
        payload = {"member": name, "kind": member_kind.value, "public_key": public}
        consortium.ledger.append(session, Act(name, "member.joined", payload, member=name))
        return _info(row)


def rotate_key(consortium: Consortium, name: str) -> MemberInfo:
    """Give a member a new key. The entry is signed with the old key, which vouches for it.

    The node makes the new key and keeps it waiting until the entry is written; only its
    public half comes back.
    """
    with transaction(consortium.sessions) as session:
        row = get(session, MemberRow, name)
        node = consortium.node(name)
        public = node.next_key()
        payload = {"member": name, "public_key": public, "previous_key": row.public_key}
        consortium.ledger.append(session, Act(name, "member.key-rotated", payload, member=name))
        row.public_key, row.key_fingerprint = public, keys.fingerprint(public)
        session.flush()
        node.rotate_key()  # last: the commit follows immediately
        return _info(row)


def list_members(consortium: Consortium) -> list[MemberInfo]:
    with transaction(consortium.sessions) as session:
        return [_info(r) for r in all_rows(session, MemberRow, MemberRow.name)]
