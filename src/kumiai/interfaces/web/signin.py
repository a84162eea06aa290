"""Sign-in and sign-out: a one-time challenge signed by the member's node, then a session.

GET `/signin` starts a pre-session (its own cookie) holding a fresh challenge and the CSRF
token its form posts back. POST `/signin` spends that pre-session whatever happens, checks
the token, then the signature with the key on record (`services.access.sign_in`), and opens
a session: a random id in a cookie that is HttpOnly, SameSite=Strict, scoped to the
dashboard's path, and Secure whenever the page was served over TLS. POST `/signout` (its
session's CSRF token again) drops the session.

Forms are parsed here from `application/x-www-form-urlencoded` (two short fields), so the
dashboard needs no multipart parser.
"""

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kumiai.domain.errors import Forbidden, InvalidInput, Unauthenticated
from kumiai.domain.sign_in import CHALLENGE_LIFETIME, SESSION_LIFETIME
from kumiai.interfaces.web.context import Home, Viewer, needs, page, path_to, sessions_of
from kumiai.interfaces.web.sessions import PRESESSION_COOKIE, SESSION_COOKIE, same_token
from kumiai.services import access

router = APIRouter()
FORM_LIMIT = 4096  # bytes: a token, a response and a path fit many times over


async def read_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > FORM_LIMIT:
        raise InvalidInput(f"the form is over {FORM_LIMIT} bytes; post only the sign-in fields")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _next(request: Request, wanted: str | None) -> str:
    """Where to go after sign-in: a page of this dashboard only, never another site."""
    root = request.scope.get("root_path", "")
    if wanted and wanted.startswith(root + "/") and not wanted.startswith(("//", "/\\")):
        return wanted
    return path_to(request, "overview")


def _cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=request.scope.get("root_path", "") or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def check_csrf(given: str | None, expected: str, form: str) -> None:
    if not same_token(given, expected):
        raise Forbidden(
            f"the {form} form's CSRF token is missing or wrong; reload the page and post it "
            "from there"
        )


@router.get("/signin", response_class=HTMLResponse)
def sign_in_page(
    request: Request, viewer: Annotated[Viewer, needs(None)], next: str | None = None
) -> HTMLResponse:
    """A fresh challenge each time the page is shown, valid five minutes, answered once."""
    token, pending = sessions_of(request).begin()
    response = page(
        request,
        "signin.html",
        viewer,
        challenge=pending.challenge,
        csrf=pending.csrf,
        next=_next(request, next),
        minutes=CHALLENGE_LIFETIME.seconds // 60,
    )
    _cookie(request, response, PRESESSION_COOKIE, token, CHALLENGE_LIFETIME.seconds)
    return response


@router.post("/signin")
async def sign_in(request: Request, home: Home, viewer: Annotated[Viewer, needs(None)]) -> Response:
    store = sessions_of(request)
    pending = store.spend(request.cookies.get(PRESESSION_COOKIE))
    fields = await read_form(request)
    if pending is None:
        raise Unauthenticated(
            "no sign-in is in progress in this browser (or it was already answered); "
            "open the sign-in page and sign its new challenge"
        )
    check_csrf(fields.get("csrf"), pending.csrf, "sign-in")
    principal = access.sign_in(
        home, pending.challenge, pending.issued, fields.get("response", ""), store.clock()
    )
    token, _ = store.open(principal)
    response = RedirectResponse(_next(request, fields.get("next")), status_code=303)
    _cookie(request, response, SESSION_COOKIE, token, int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(PRESESSION_COOKIE, path=request.scope.get("root_path", "") or "/")
    return response


@router.post("/signout")
async def sign_out(request: Request, viewer: Annotated[Viewer, needs(None)]) -> Response:
    """Drop the session; its cookie is cleared too."""
    if not viewer.signed_in or viewer.automatic:
        raise Unauthenticated("no session to sign out of in this browser")
    fields = await read_form(request)
    check_csrf(fields.get("csrf"), viewer.csrf, "sign-out")
    sessions_of(request).close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(path_to(request, "sign_in_page"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path", "") or "/")
    return response
