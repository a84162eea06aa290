"""`kumiai demo --serve`: the API and the dashboard over plain HTTP, on loopback only.

Plain HTTP because the demo's consortium has no certificate a browser trusts; it is bound
to 127.0.0.1, so only this machine reaches it. A coordinator other machines reach is
served over TLS by `kumiai coordinator serve`, without the dashboard until it has sign-in
(docs/dashboard.md).
"""

from pathlib import Path

import uvicorn

from kumiai.interfaces.api.app import create_app

LOOPBACK = "127.0.0.1"


def dashboard_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/ui/"


def serve_local(home: Path, port: int) -> None:
    """Run until SIGTERM or Ctrl-C, reachable from this machine only."""
    uvicorn.run(
        create_app(home, dashboard=True),
        host=LOOPBACK,
        port=port,
        log_level="warning",
        server_header=False,
    )
