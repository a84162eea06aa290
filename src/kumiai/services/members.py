"""Members join with an Ed25519 key pair; the private key stays in the member's own home."""

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
    """Create the member's node home and key, then register its public key."""
    check_slug(name, "member")
    member_kind = parse_member_kind(kind)
    with transaction(consortium.sessions) as session:
        if session.get(MemberRow, name) is not None:
            raise InvalidInput(f"member {name!r} already exists; choose another name")
        home = consortium.member_home(name)
        public = consortium.node(name).create(
            name, member_kind.value, keys.new_private_key(), consortium.coordinator_public_key()
        )
        row = MemberRow(
            name=name,
            kind=member_kind.value,
            public_key=public,
            key_fingerprint=keys.fingerprint(public),
            home=str(home),
            joined_at=utc_now(),
        )
        session.add(row)
        # Self-signed: the new key vouches for itself; auditors may pin it out of band.
        payload = {"member": name, "kind": member_kind.value, "public_key": public}
        consortium.ledger.append(session, Act(name, "member.joined", payload, member=name))
        return _info(row)


def rotate_key(consortium: Consortium, name: str) -> MemberInfo:
    """Give a member a new key. The entry is signed with the old key, which vouches for it."""
    with transaction(consortium.sessions) as session:
        row = get(session, MemberRow, name)
        new_key = keys.new_private_key()
        public = keys.public_key_b64(new_key)
        payload = {"member": name, "public_key": public, "previous_key": row.public_key}
        consortium.ledger.append(session, Act(name, "member.key-rotated", payload, member=name))
        row.public_key, row.key_fingerprint = public, keys.fingerprint(public)
        session.flush()
        consortium.node(name).rotate_key(new_key)  # last: the commit follows immediately
        consortium.ledger.forget_key(name)
        return _info(row)


def list_members(consortium: Consortium) -> list[MemberInfo]:
    with transaction(consortium.sessions) as session:
        return [_info(r) for r in all_rows(session, MemberRow, MemberRow.name)]
