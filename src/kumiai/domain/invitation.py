"""A one-time invitation to join: who may join, and whom the new node must trust.

The token carries the coordinator's public key fingerprint and the SHA-256 of the
consortium's CA certificate, so the joining node checks both before it trusts anything the
coordinator serves, plus a random secret. The coordinator keeps only the SHA-256 of the
token's canonical JSON: a token edited in any field (a fingerprint swapped for an
attacker's, another member's name) is refused as unknown.

    kumiai-invite-eyJjYSI6IjQ0…   (base64url of the canonical JSON below)
    {"ca": "44f1…", "coordinator_key": "9a3c0e…", "id": "inv-1a2b3c4d", "kind": "hospital",
     "member": "st-mary", "secret": "…", "type": "kumiai.invitation", "version": 1}
"""

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from kumiai.domain.canonical import canonical_json, load_json
from kumiai.domain.errors import InvalidInput

PREFIX = "kumiai-invite-"
TYPE, VERSION = "kumiai.invitation", 1
_FIELDS = frozenset({"type", "version", "id", "member", "kind", "secret", "ca", "coordinator_key"})
_HEX64, _HEX16 = re.compile(r"[0-9a-f]{64}"), re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Invitation:
    id: str
    member: str
    kind: str
    secret: str
    ca: str  # SHA-256 of the CA certificate (DER), hex
    coordinator_key: str  # the coordinator key's fingerprint

    def document(self) -> dict[str, Any]:
        return {
            "type": TYPE,
            "version": VERSION,
            "id": self.id,
            "member": self.member,
            "kind": self.kind,
            "secret": self.secret,
            "ca": self.ca,
            "coordinator_key": self.coordinator_key,
        }

    def token(self) -> str:
        return PREFIX + base64.urlsafe_b64encode(canonical_json(self.document())).decode()

    def digest(self) -> str:
        """What the coordinator keeps: the SHA-256 of the whole token, secret included."""
        return hashlib.sha256(canonical_json(self.document())).hexdigest()


def new_invitation(member: str, kind: str, ca: str, coordinator_key: str) -> Invitation:
    return Invitation(
        f"inv-{secrets.token_hex(4)}", member, kind, secrets.token_urlsafe(24), ca, coordinator_key
    )


def read_token(text: str) -> Invitation:
    """Parse a token strictly; the fix names where a good one comes from."""
    fix = "ask the consortium's operator for a new one (kumiai coordinator invite NAME)"
    text = text.strip()
    try:
        if not text.startswith(PREFIX):
            raise ValueError
        doc = load_json(base64.urlsafe_b64decode(text[len(PREFIX) :].encode()))
        if not isinstance(doc, dict) or doc.keys() != _FIELDS:
            raise ValueError
        if doc["type"] != TYPE or doc["version"] != VERSION:
            raise ValueError
        invitation = Invitation(
            *(str(doc[f]) for f in ("id", "member", "kind", "secret", "ca", "coordinator_key"))
        )
        if not (_HEX64.fullmatch(invitation.ca) and _HEX16.fullmatch(invitation.coordinator_key)):
            raise ValueError
    except (ValueError, binascii.Error, InvalidInput):
        raise InvalidInput(f"this is not a kumiai invitation token; {fix}") from None
    return invitation


def check_trust(invitation: Invitation, ca_fingerprint: str, key_fingerprint: str) -> None:
    """The joining node's first check: the coordinator it reached is the one invited to."""
    if ca_fingerprint != invitation.ca:
        raise InvalidInput(
            f"the coordinator's CA certificate (SHA-256 {ca_fingerprint}) is not the one "
            f"the invitation names ({invitation.ca}); refusing to trust it — check the URL, "
            "or ask the operator whether the CA changed"
        )
    if key_fingerprint != invitation.coordinator_key:
        raise InvalidInput(
            f"the coordinator's key ({key_fingerprint}) is not the one the invitation names "
            f"({invitation.coordinator_key}); refusing to trust it"
        )
