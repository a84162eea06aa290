"""Signed API requests: RFC 9421 (HTTP Message Signatures) with Ed25519, a fixed profile.

Why by hand: `http-message-signatures` (PyPI, 3.0) signs and verifies RFC 9421 with Ed25519
and checks Content-Digest against a body it is given, but it works on `requests`-style
message objects (the server would adapt Starlette's request to it), and the rules that
matter most here stay with its caller anyway: the nonce store that refuses a replay, the
five-minute cap on a signature's lifetime, the clock-skew rule, and refusing every profile
but one. kumiai needs one profile only, so it writes that profile strictly, here in the
domain with no I/O, in the RFC's own form (the `Signature-Input` / `Signature` headers, the
signature base, RFC 9530's `content-digest`). A general RFC 9421 verifier could be pointed
at it; that is not tested yet.

The signature covers the method, the path, the query, the SHA-256 of the body, the signer's
key id (its fingerprint), a random nonce, and when the signature was created and expires:

    "@method": POST
    "@path": /requests/req-1/refuse
    "@query": ?
    "content-digest": sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:
    "@signature-params": ("@method" "@path" "@query" "content-digest");created=…;
        expires=…;nonce="…";keyid="…";alg="ed25519"      (one line, wrapped here)

Each refusal has its own reason: unknown key (the caller resolves it), bad signature, body
changed, expired, created in the future (beyond `SKEW`), a lifetime longer than
`MAX_LIFETIME`, and — in the coordinator's nonce table — a nonce replayed.
"""

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.errors import Unauthenticated

LABEL = "kumiai"
COMPONENTS = '("@method" "@path" "@query" "content-digest")'
MAX_LIFETIME = 300  # seconds: a signed request is good for five minutes at most
DEFAULT_LIFETIME = 60
SKEW = 30  # seconds a signer's clock may run ahead of the coordinator's

_INPUT = re.compile(
    rf"{LABEL}={re.escape(COMPONENTS)};created=(?P<created>\d{{1,12}});"
    r'expires=(?P<expires>\d{1,12});nonce="(?P<nonce>[A-Za-z0-9_-]{16,64})";'
    r'keyid="(?P<keyid>[0-9a-f]{16})";alg="ed25519"'
)
_SIGNATURE = re.compile(rf"{LABEL}=:(?P<signature>[A-Za-z0-9+/]{{86}}==):")


@dataclass(frozen=True)
class HttpRequest:
    """The parts of a request the signature covers, as the server received them."""

    method: str
    path: str  # the path as sent, percent-encoded, without the query
    query: str  # the query string without "?" ("" when there is none)
    body: bytes
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True)
class Claim:
    """What a request's signature headers say, before anything is believed."""

    keyid: str
    nonce: str
    created: int
    expires: int
    signature: str
    params: str


def content_digest(body: bytes) -> str:
    """RFC 9530's `Content-Digest` value for the body."""
    return digest_header(hashlib.sha256(body).digest())


def digest_header(sha256: bytes) -> str:
    """The `Content-Digest` value for a SHA-256 computed elsewhere (a streamed download)."""
    return f"sha-256=:{base64.b64encode(sha256).decode()}:"


def _params(keyid: str, nonce: str, created: int, expires: int) -> str:
    return (
        f'{COMPONENTS};created={created};expires={expires};nonce="{nonce}";'
        f'keyid="{keyid}";alg="ed25519"'
    )


def signature_base(method: str, path: str, query: str, digest: str, params: str) -> bytes:
    """RFC 9421 §2.5: one line per covered component, then the signature parameters."""
    lines = [
        f'"@method": {method.upper()}',
        f'"@path": {path or "/"}',
        f'"@query": ?{query}',
        f'"content-digest": {digest}',
        f'"@signature-params": {params}',
    ]
    return "\n".join(lines).encode()


def sign_request(
    key: Ed25519PrivateKey,
    *,
    method: str,
    path: str,
    query: str,
    body: bytes,
    now: datetime,
    lifetime: int = DEFAULT_LIFETIME,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three headers that sign a request with `key`; its key id is the key's fingerprint."""
    created = int(now.timestamp())
    params = _params(
        keys.fingerprint(keys.public_key_b64(key)),
        nonce or secrets.token_urlsafe(18),
        created,
        created + lifetime,
    )
    digest = content_digest(body)
    signature = keys.sign(key, signature_base(method, path, query, digest, params))
    return {
        "Content-Digest": digest,
        "Signature-Input": f"{LABEL}={params}",
        "Signature": f"{LABEL}=:{signature}:",
    }


def read_claim(headers: dict[str, str]) -> Claim:
    """Parse the signature headers strictly; anything but kumiai's profile is refused."""
    given, signature = headers.get("signature-input"), headers.get("signature")
    if not given or not signature:
        raise Unauthenticated(
            "this route needs a signed request (Signature-Input and Signature headers, "
            "RFC 9421); use `kumiai node …` or kumiai's coordinator client"
        )
    match, sig = _INPUT.fullmatch(given.strip()), _SIGNATURE.fullmatch(signature.strip())
    if match is None or sig is None:
        raise Unauthenticated(
            f"the request's signature headers are not kumiai's profile: label {LABEL!r}, "
            f"components {COMPONENTS}, created, expires, nonce, keyid, alg ed25519"
        )
    created, expires = int(match["created"]), int(match["expires"])
    return Claim(
        match["keyid"],
        match["nonce"],
        created,
        expires,
        sig["signature"],
        _params(match["keyid"], match["nonce"], created, expires),
    )


def verify_request(request: HttpRequest, claim: Claim, public_key: str, now: datetime) -> None:
    """Check the times, the body and the signature against the key the key id names.

    The nonce is checked afterwards against the coordinator's table (a replay); only a
    request that passes here may spend its nonce.
    """
    at = int(now.timestamp())
    if claim.expires - claim.created > MAX_LIFETIME:
        raise Unauthenticated(
            f"the signature's lifetime is {claim.expires - claim.created} s; "
            f"at most {MAX_LIFETIME} s is accepted, sign with a shorter expiry"
        )
    if claim.expires <= claim.created:
        raise Unauthenticated("the signature expires before it was created; sign it again")
    if claim.created > at + SKEW:
        raise Unauthenticated(
            f"the signature was created {claim.created - at} s in the future; "
            f"check the signer's clock (up to {SKEW} s of skew is allowed)"
        )
    if claim.expires < at:
        raise Unauthenticated(
            f"the signature expired at {_iso(claim.expires)} ({at - claim.expires} s ago); "
            "sign the request again"
        )
    digest = content_digest(request.body)
    if request.headers.get("content-digest") != digest:
        raise Unauthenticated(
            "the body changed after it was signed (its SHA-256 differs from Content-Digest)"
        )
    base = signature_base(request.method, request.path, request.query, digest, claim.params)
    if not keys.verify(public_key, base, claim.signature):
        raise Unauthenticated(
            f"bad signature: the request was not signed by key {claim.keyid} as sent "
            "(method, path, query, body, times and nonce are all covered)"
        )


def expiry(claim: Claim) -> datetime:
    return datetime.fromtimestamp(claim.expires, UTC)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
