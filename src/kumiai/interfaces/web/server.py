"""`kumiai demo --serve`: the API and the dashboard over plain HTTP, on loopback only.

Plain HTTP because the demo's consortium has no certificate a browser trusts; it is bound
to 127.0.0.1, so only this machine reaches it, and a browser here is signed in as the
operator without a key (a session still signs in as any other role). A coordinator other
machines reach is served over TLS by `kumiai coordinator serve`, where every viewer signs in
with its key (docs/dashboard.md).
"""

from pathlib import Path

import uvicorn

from kumiai.interfaces.api.app import create_app

LOOPBACK = "127.0.0.1"


def dashboard_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/ui/"


def sign_in_lines(home: Path) -> list[str]:
    """How to sign in as each role: the demo's own keys are all on this machine."""
    from kumiai.services.consortium import open_consortium
    from kumiai.services.members import list_members

    consortium = open_consortium(home)
    command = "kumiai node sign-in CHALLENGE"
    return [
        f"operator: {command} --key {consortium.coordinator_key_file}",
        *(
            f"{m.name}'s node (steward, researcher, board with a seat): "
            f"{command} --home {consortium.member_home(m.name)}"
            for m in list_members(consortium)
            if consortium.node_is_here(m.name)
        ),
        "auditor: kumiai coordinator grant --role auditor --key PUBLIC_KEY --name NAME, "
        f"then {command} --key THEIR_KEY.pem",
    ]


def serve_local(home: Path, port: int) -> None:
    """Run until SIGTERM or Ctrl-C, reachable from this machine only."""
    uvicorn.run(
        create_app(home, dashboard=True, local_operator=True),
        host=LOOPBACK,
        port=port,
        log_level="warning",
        server_header=False,
    )
