"""Signed requests: what a signature covers, and each refusal with its own reason."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kumiai.domain import keys
from kumiai.domain.errors import Unauthenticated
from kumiai.domain.request_auth import (
    HttpRequest,
    content_digest,
    read_claim,
    sign_request,
    signature_base,
    verify_request,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
KEY = keys.new_private_key()
PUBLIC = keys.public_key_b64(KEY)
BODY = b'{"reason":"no ethics approval"}'


def signed(
    method: str = "POST",
    path: str = "/requests/req-1/refuse",
    query: str = "",
    body: bytes = BODY,
    at: datetime = NOW,
    lifetime: int = 60,
    key=KEY,  # type: ignore[no-untyped-def]
) -> HttpRequest:
    headers = sign_request(
        key, method=method, path=path, query=query, body=body, now=at, lifetime=lifetime
    )
    return HttpRequest(method, path, query, body, {k.lower(): v for k, v in headers.items()})


def check(request: HttpRequest, now: datetime = NOW, public: str = PUBLIC) -> None:
    verify_request(request, read_claim(request.headers), public, now)


def test_a_signed_request_verifies_and_names_its_key() -> None:
    request = signed(query="project=heart")
    check(request)
    claim = read_claim(request.headers)
    assert claim.keyid == keys.fingerprint(PUBLIC)
    assert claim.expires - claim.created == 60
    assert request.headers["content-digest"] == content_digest(BODY)


def test_the_signature_base_is_rfc_9421s_form() -> None:
    base = signature_base("post", "/x", "a=1", "sha-256=:AA==:", "(…)")
    assert base == (
        b'"@method": POST\n"@path": /x\n"@query": ?a=1\n'
        b'"content-digest": sha-256=:AA==:\n"@signature-params": (\xe2\x80\xa6)'
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "DELETE"}, "bad signature"),
        ({"path": "/requests/req-2/refuse"}, "bad signature"),
        ({"query": "project=other"}, "bad signature"),
    ],
)
def test_method_path_and_query_are_covered(change: dict[str, str], reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        check(replace(signed(), **change))


def test_a_swapped_body_is_refused_as_changed() -> None:
    with pytest.raises(Unauthenticated, match="the body changed after it was signed"):
        check(replace(signed(), body=b'{"reason":"yes, fine"}'))


def test_a_swapped_body_with_a_fresh_digest_fails_the_signature() -> None:
    other = b'{"reason":"yes, fine"}'
    request = signed()
    headers = {**request.headers, "content-digest": content_digest(other)}
    with pytest.raises(Unauthenticated, match="bad signature"):
        check(replace(request, body=other, headers=headers))


def test_a_forged_signature_by_another_key_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="bad signature"):
        check(signed(key=keys.new_private_key()))  # checked against KEY's public half


def test_an_expired_signature_is_refused() -> None:
    with pytest.raises(Unauthenticated, match=r"the signature expired at 2026-11-29T12:01:00Z"):
        check(signed(), now=NOW + timedelta(seconds=61))
    check(signed(), now=NOW + timedelta(seconds=60))  # up to its expiry, inclusive


def test_created_in_the_future_is_refused_beyond_the_skew() -> None:
    check(signed(at=NOW + timedelta(seconds=30)))
    with pytest.raises(Unauthenticated, match="created 31 s in the future"):
        check(signed(at=NOW + timedelta(seconds=31)))


def test_a_lifetime_over_five_minutes_is_refused() -> None:
    check(signed(lifetime=300))
    with pytest.raises(Unauthenticated, match="lifetime is 301 s; at most 300 s"):
        check(signed(lifetime=301))


def test_an_edited_expiry_breaks_the_signature() -> None:
    request = signed()
    stretched = request.headers["signature-input"].replace(
        f"expires={int(NOW.timestamp()) + 60}", f"expires={int(NOW.timestamp()) + 200}"
    )
    with pytest.raises(Unauthenticated, match="bad signature"):
        check(replace(request, headers={**request.headers, "signature-input": stretched}))


def test_missing_or_foreign_signature_headers_are_refused() -> None:
    with pytest.raises(Unauthenticated, match="this route needs a signed request"):
        read_claim({})
    request = signed()
    foreign = request.headers["signature-input"].replace('"content-digest"', '"date"')
    with pytest.raises(Unauthenticated, match="not kumiai's profile"):
        read_claim({**request.headers, "signature-input": foreign})
