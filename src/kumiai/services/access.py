"""Who is calling the coordinator's API: signed requests checked, keys resolved to roles.

A key id names one of three kinds of key: the coordinator's own (the `operator`), a member's
node key (its `steward` and `researcher`, and `board` where the charter gives it a seat), or
a key the operator granted a read-only role (`kumiai coordinator grant`). The request's
nonce is written to the `request_nonces` table in the same check, so two coordinator
workers refuse the same replay; nonces whose signature has expired are pruned there too.
"""

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AccessGrantRow, MemberRow, RequestNonceRow
from kumiai.domain import keys
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, Unauthenticated
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.names import check_slug
from kumiai.domain.request_auth import Claim, HttpRequest, expiry, read_claim, verify_request
from kumiai.domain.roles import Action, Role, parse_role, require
from kumiai.domain.sign_in import check_response, key_of
from kumiai.services.charter import adopted_charter
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act

READ_ONLY_ROLES = frozenset({Role.AUDITOR})  # what `coordinator grant` may hand out


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its name, its roles, and the member it is (if any)."""

    name: str
    roles: frozenset[Role]
    member: str | None = None

    def require(self, action: Action) -> None:
        require(self.name, self.roles, action)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "roles": sorted(self.roles), "member": self.member}


@dataclass(frozen=True)
class GrantInfo:
    name: str
    role: str
    key_fingerprint: str
    granted_at: datetime


def member_roles(session: Session, member: str) -> frozenset[Role]:
    """A member's node: steward and researcher; board where the charter gives it a seat.

    Before a charter is adopted every member decides together, as the founders do.
    """
    charter = adopted_charter(session)
    board = charter is None or member in charter.seats
    return frozenset({Role.STEWARD, Role.RESEARCHER, *([Role.BOARD] if board else [])})


def _principal(consortium: Consortium, session: Session, keyid: str) -> tuple[str, Principal]:
    """The public key and the principal a key id names, or Unauthenticated."""
    operator = consortium.coordinator_public_key()
    if keys.fingerprint(operator) == keyid:
        return operator, Principal(COORDINATOR, frozenset({Role.OPERATOR}))
    member = session.scalars(select(MemberRow).where(MemberRow.key_fingerprint == keyid)).first()
    if member is not None:
        roles = member_roles(session, member.name)
        return member.public_key, Principal(member.name, roles, member.name)
    grant = session.scalars(
        select(AccessGrantRow).where(AccessGrantRow.key_fingerprint == keyid)
    ).first()
    if grant is not None:
        return grant.public_key, Principal(grant.name, frozenset({Role(grant.role)}))
    raise Unauthenticated(
        f"unknown key {keyid}: not the coordinator's, a member's node key or a granted key; "
        "a member joins with an invitation, an auditor is registered with "
        "`kumiai coordinator grant`"
    )


def authenticate(
    consortium: Consortium, request: HttpRequest, now: datetime | None = None
) -> Principal:
    """Check a signed request and spend its nonce; the principal it speaks for."""
    claim = read_claim(request.headers)
    holder: list[Principal] = []

    def key_of(session: Session) -> str:
        public_key, principal = _principal(consortium, session, claim.keyid)
        holder.append(principal)
        return public_key

    _check(consortium, request, claim, key_of, now or utc_now())
    return holder[0]


def sign_in(
    consortium: Consortium, challenge: str, issued: datetime, response: str, now: datetime
) -> Principal:
    """The dashboard's sign-in: the principal whose key on record signed `challenge`.

    The same three kinds of key as a signed request (operator, member's node, granted
    auditor), so the dashboard's viewer holds exactly the roles the API would give it.
    """
    with transaction(consortium.sessions) as session:
        public_key, principal = _principal(consortium, session, key_of(response))
    check_response(challenge, issued, now, response, public_key)
    return principal


def authenticate_new_key(
    consortium: Consortium, request: HttpRequest, public_key: str, now: datetime | None = None
) -> None:
    """A joining node's request, signed by the key it is about to register."""
    claim = read_claim(request.headers)
    if not _is_public_key(public_key) or claim.keyid != keys.fingerprint(public_key):
        raise Unauthenticated(
            f"the join must be signed by the key it registers ({claim.keyid} is not that key)"
        )
    _check(consortium, request, claim, lambda _: public_key, now or utc_now())


def _check(
    consortium: Consortium,
    request: HttpRequest,
    claim: Claim,
    key_of: Callable[[Session], str],
    now: datetime,
) -> None:
    try:
        with transaction(consortium.sessions) as session:
            verify_request(request, claim, key_of(session), now)
            session.execute(delete(RequestNonceRow).where(RequestNonceRow.expires_at < now))
            if session.get(RequestNonceRow, claim.nonce) is not None:
                raise Unauthenticated(_replayed(claim.nonce))
            session.add(
                RequestNonceRow(nonce=claim.nonce, keyid=claim.keyid, expires_at=expiry(claim))
            )
    except IntegrityError:  # another worker spent the same nonce between our read and write
        raise Unauthenticated(_replayed(claim.nonce)) from None


def _replayed(nonce: str) -> str:
    return f"nonce {nonce} was already used: a replayed request is refused; sign a new one"


def grant_access(consortium: Consortium, *, name: str, role: str, public_key: str) -> GrantInfo:
    """The operator registers a read-only key (an auditor's, an investor's), in the ledger."""
    check_slug(name, "grant")
    granted = parse_role(role)
    if granted not in READ_ONLY_ROLES:
        raise InvalidInput(
            f"only read-only roles are granted by key ({', '.join(sorted(READ_ONLY_ROLES))}); "
            f"a {granted} is a member's node, which joins with `kumiai coordinator invite`"
        )
    if not _is_public_key(public_key):
        raise InvalidInput(
            f"{public_key!r} is not an Ed25519 public key (base64 of 32 bytes); "
            "give the key the auditor's `kumiai` printed"
        )
    fingerprint = keys.fingerprint(public_key)
    with transaction(consortium.sessions) as session:
        if session.get(AccessGrantRow, name) is not None:
            raise InvalidInput(f"a key is already granted as {name!r}; choose another name")
        holder = _holder(consortium, session, fingerprint)
        if holder is not None:
            raise InvalidInput(f"key {fingerprint} already belongs to {holder}")
        row = AccessGrantRow(
            name=name,
            role=granted.value,
            public_key=public_key,
            key_fingerprint=fingerprint,
            granted_at=utc_now(),
        )
        session.add(row)
        payload = {"name": name, "role": granted.value, "public_key": public_key}
        consortium.ledger.append(session, Act(COORDINATOR, "access.granted", payload))
        return GrantInfo(row.name, row.role, row.key_fingerprint, row.granted_at)


def _holder(consortium: Consortium, session: Session, fingerprint: str) -> str | None:
    taken = session.scalars(
        select(MemberRow.name).where(MemberRow.key_fingerprint == fingerprint)
    ).first()
    clash = session.scalars(
        select(AccessGrantRow.name).where(AccessGrantRow.key_fingerprint == fingerprint)
    ).first()
    if fingerprint == keys.fingerprint(consortium.coordinator_public_key()):
        return COORDINATOR
    return taken or clash


def key_holder(consortium: Consortium, public_key: str) -> str | None:
    """Who already holds `public_key` (a member, a grant, the coordinator), if anyone: one
    key is one caller. Refuses what is not an Ed25519 public key."""
    if not _is_public_key(public_key):
        raise InvalidInput(f"{public_key!r} is not an Ed25519 public key (base64 of 32 bytes)")
    with transaction(consortium.sessions) as session:
        return _holder(consortium, session, keys.fingerprint(public_key))


def _is_public_key(text: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False
    return True
