"""`kumiai node serve`: a member's node on its own machine, on Flower's deployment engine."""

from pathlib import Path

import typer

from kumiai.interfaces.cli.node import STALE_AFTER_OPTION


def node_serve(
    home: Path = typer.Option(..., "--home", help="The member's node home (its key and data)."),
    superlink: str = typer.Option(
        ..., "--superlink", help="HOST:PORT of the coordinator's SuperLink."
    ),
    ca: Path = typer.Option(
        None,
        "--ca",
        help="The consortium's CA certificate (PEM); default: the one pinned at node init. "
        "Refused when its SHA-256 fingerprint is not the pinned one.",
    ),
    runtime_port: int = typer.Option(
        9094, "--runtime-port", help="The SuperNode's local Runtime API port (127.0.0.1 only)."
    ),
    release_every: float = typer.Option(
        60.0,
        "--release-every",
        min=1.0,
        help="Seconds between checks for jobs that are over, whose ε this node then releases "
        "(as `kumiai node release`).",
    ),
    stale_after: float = STALE_AFTER_OPTION,
) -> None:
    """Connect this node to the SuperLink and work for the jobs its agreements allow."""
    from datetime import timedelta

    from kumiai.interfaces.cli.context import errors
    from kumiai.node.releasing import start_releasing
    from kumiai.node.remote import pinned_ca
    from kumiai.node.serving import serve, supernode_for

    ca = pinned_ca(home, ca)
    supernode_for(home, superlink, ca, runtime_port)  # refused here, before anything starts
    errors.print(f"Node {home} connecting to {superlink} over TLS; Ctrl-C stops it.")
    _, stop = start_releasing(home, release_every, timedelta(seconds=stale_after), errors.print)
    try:
        serve(home, superlink, ca, runtime_port)
    finally:
        stop.set()
