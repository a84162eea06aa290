"""Signing in to the dashboard with a member's key: a one-time challenge, signed at the node.

No passwords: the dashboard shows a random challenge, the member's node signs it
(`kumiai node sign-in CHALLENGE --home NODE_HOME`), and the coordinator checks the signature
with the key it already holds for that member (or the operator's key, or a granted
auditor's). The signed text names its purpose, so a signature made here can never pass for a
ledger entry or an API request, and the reverse:

    kumiai-dashboard-sign-in:v1:<challenge>

The response is `KEYID.SIGNATURE` (the key's fingerprint, then the base64 Ed25519 signature),
one line to paste. A challenge lives `CHALLENGE_LIFETIME` seconds and is spent by its first
use, right or wrong, so a response cannot be replayed.
"""

import re
import secrets
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.errors import InvalidInput, Unauthenticated

PURPOSE = "kumiai-dashboard-sign-in:v1:"
CHALLENGE_LIFETIME = timedelta(minutes=5)
SESSION_LIFETIME = timedelta(hours=8)
_CHALLENGE = re.compile(r"[0-9a-f]{64}")
_RESPONSE = re.compile(r"(?P<keyid>[0-9a-f]{16})\.(?P<signature>[A-Za-z0-9+/]{86}==)")


def new_challenge() -> str:
    """256 random bits in hex: nothing a signer could choose or guess, and never taken for a
    command-line option (a URL-safe token may begin with "-")."""
    return secrets.token_hex(32)


def message(challenge: str) -> bytes:
    """The exact bytes a node signs for `challenge`."""
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidInput(
            f"{challenge!r} is not a sign-in challenge; copy the one the dashboard's "
            "sign-in page shows"
        )
    return (PURPOSE + challenge).encode("ascii")


def respond(key: Ed25519PrivateKey, challenge: str) -> str:
    """The line a node prints for the sign-in form: its key id and its signature."""
    signature = keys.sign(key, message(challenge))
    return f"{keys.fingerprint(keys.public_key_b64(key))}.{signature}"


def key_of(response: str) -> str:
    """The key id a response claims, before anything is believed."""
    found = _RESPONSE.fullmatch(response.strip())
    if found is None:
        raise Unauthenticated(
            "the response is not KEYID.SIGNATURE; paste the line "
            "`kumiai node sign-in CHALLENGE --home NODE_HOME` printed"
        )
    return found.group("keyid")


def check_response(
    challenge: str, issued: datetime, now: datetime, response: str, public_key: str
) -> None:
    """Refuse an expired challenge or a signature not made by `public_key` over it."""
    if now - issued > CHALLENGE_LIFETIME:
        raise Unauthenticated(
            f"the challenge expired (it lives {CHALLENGE_LIFETIME.seconds // 60} minutes); "
            "reload the sign-in page and sign the new one"
        )
    found = _RESPONSE.fullmatch(response.strip())
    if found is None or keys.fingerprint(public_key) != found.group("keyid"):
        raise Unauthenticated("the response does not name this key; sign with your node's key")
    if not keys.verify(public_key, message(challenge), found.group("signature")):
        raise Unauthenticated(
            "the signature does not verify with the key on record for "
            f"{found.group('keyid')}; sign this page's challenge with that node's key"
        )
