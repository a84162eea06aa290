"""The coordinator's web dashboard: server-rendered pages (FastAPI, Jinja2, htmx) under `/ui`."""
