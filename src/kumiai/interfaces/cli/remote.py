"""Read commands against a coordinator elsewhere: `--coordinator https://HOST:PORT` (or
`KUMIAI_COORDINATOR`).

With it set, a read command asks the coordinator's API for the very document its `--json`
prints (the API returns the CLI's documents) instead of opening a local consortium home.
The reads are signed with the key of the node home named by `KUMIAI_NODE_HOME`, trusting
only the CA pinned there at `kumiai node init`; or, for an auditor with no node home, with
`--key FILE` (`KUMIAI_KEY`, the private key the operator granted) trusting `--ca FILE`
(`KUMIAI_CA`). A command that only reads a local home refuses in one line
(`refuse_local_only`). Loads nothing until it is used.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kumiai.domain.errors import InvalidInput
from kumiai.interfaces.cli.output import print_json

if TYPE_CHECKING:
    from kumiai.adapters.coordinator_client import CoordinatorClient

COORDINATOR_SETTING = "KUMIAI_COORDINATOR"
NODE_HOME_SETTING = "KUMIAI_NODE_HOME"
KEY_SETTING = "KUMIAI_KEY"
CA_SETTING = "KUMIAI_CA"


def setting(option: str, variable: str) -> str | None:
    """The global option (`kumiai --coordinator …`) if given, else the environment's."""
    import click

    context = click.get_current_context(silent=True)
    given = ((context.find_root().obj or {}) if context else {}).get(option)
    return str(given) if given else os.environ.get(variable) or None


def refuse_local_only(command: str) -> None:
    """With a coordinator set, a command that reads or writes a local home says so."""
    url = setting("coordinator", COORDINATOR_SETTING)
    if url:
        raise InvalidInput(
            f"`{command}` works on a local consortium home only, not against the coordinator "
            f"at {url}; run it on the coordinator's machine with --home, or without "
            f"--coordinator / {COORDINATOR_SETTING}"
        )


def _reader(url: str) -> "CoordinatorClient":
    """A client signing with the node home's key, or with an auditor's key file."""
    from kumiai.node.remote import reader_for  # httpx: only when a coordinator is asked

    node_home = os.environ.get(NODE_HOME_SETTING)
    if node_home:
        return reader_for(Path(node_home), url)
    key_file, ca = setting("key", KEY_SETTING), setting("ca", CA_SETTING)
    if key_file and ca:
        from kumiai.adapters.coordinator_client import CoordinatorClient
        from kumiai.domain import keys

        key = keys.private_key_from_pem(Path(key_file).read_bytes(), key_file)
        return CoordinatorClient(url, ca_cert=Path(ca), key=key)
    raise InvalidInput(
        f"{COORDINATOR_SETTING} is set: also set {NODE_HOME_SETTING} to a node home "
        "joined to that coordinator (its key signs the reads, its pinned CA is trusted), "
        "or give --key FILE and --ca FILE (a granted key and the consortium's CA)"
    )


def signed_client(url: str) -> "CoordinatorClient":
    """The client a remote command signs with (node home, or `--key`/`--ca`): for writes too
    (`kumiai train --coordinator` posts its job with it)."""
    return _reader(url)


@dataclass(frozen=True)
class Fetched:
    document: Any


def remote_fetch(route: str, *parts: str, **params: str | None) -> Fetched | None:
    """The coordinator's document for `route` (path `parts` quoted in); None when no remote
    coordinator is set, so the command reads its local home."""
    url = setting("coordinator", COORDINATOR_SETTING)
    if not url:
        return None
    path = route.format(*(quote(p, safe="") for p in parts))
    with _reader(url) as client:
        return Fetched(client.get(path, **params))


def coordinator_url() -> str | None:
    """The remote coordinator set by `--coordinator` or `KUMIAI_COORDINATOR`, if any."""
    return setting("coordinator", COORDINATOR_SETTING)


def pinned_coordinator_key() -> dict[str, str]:
    """{"coordinator": key} as the node home in `KUMIAI_NODE_HOME` pinned it at joining, so
    that a log re-signed under another key fails verification; {} for a key-file reader."""
    node_home = os.environ.get(NODE_HOME_SETTING)
    if not node_home:
        return {}
    from kumiai.node.home import NodeHome

    return {"coordinator": NodeHome(Path(node_home)).coordinator_key()}


def remote_download(route: str, file: Path, *parts: str) -> int | None:
    """Stream the coordinator's `route` into `file` (whole and checked, or not at all), with a
    progress bar on stderr; the bytes written, or None when no remote coordinator is set."""
    url = coordinator_url()
    if not url:
        return None
    path = route.format(*(quote(p, safe="") for p in parts))
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from kumiai.interfaces.cli.context import errors

    with (
        _reader(url) as client,
        Progress(
            "{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=errors,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task(f"{url}{path}", total=None)
        return client.download(
            path, file, lambda done, total: bar.update(task, completed=done, total=total)
        )


def remote_document(as_json: bool, route: str, *parts: str, **params: str | None) -> bool:
    """Print the coordinator's document for `route` and say so; False when no remote
    coordinator is set, so the command reads its local home."""
    if not setting("coordinator", COORDINATOR_SETTING):
        return False
    if not as_json:
        raise InvalidInput(
            f"with --coordinator ({COORDINATOR_SETTING}) set, read commands print the "
            "coordinator's documents as JSON only: add --json"
        )
    fetched = remote_fetch(route, *parts, **params)
    assert fetched is not None
    print_json(fetched.document)
    return True
