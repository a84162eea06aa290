"""OpenAPI's Swagger UI at `/docs`, from the files of the pinned `swagger-ui-bundle` package.

FastAPI's own `/docs` page loads Swagger UI from a CDN; hospitals run offline, so the page
here references only this server's paths, and Swagger UI's online validator is off.
"""

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow

ASSETS = "/docs/assets"


def add_docs(app: FastAPI) -> None:
    """Serve `/docs` and its assets; the app must be made with `docs_url=None`."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False, dependencies=[allow(Action.DOCS_READ)])
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # else it asks swagger.io
        )
