"""`kumiai node serve`: the member's node on its own machine, connected to the SuperLink.

The node runs its SuperNode (which dials out: nothing listens for the coordinator) and takes
each message itself, with kumiai's guarded ClientApp over its own home: its key, data,
agreements and spend log never leave it. It runs no code the coordinator sent
(`adapters.flower.supernode`).
"""

import threading
from collections.abc import Sequence
from pathlib import Path

from kumiai.adapters.flower.supernode import SuperNode, run_tasks
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.node.guard import Mod
from kumiai.node.home import NodeHome


def supernode_for(home: Path, superlink: str, ca_cert: Path | None, runtime_port: int) -> SuperNode:
    """The node's SuperNode, with the authentication key made in its home at joining."""
    node = NodeHome(home)
    _ = node.member_name  # refused here when `home` is not a member's node home
    key = node.supernode_auth_file
    if not key.is_file():
        raise NotFound(
            f"{home} has no SuperNode key ({key}); it is made when the member joins, and "
            "the coordinator registers its public half"
        )
    if ca_cert is not None and not ca_cert.is_file():
        raise InvalidInput(f"{ca_cert} does not exist; pass the consortium's CA certificate")
    return SuperNode(superlink, ca_cert, key, home / "supernode", runtime_port)


def client_app(home: Path, mods: Sequence[Mod] = ()):  # type: ignore[no-untyped-def]
    """kumiai's guarded ClientApp over this home; the dataset is the one the job names."""
    from kumiai.node.clientapp import build_client_app
    from kumiai.node.worker import NodeWorker

    root = home.resolve()
    return build_client_app(NodeWorker, lambda _: (root, None), mods)


def logged_app(home: Path):  # type: ignore[no-untyped-def]
    """The guarded ClientApp, writing the node's activity log (`node.activity`) as it works."""
    from kumiai.node.activity import activity_mod_to

    return client_app(home, [activity_mod_to()])


def serve(
    home: Path,
    superlink: str,
    ca_cert: Path | None,
    runtime_port: int,
    stop: threading.Event | None = None,
    started: threading.Event | None = None,
) -> None:
    """Run until `stop` is set (or SIGTERM / Ctrl-C); the SuperNode is stopped on the way out."""
    supernode = supernode_for(home, superlink, ca_cert, runtime_port)
    supernode.start()
    try:
        if started is not None:
            started.set()
        run_tasks(supernode.runtime_address, lambda: logged_app(home), stop or threading.Event())
    finally:
        supernode.stop()
