"""Members join with an Ed25519 key pair their node makes; the private key never leaves it."""

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow, MotionRow
from kumiai.domain import keys
from kumiai.domain.charter import Decision
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, KumiaiError, StateError
from kumiai.domain.member import MemberKind, parse_member_kind
from kumiai.domain.names import check_slug
from kumiai.node.port import NodePort
from kumiai.services.charter import adopted_charter
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
    if member_kind is MemberKind.SPINOUT:
        raise InvalidInput(
            f"a spin-out joins when the board passes its create-spinout motion, not by "
            f"member add: kumiai spinout create {name} --founders A,B --theme T --by SEAT"
        )
    with transaction(consortium.sessions) as session:
        if session.get(MemberRow, name) is not None:
            raise InvalidInput(f"member {name!r} already exists; choose another name")
        require_admission(session, name)
        return _info(join(consortium, session, name, member_kind))


def join(
    consortium: Consortium,
    session: Session,
    name: str,
    kind: MemberKind,
    supernode_key: str | None = None,
) -> MemberRow:
    """Inside the caller's transaction: the node makes its key, the member and entry are written.

    Also the path a spin-out takes when its create-spinout motion passes (services.spinouts).
    """
    if supernode_key is not None:
        _refuse_a_held_supernode_key(session, supernode_key)
    node = consortium.node(name)
    public = node.join(name, kind.value, consortium.coordinator_public_key())
    row = MemberRow(
        name=name,
        kind=kind.value,
        public_key=public,
        key_fingerprint=keys.fingerprint(public),
        home=node.address,
        joined_at=utc_now(),
        # what the SuperLink will let in, and only this: submitted by a node on its own machine
        supernode_key=supernode_key or _supernode_key(node),
    )
    session.add(row)
    # Self-signed: the new key vouches for itself; auditors may pin it out of band.
    payload = {"member": name, "kind": kind.value, "public_key": public}
    if supernode_key is not None:  # the node signs the SuperNode key it submitted
        payload["supernode_key"] = supernode_key
    consortium.ledger.append(session, Act(name, "member.joined", payload, member=name))
    return row


def _refuse_a_held_supernode_key(session: Session, supernode_key: str) -> None:
    """Each node makes its own SuperNode key: one another member holds (it is public, in
    that member's `member.joined` entry) is refused, or one node would answer for two."""
    holder = session.scalars(
        select(MemberRow.name).where(MemberRow.supernode_key == supernode_key)
    ).first()
    if holder is not None:
        raise InvalidInput(
            f"that SuperNode key is already {holder!r}'s; each node joins with the key it made "
            "in its own home (NODE_HOME/supernode/supernode_auth.pub, made by kumiai node init)"
        )


def _supernode_key(node: NodePort) -> str | None:
    """The node's SuperNode key, when the node is here to make it; a node on its own machine
    has not submitted one yet, and `coordinator serve --superlink-port` names it."""
    try:
        return node.supernode_key()
    except KumiaiError:
        return None


def admitting_motion(session: Session, name: str) -> str | None:
    """The passed admit-member motion that names this member, if any."""
    rows = session.scalars(
        select(MotionRow)
        .where(MotionRow.decision == Decision.ADMIT_MEMBER.value, MotionRow.status == "passed")
        .order_by(MotionRow.closed_at)
    )
    return next((r.id for r in rows if json.loads(r.payload_json).get("member") == name), None)


def require_admission(session: Session, name: str) -> None:
    """Founders join before the charter; once it is adopted, only whom the board admits.

    The motion admits; joining stays the member's own step, because only its node may make
    its key.
    """
    if adopted_charter(session) is not None and admitting_motion(session, name) is None:
        raise StateError(
            f"the charter is adopted, so {name!r} joins only once the board admits it: "
            f"kumiai motion propose admit-member --set member={name} --by SEAT, then the "
            "seats vote and the motion is closed"
        )


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
