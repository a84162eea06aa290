"""The coordinator's SuperLink: started with the consortium's certificates, admitting only
the SuperNodes of registered members (their keys, registered when they joined)."""

import os
import socket
import sys
import time
from pathlib import Path

from sqlalchemy import select

from kumiai.adapters.flower.superlink import (
    NODES_FILE,
    WILDCARDS,
    SuperLink,
    SuperLinkAddress,
    read_registered,
)
from kumiai.adapters.flower.supervised import Supervised
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow
from kumiai.adapters.tls import check_server
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.services.consortium import Consortium
from kumiai.services.coordinator_tls import serving_files

SUPERLINK_FOLDER = "superlink"


def node_keys(consortium: Consortium) -> dict[str, str]:
    """Member -> its node's SuperNode public key, for every member that registered one."""
    with transaction(consortium.sessions) as session:
        rows = session.scalars(select(MemberRow).order_by(MemberRow.name))
        return {r.name: r.supernode_key for r in rows if r.supernode_key}


def members_without_key(consortium: Consortium) -> list[str]:
    """Members that joined before SuperNode keys existed: their nodes cannot connect yet."""
    with transaction(consortium.sessions) as session:
        rows = session.scalars(select(MemberRow.name).where(MemberRow.supernode_key.is_(None)))
        return sorted(rows)


def registered_ids(consortium: Consortium) -> dict[str, int]:
    """Member -> node id, as THIS coordinator registered the member's key (at its SuperLink's
    start, then as members join): the only ids a job is sent to (a name on the SuperLink is
    anyone's to claim)."""
    return read_registered(Path(consortium.home) / SUPERLINK_FOLDER / NODES_FILE)


def superlink_for(consortium: Consortium, port: int, host: str = "127.0.0.1") -> SuperLink:
    """A SuperLink over the coordinator's TLS files (refused until `coordinator init`)."""
    files = serving_files(consortium.home)
    if host in WILDCARDS:  # then the coordinator dials it over loopback, under that name
        try:
            check_server(files, "127.0.0.1", utc_now())
        except InvalidInput as exc:
            raise InvalidInput(
                f"--host {host!r} listens on every address, and the coordinator then reaches "
                f"its SuperLink at 127.0.0.1, which its certificate must name ({exc}); listen "
                "on the name the members dial (--host NAME), or add 127.0.0.1 to your "
                "certificate"
            ) from None
    return SuperLink(
        tls=files,
        folder=Path(consortium.home) / SUPERLINK_FOLDER,
        host=host,
        port=port,
    )


def superlink_address(consortium: Consortium, text: str) -> SuperLinkAddress:
    """HOST:PORT of a running SuperLink, trusted under the consortium's own CA."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--superlink {text!r} is not HOST:PORT, e.g. 127.0.0.1:9092")
    return SuperLinkAddress(host.strip("[]"), int(port), serving_files(consortium.home).ca_cert)


def start_superlink(consortium: Consortium, port: int, host: str = "127.0.0.1") -> SuperLink:
    """Start it, wait until it answers over TLS, and register every member's node key (by
    the same rules `coordinator serve` then keeps them with: `services.node_admission`)."""
    from kumiai.services.node_admission import admit_members  # it reads node_keys from here

    link = superlink_for(consortium, port, host)
    link.start({})
    try:
        admit_members(consortium, link)
    except BaseException:
        link.stop()
        raise
    return link


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for a SuperNode's local Runtime API, or a test)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def node_process(
    node_home: Path,
    link: SuperLink,
    log: Path,
    ca_cert: Path | None = None,
    with_ca: bool = True,
) -> Supervised:
    """`kumiai node serve` for one member's home as a process of its own (not started).

    On one machine (the benchmark, tests), the way each organisation would run its node.
    """
    command = [sys.executable, "-m", "kumiai", "node", "serve", "--home", str(node_home)]
    command += ["--superlink", link.address.address, "--runtime-port", str(free_port())]
    if with_ca:
        command += ["--ca", str(ca_cert or link.tls.ca_cert)]
    return Supervised("node", command, log, dict(os.environ))


def supernode_log(node_home: Path) -> Path:
    return node_home / "supernode" / "supernode.log"


def connected(node_home: Path, since: int = 0) -> bool:
    """Whether the node's SuperNode was accepted by the SuperLink (its log, from byte
    `since`, says its id)."""
    log = supernode_log(node_home)
    if not log.is_file():
        return False
    with log.open("rb") as handle:
        handle.seek(since)
        return b"SuperNode ID:" in handle.read()


def start_local_nodes(
    consortium: Consortium, link: SuperLink, members: list[str], timeout: float = 90.0
) -> list[Supervised]:
    """Start every member's node process and wait until each SuperNode is connected."""
    started, since = [], []
    try:
        for member in members:
            home = consortium.member_home(member)
            log = supernode_log(home)
            since.append(log.stat().st_size if log.is_file() else 0)
            process = node_process(home, link, Path(consortium.home) / "nodes" / f"{member}.log")
            process.start()
            started.append(process)
        deadline = time.monotonic() + timeout
        for member, process, offset in zip(members, started, since, strict=True):
            home = consortium.member_home(member)
            process.wait_until(
                lambda home=home, offset=offset: connected(home, offset),  # type: ignore[misc]
                max(1.0, deadline - time.monotonic()),
                "connected to the SuperLink",
            )
    except BaseException:
        for process in started:
            process.stop()
        raise
    return started
