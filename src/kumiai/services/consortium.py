"""The consortium's home: its governance database, its ledger and, on one machine, the nodes."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from kumiai.adapters.files import write_atomic, write_json_atomic
from kumiai.adapters.storage.database import database_url, open_database, transaction
from kumiai.domain import keys
from kumiai.domain.canonical import require_version
from kumiai.domain.clock import to_iso, utc_now
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.ledger import COORDINATOR, Entry, SignedEntry, sign_entry
from kumiai.node.port import LocalNode, NodePort
from kumiai.services.ledger import Act, Ledger
from kumiai.services.remote_node import SubmittedNode

MARKER = "consortium.json"
HOME_TYPE = "kumiai.consortium"
HOME_VERSION = 2  # 2: the ledger and every agreement are signed as RFC 8785 canonical JSON
HOME_SETTING = "KUMIAI_HOME"


def default_home() -> Path:
    """KUMIAI_HOME, or ./.kumiai (a consortium lives beside the work, like .git)."""
    return Path(os.environ.get(HOME_SETTING) or ".kumiai")


@dataclass
class Consortium:
    home: Path
    sessions: sessionmaker[Session]
    ledger: Ledger
    _nodes: dict[str, LocalNode] = field(default_factory=dict, repr=False)
    _coordinator_key: Ed25519PrivateKey | None = field(default=None, repr=False)
    # Served (`coordinator serve`): members' nodes sign only what they submitted.
    served: bool = False
    _acting: dict[str, NodePort] = field(default_factory=dict, repr=False)

    def member_home(self, member: str) -> Path:
        """Where a member's node keeps its key, data and signed agreements on this machine."""
        return self.home / "members" / member

    def node_is_here(self, member: str) -> bool:
        """Does this machine hold the member's node home (one-directory mode), or does the
        member's node live on its own machine (joined with an invitation)?

        A node home is one with its member record: a bare `members/NAME/` folder is not (a
        release tried through a node home here leaves one with only a lock file, and the
        coordinator then tried to sign as that member and failed the job)."""
        return (self.member_home(member) / "member.json").is_file()

    def node(self, member: str) -> NodePort:
        """The port to a member's node; on one machine, its home under `members/`.

        Served, a member's node answers only through what it submitted (services.remote_node):
        the coordinator cannot sign for it.
        """
        if member in self._acting:
            return self._acting[member]
        if self.served:
            here = self.node_is_here(member)
            return SubmittedNode(member, None, (), self._local(member) if here else None)
        return self._local(member)

    def _local(self, member: str) -> LocalNode:
        if member not in self._nodes:
            self._nodes[member] = LocalNode(self.member_home(member))
        return self._nodes[member]

    @contextmanager
    def acting(self, member: str, node: NodePort) -> Iterator[None]:
        """Within the block, `member`'s node is `node` (one served act, signed at the node)."""
        self._acting[member] = node
        try:
            yield
        finally:
            self._acting.pop(member, None)

    @property
    def coordinator_key_file(self) -> Path:
        return self.home / "coordinator" / "key.pem"

    def coordinator_public_key(self) -> str:
        return keys.public_key_b64(self.coordinator_key())

    def coordinator_key(self) -> Ed25519PrivateKey:
        """The coordinator's own signing key: the only private key the services hold."""
        if self._coordinator_key is None:
            path = self.coordinator_key_file
            if not path.is_file():
                raise NotFound(f"the coordinator key {path} is missing; restore it from backup")
            self._coordinator_key = keys.private_key_from_pem(path.read_bytes(), str(path))
        return self._coordinator_key

    def sign_entry(self, entry: Entry) -> SignedEntry:
        """A ledger entry signed by its actor: the coordinator here, a member at its node."""
        if entry.actor == COORDINATOR:
            return sign_entry(entry, self.coordinator_key())
        return self.node(entry.actor).sign_entry(entry)


def _open(home: Path) -> Consortium:
    sessions = open_database(database_url(home))
    holder: dict[str, Consortium] = {}
    ledger = Ledger(
        sessions,
        lambda entry: holder["c"].sign_entry(entry),
        lambda: holder["c"].coordinator_key(),
    )
    holder["c"] = Consortium(home, sessions, ledger)
    return holder["c"]


def _check_home_version(home: Path) -> None:
    """Refuse, before touching it, a home whose signed history this kumiai cannot read."""
    try:
        marker = json.loads((home / MARKER).read_text(encoding="utf-8"))
        require_version(
            marker,
            HOME_TYPE,
            HOME_VERSION,
            what=f"this consortium home ({home})",
            fix=(
                "Its ledger and agreements are signed in the old form and cannot be re-signed: "
                "keep using the kumiai release that created it, or create a new consortium "
                "with `kumiai init` in another directory."
            ),
        )
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{home / MARKER} is unreadable ({exc}); restore it from backup"
        ) from None


def init_consortium(home: Path) -> Consortium:
    """Create (or re-open) a consortium home; safe to run twice."""
    home.mkdir(parents=True, exist_ok=True)
    if (home / MARKER).exists():
        _check_home_version(home)
    home = home.resolve()
    consortium = _open(home)
    if not consortium.coordinator_key_file.exists():
        write_atomic(
            consortium.coordinator_key_file,
            keys.private_key_to_pem(keys.new_private_key()),
            mode=0o600,
        )
    public = consortium.coordinator_public_key()
    if consortium.ledger.tree().size == 0:
        with transaction(consortium.sessions) as session:
            consortium.ledger.append(
                session, Act(COORDINATOR, "consortium.created", {"coordinator_key": public})
            )
    if not (home / MARKER).exists():
        write_json_atomic(
            home / MARKER,
            {
                "type": HOME_TYPE,
                "version": HOME_VERSION,
                "created_at": to_iso(utc_now()),
                "coordinator_key": public,
            },
        )
    return consortium


def open_consortium(home: Path | None = None) -> Consortium:
    home = home or default_home()
    if not (home / MARKER).is_file():
        raise NotFound(
            f"no consortium at {home}; create one with `kumiai init` "
            f"(or set {HOME_SETTING} / --home to an existing one)"
        )
    _check_home_version(home)
    return _open(home.resolve())
