"""The coordinator's SuperLink: started with the consortium's certificates, admitting only
the SuperNodes of registered members (their keys, registered when they joined)."""

from pathlib import Path

from sqlalchemy import select

from kumiai.adapters.flower.superlink import SuperLink
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import MemberRow
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


def superlink_for(consortium: Consortium, port: int, host: str = "127.0.0.1") -> SuperLink:
    """A SuperLink over the coordinator's TLS files (refused until `coordinator init`)."""
    return SuperLink(
        tls=serving_files(consortium.home),
        folder=Path(consortium.home) / SUPERLINK_FOLDER,
        host=host,
        port=port,
    )


def start_superlink(consortium: Consortium, port: int, host: str = "127.0.0.1") -> SuperLink:
    """Start it, wait until it answers over TLS, and register every member's node key."""
    link = superlink_for(consortium, port, host)
    link.start(node_keys(consortium))
    return link
