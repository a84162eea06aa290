"""Flower's SuperLink beside the coordinator: started, supervised and stopped by kumiai.

It always runs over TLS with the coordinator's certificates, with node authentication on
(only the SuperNode keys kumiai registers may connect), without telemetry, and without
installing anything at run time. `--isolation process`: the SuperLink starts no SuperExec and
no `flwr-serverapp`; the coordinator's own process takes each run's ServerApp task and runs
kumiai's ServerApp itself (`adapters.flower.deployment`).

Flower's Control API (runs, node registration) and Runtime API listen on the same port as
the Fleet API the nodes dial, without accounts: kumiai starts the SuperLink through
`adapters.flower.superlink_guard`, which answers those two APIs only on the coordinator's own
machine. The node ids the coordinator got when it registered each member's key are written to
`nodes.json` beside the log: a job is sent to those ids only, never to a name someone else
registered.
"""

import json
import socket
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kumiai.adapters.files import write_atomic
from kumiai.adapters.flower.supervised import Supervised, flower_environment
from kumiai.adapters.tls import ServerFiles
from kumiai.domain.errors import InvalidInput, KumiaiError
from kumiai.domain.node_admission import RegisteredNode

READY_SECONDS = 60.0
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
NODES_FILE = "nodes.json"  # member -> the Flower node id its key got from this coordinator


@dataclass(frozen=True)
class SuperLinkAddress:
    """Where the coordinator's side reaches a running SuperLink, and the CA it trusts."""

    host: str
    port: int
    ca_cert: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def root_certificates(self) -> bytes:
        return self.ca_cert.read_bytes()


def control_client(link: SuperLinkAddress):  # type: ignore[no-untyped-def]
    """Flower's Control API client over TLS (no account: kumiai runs no auth plugin)."""
    from flwr.supercore.control import ControlHttpClient

    return ControlHttpClient.from_server_address(
        server_address=link.address,
        insecure=False,
        root_certificates=link.root_certificates(),
        interceptors=[],
    )


def supernode_public_key(openssh_line: str):  # type: ignore[no-untyped-def]
    """A SuperNode's public key line (OpenSSH, ECDSA on a NIST curve), checked."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(openssh_line.strip().encode())
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidInput(f"not a SuperNode public key ({exc}): {openssh_line[:40]}...") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInput("a SuperNode key must be an ECDSA (NIST curve) key")
    return key


def checked_supernode_key(openssh_line: str) -> str:
    """The line as stored in `members.supernode_key`, refused unless it is a SuperNode key."""
    if len(openssh_line) > 1000 or "PRIVATE" in openssh_line:
        raise InvalidInput("a SuperNode key is one public OpenSSH line (supernode_auth.pub)")
    supernode_public_key(openssh_line)
    return openssh_line.strip()


def public_key_bytes(openssh_line: str) -> bytes:
    """A SuperNode's public key line as Flower's Control API wants it."""
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes

    return public_key_to_bytes(supernode_public_key(openssh_line))


def register_node(link: SuperLinkAddress, openssh_line: str, name: str) -> int:
    """Register one member's SuperNode key; returns the node id Flower gives it."""
    from flwr.proto.control_pb2 import RegisterNodeRequest

    client = control_client(link)
    try:
        reply = client.RegisterNode(
            RegisterNodeRequest(public_key=public_key_bytes(openssh_line), name=name)
        )
    finally:
        client.close()
    if not reply.node_id:
        raise KumiaiError(f"the SuperLink did not register the SuperNode key of {name!r}")
    return int(reply.node_id)


def unregister_node(link: SuperLinkAddress, node_id: int) -> None:
    """Unregister one node: Flower refuses its key from then on (activation and every call),
    and never lets that key be registered again at this SuperLink."""
    from flwr.proto.control_pb2 import UnregisterNodeRequest

    client = control_client(link)
    try:
        client.UnregisterNode(UnregisterNodeRequest(node_id=node_id))
    finally:
        client.close()


def live_nodes(link: SuperLinkAddress) -> list[RegisteredNode]:
    """Every node the SuperLink admits now (unregistered ones left out), its key as PEM."""
    from flwr.proto.control_pb2 import ListNodesRequest
    from flwr.supercore.constant import NodeStatus

    client = control_client(link)
    try:
        reply = client.ListNodes(ListNodesRequest())
    finally:
        client.close()
    return [
        RegisteredNode(int(n.node_id), n.name, canonical_key(n.public_key))
        for n in reply.nodes_info
        if n.status != NodeStatus.UNREGISTERED
    ]


def canonical_key(public_key: bytes) -> str:
    """A SuperNode key as Flower holds it (PEM), as text: how node keys are compared."""
    return public_key.decode("ascii", errors="replace").strip()


def registered_nodes(link: SuperLinkAddress) -> dict[int, str]:
    """Node id -> name, of every SuperNode key the SuperLink accepts."""
    from flwr.proto.control_pb2 import ListNodesRequest

    client = control_client(link)
    try:
        reply = client.ListNodes(ListNodesRequest())
    finally:
        client.close()
    return {int(n.node_id): n.name for n in reply.nodes_info}


def write_registered(path: Path, nodes: dict[str, int]) -> None:
    """Record member -> node id as the coordinator registered them (readable by it only)."""
    write_atomic(path, json.dumps(nodes, sort_keys=True).encode(), mode=0o600)


def read_registered(path: Path) -> dict[str, int]:
    """The node ids this coordinator registered ({} before any SuperLink started)."""
    if not path.is_file():
        return {}
    return {str(k): int(v) for k, v in json.loads(path.read_text()).items()}


def _answers(link: SuperLinkAddress) -> bool:
    """The SuperLink completes a TLS handshake with our CA and answers the Control API."""
    try:
        context = ssl.create_default_context(cafile=str(link.ca_cert))
        with (
            socket.create_connection((link.host, link.port), timeout=1.0) as raw,
            context.wrap_socket(raw, server_hostname=link.host),
        ):
            pass
        registered_nodes(link)
        return True
    except Exception:  # not up yet (refused, handshake, HTTP): try again
        return False


@dataclass
class SuperLink:
    """A supervised `flower-superlink` with TLS and node authentication on."""

    tls: ServerFiles
    folder: Path  # its log, its Flower home
    host: str = "127.0.0.1"
    port: int = 9092
    process: Supervised | None = field(default=None, repr=False)
    nodes: dict[str, int] = field(default_factory=dict)  # member -> Flower node id

    @property
    def address(self) -> SuperLinkAddress:
        """Where the coordinator's own processes dial it: loopback when it listens on all
        addresses (a wildcard is no name a certificate can carry)."""
        host = "127.0.0.1" if self.host in WILDCARDS else self.host
        return SuperLinkAddress(host, self.port, self.tls.ca_cert)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def nodes_file(self) -> Path:
        return self.folder / NODES_FILE

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "kumiai.adapters.flower.superlink_guard",
            "--ssl-certfile",
            str(self.tls.cert),
            "--ssl-keyfile",
            str(self.tls.key),
            "--ssl-ca-certfile",
            str(self.tls.ca_cert),
            "--enable-supernode-auth",
            "--isolation",
            "process",
            "--disable-runtime-dependency-installation",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def start(self, node_keys: dict[str, str], timeout: float = READY_SECONDS) -> None:
        """Start, wait until it answers over TLS, then register each member's node key."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.nodes_file.unlink(missing_ok=True)  # ids of an earlier SuperLink mean nothing now
        self.process = Supervised(
            "SuperLink",
            self.command(),
            self.folder / "superlink.log",
            flower_environment(self.folder / "flwr"),
        )
        self.process.start()
        try:
            what = f"answering on {self.address.address} over TLS"
            self.process.wait_until(lambda: _answers(self.address), timeout, what)
            for member, key in sorted(node_keys.items()):
                self.nodes[member] = register_node(self.address, key, member)
            write_registered(self.nodes_file, self.nodes)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> "SuperLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
