"""Signing a test client in to the dashboard the way a browser does: page, node, form."""

import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from httpx import Response

from kumiai.domain.sign_in import respond


def challenge_and_token(client: TestClient) -> tuple[str, str]:
    """Open the sign-in page: the challenge it shows and its form's CSRF token."""
    html = client.get("/ui/signin").text
    challenge = re.search(r"kumiai node sign-in (\S+) --home", html)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert challenge and csrf, html[:2000]
    return challenge.group(1), csrf.group(1)


def post_sign_in(client: TestClient, csrf: str | None, response: str) -> Response:
    data = {"response": response, **({"csrf": csrf} if csrf is not None else {})}
    return client.post("/ui/signin", data=data, follow_redirects=False)


def sign_in(client: TestClient, key: Ed25519PrivateKey) -> None:
    challenge, csrf = challenge_and_token(client)
    answer = post_sign_in(client, csrf, respond(key, challenge))
    assert answer.status_code == 303, answer.text[:2000]
