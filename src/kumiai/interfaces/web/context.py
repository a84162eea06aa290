"""What every page shares: the consortium, the viewer, and the Jinja2 templates.

The viewer is the seam for sign-in. Today every request is the read-only `reader`: the
pages show what the API beside them already serves without sign-in, and `kumiai demo
--serve` listens on loopback only. When the API's roles land, one
function — `current_viewer` — resolves the signed-in member and role instead, and each page
already receives it (`Seen` in its signature), so the role × page matrix can be checked
there without touching the pages' queries.
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

from kumiai.interfaces.cli.context import when
from kumiai.services.consortium import Consortium

PACKAGE = Path(__file__).parent
# Autoescape on for every template, whatever its name: every value is text unless Markup.
templates = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(PACKAGE / "templates"), autoescape=True)
)
templates.env.filters["when"] = when
templates.env.filters["yen"] = lambda v: f"¥{v:,}" if v >= 0 else f"-¥{-v:,}"
templates.env.filters["eps"] = lambda v: f"{v:.4f}" if isinstance(v, int | float) else "—"
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
    """Who is looking, and what they may do. `reader`: every read page, no form."""

    name: str
    role: str
    actions: frozenset[str] = frozenset({"read"})


LOCAL_READER = Viewer("local", "reader")


async def current_viewer(request: Request) -> Viewer:
    """The seam for sign-in (issue 13, item 4): today the local read-only reader."""
    return LOCAL_READER


async def _consortium(request: Request) -> Consortium:
    consortium: Consortium = request.app.state.consortium
    return consortium


Home = Annotated[Consortium, Depends(_consortium)]
Seen = Annotated[Viewer, Depends(current_viewer)]


def page(request: Request, template: str, viewer: Viewer, **context: Any) -> HTMLResponse:
    """A whole page or, for htmx, a fragment: every value escaped by the templates."""
    return templates.TemplateResponse(request, template, {"viewer": viewer, **context})


def html(fragment: str) -> Markup:
    """Trusted HTML built by our own escaping code (the SVG charts), not user text."""
    return Markup(fragment)
