"""The coordinator's TLS set-up: the consortium's own CA, or certificates the operator brings.

Members pin the CA's fingerprint when they join (issue: across organisations), so the files
are made once; making them again is refused rather than silently breaking every pin.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from kumiai.adapters.tls import (
    ServerFiles,
    check_server,
    create_authority,
    issue_server,
)
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, StateError

TLS_FOLDER = "tls"


@dataclass(frozen=True)
class TlsInfo:
    folder: Path
    hosts: tuple[str, ...]
    ca_fingerprint: str  # SHA-256 of the CA certificate: what every node pins
    own_ca: bool  # made here (False: the operator's certificates)
    ca_cert: Path
    cert: Path
    key: Path


def tls_files(home: Path) -> ServerFiles:
    folder = home / TLS_FOLDER
    return ServerFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")


def init_tls(
    home: Path,
    hosts: list[str],
    *,
    cert: Path | None = None,
    key: Path | None = None,
    ca_cert: Path | None = None,
) -> TlsInfo:
    """Make (or take) the coordinator's certificates; all files appear at once or none do."""
    folder = home / TLS_FOLDER
    if folder.exists():
        raise StateError(
            f"{folder} already holds the coordinator's certificates, and members pin its CA; "
            "to replace them, move that folder away first (every node must then re-pin)"
        )
    if not hosts:
        raise InvalidInput("name the host the members reach the coordinator at: --host NAME")
    brought = (cert, key, ca_cert)
    if any(brought) and not all(brought):
        raise InvalidInput("bring all three of --cert, --key and --ca-cert, or none of them")
    home.mkdir(parents=True, exist_ok=True)
    partial = home / f"{TLS_FOLDER}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # what an interrupted earlier run left
    now = utc_now()
    try:
        if cert and key and ca_cert:
            partial.mkdir()
            files = ServerFiles(partial / "ca.pem", partial / "server.pem", partial / "server.key")
            for source, target in zip(brought, (files.cert, files.key, files.ca_cert), strict=True):
                if not source.is_file():
                    raise InvalidInput(f"{source} does not exist or is not a file")
                shutil.copyfile(source, target)
            files.key.chmod(0o600)
        else:
            create_authority(partial, home.resolve().name, now)
            files = issue_server(partial, hosts, now)
        for host in hosts:
            check_server(files, host, now)
        fingerprint = files.fingerprint()
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    final = tls_files(home)
    return TlsInfo(
        folder, tuple(hosts), fingerprint, cert is None, final.ca_cert, final.cert, final.key
    )


def serving_files(home: Path) -> ServerFiles:
    """The certificate and key the coordinator serves with; refused until `init` made them."""
    files = tls_files(home)
    missing = [p.name for p in (files.ca_cert, files.cert, files.key) if not p.is_file()]
    if missing:
        raise StateError(
            f"{home / TLS_FOLDER} lacks {', '.join(missing)}: the coordinator serves only over "
            "TLS; run `kumiai coordinator init --host NAME` first"
        )
    return files
