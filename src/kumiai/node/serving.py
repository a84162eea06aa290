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
from kumiai.adapters.tls import certificate_fingerprint
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.node.guard import Mod
from kumiai.node.home import NodeHome
from kumiai.node.remote import PINNED_CA  # written by `kumiai node init`


def _fingerprint(path: Path) -> str:
    try:
        return certificate_fingerprint(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a readable PEM certificate ({exc})") from None


def pinned_ca(home: Path, ca_cert: Path | None = None) -> Path:
    """The CA the node trusts for the SuperLink: the one it pinned at `node init`.

    A `--ca` file is accepted only when its SHA-256 fingerprint is the pinned one: a swapped
    CA would let anyone holding its key stand in for the coordinator's SuperLink. A node
    home made by the coordinator itself (no pin) must name its CA."""
    pinned = home / PINNED_CA
    if not pinned.is_file():
        if ca_cert is None:
            raise NotFound(
                f"{home} pinned no CA at joining ({pinned} is missing); pass the consortium's "
                "CA with --ca, or join with kumiai node init"
            )
        if not ca_cert.is_file():
            raise InvalidInput(f"{ca_cert} does not exist; pass the consortium's CA certificate")
        return ca_cert
    if ca_cert is None:
        return pinned
    if not ca_cert.is_file():
        raise InvalidInput(f"{ca_cert} does not exist; leave out --ca to use the pinned CA")
    given, expected = _fingerprint(ca_cert), _fingerprint(pinned)
    if given != expected:
        raise InvalidInput(
            f"--ca {ca_cert} has SHA-256 fingerprint {given}, not {expected}, the CA pinned at "
            f"joining ({pinned}); leave out --ca to use the pinned one"
        )
    return ca_cert


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
        run_tasks(supernode.runtime_address, lambda: client_app(home), stop or threading.Event())
    finally:
        supernode.stop()
