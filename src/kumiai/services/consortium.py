"""The consortium's home: its governance database and, on one machine, the members' nodes."""

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from kumiai.adapters.files import write_json_atomic
from kumiai.adapters.nodehome import NodeHome
from kumiai.adapters.storage.database import database_url, open_database
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.errors import NotFound

MARKER = "consortium.json"
HOME_SETTING = "KUMIAI_HOME"


def default_home() -> Path:
    """KUMIAI_HOME, or ./.kumiai (a consortium lives beside the work, like .git)."""
    return Path(os.environ.get(HOME_SETTING) or ".kumiai")


@dataclass
class Consortium:
    home: Path
    sessions: sessionmaker[Session]

    def member_home(self, member: str) -> Path:
        """Where a member's node keeps its key, data and signed agreements on this machine."""
        return self.home / "members" / member

    def node(self, member: str) -> NodeHome:
        return NodeHome(self.member_home(member))


def init_consortium(home: Path) -> Consortium:
    """Create (or re-open) a consortium home; safe to run twice."""
    home.mkdir(parents=True, exist_ok=True)
    marker = home / MARKER
    if not marker.exists():
        write_json_atomic(
            marker, {"type": "kumiai.consortium", "version": 1, "created_at": to_iso(utc_now())}
        )
    return Consortium(home.resolve(), open_database(database_url(home.resolve())))


def open_consortium(home: Path | None = None) -> Consortium:
    home = home or default_home()
    if not (home / MARKER).is_file():
        raise NotFound(
            f"no consortium at {home}; create one with `kumiai init` "
            f"(or set {HOME_SETTING} / --home to an existing one)"
        )
    return Consortium(home.resolve(), open_database(database_url(home.resolve())))
