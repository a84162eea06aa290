"""What every page shares: the consortium, the viewer, and the Jinja2 templates.

The viewer comes from the session cookie (`current_viewer`): the member, operator or
auditor whose key signed in, with exactly the roles the API gives that key. Each page
declares the one `Action` it performs (`needs(Action.X)` in its signature), checked against
the API's own table, `domain/roles.PERMITTED`. An anonymous viewer takes only the public
actions (the ledger); anything else sends it to sign in. A signed-in viewer without the role
gets a 403 page naming its roles and the action.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context
from markupsafe import Markup

from kumiai.domain.errors import Forbidden
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.roles import PUBLIC, Action, Role, permits, require, require_member_record
from kumiai.interfaces.cli.context import when
from kumiai.interfaces.web.display import delta, metric, metric_name, plain, yen
from kumiai.interfaces.web.sessions import SESSION_COOKIE, SessionStore
from kumiai.services.consortium import Consortium

PACKAGE = Path(__file__).parent
# Autoescape on for every template, whatever its name: every value is text unless Markup.
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(PACKAGE / "templates"), autoescape=True)
)
templates.env.filters["when"] = when
templates.env.filters["yen"] = yen
templates.env.filters["plain"] = plain
templates.env.filters["metric_name"] = metric_name
templates.env.globals["metric"] = metric
templates.env.filters["eps"] = lambda v: f"{v:.4f}" if isinstance(v, int | float) else "—"
templates.env.filters["share"] = templates.env.filters["eps"]  # to four places, as the report
templates.env.filters["delta"] = delta
templates.env.filters["score"] = lambda v: f"{v:.3f}" if isinstance(v, int | float) else "—"


@pass_context
def link(context: Mapping[str, Any], route: str, /, **params: object) -> str:
    """The path of a dashboard route by name, under wherever the dashboard is mounted."""
    return path_to(context["request"], route, **params)


def path_to(request: Request, route: str, /, **params: object) -> str:
    return request.scope.get("root_path", "") + request.app.url_path_for(route, **params)


templates.env.globals["link"] = link


@dataclass(frozen=True)
class Viewer:
    """Who is looking: no role when anonymous; `csrf` is the token its forms post back."""

    name: str
    roles: frozenset[Role] = frozenset()
    member: str | None = None
    csrf: str = ""
    automatic: bool = False  # the loopback demo's operator, signed in without a key

    @property
    def signed_in(self) -> bool:
        return bool(self.roles)

    @property
    def role(self) -> str:
        return ", ".join(sorted(self.roles)) or "anonymous"

    def may(self, action: Action | str) -> bool:
        taken = Action(action)
        return taken in PUBLIC or any(permits(role, taken) for role in self.roles)

    def may_read_member(self, member: str) -> bool:
        """Whether this viewer may open `member`'s own page (its steward, board, operator)."""
        try:
            require_member_record(self.name, self.member, self.roles, member)
        except Forbidden:
            return False
        return True


ANONYMOUS = Viewer("anonymous")
LOCAL_OPERATOR = Viewer(COORDINATOR, frozenset({Role.OPERATOR}), automatic=True)
LOOPBACK = frozenset({"127.0.0.1", "::1"})


class SignInNeeded(Exception):
    """An anonymous viewer asked for a page that needs a role: off to the sign-in page."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


async def current_viewer(request: Request) -> Viewer:
    """The session's principal; else, on the loopback demo only, the operator; else nobody."""
    session = sessions_of(request).find(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        p = session.principal
        return Viewer(p.name, p.roles, p.member, session.csrf)
    client = request.client.host if request.client else ""
    if request.app.state.local_operator and client in LOOPBACK:
        return LOCAL_OPERATOR
    return ANONYMOUS


class PageGuard:
    """The dependency `needs` makes: its `action` is what the page declares."""

    def __init__(self, action: Action | None) -> None:
        self.action = action

    async def __call__(
        self, request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]
    ) -> Viewer:
        if self.action is None or viewer.may(self.action):
            return viewer
        if not viewer.signed_in:
            raise SignInNeeded(request.url.path)
        require(viewer.name, viewer.roles, self.action)  # raises Forbidden, naming both
        return viewer


def needs(action: Action | None) -> Any:
    """A page's declared action; `None` for the sign-in pages, open to anyone."""
    return Depends(PageGuard(action))


def page_actions(dependant: Any) -> list[Action | None]:
    """Every action a page's dependencies declare (`api.auth.route_actions` walks pages)."""
    found = [d.call.action for d in dependant.dependencies if isinstance(d.call, PageGuard)]
    for sub in dependant.dependencies:
        found.extend(page_actions(sub))
    return found


async def _consortium(request: Request) -> Consortium:
    consortium: Consortium = request.app.state.consortium
    return consortium


Home = Annotated[Consortium, Depends(_consortium)]


def page(request: Request, template: str, viewer: Viewer, **context: Any) -> HTMLResponse:
    """A whole page or, for htmx, a fragment: every value escaped by the templates."""
    return templates.TemplateResponse(request, template, {"viewer": viewer, **context})


def html(fragment: str) -> Markup:
    """Trusted HTML built by our own escaping code (the SVG charts), not user text."""
    return Markup(fragment)
