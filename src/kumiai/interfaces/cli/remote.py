"""Read commands against a coordinator elsewhere: `KUMIAI_COORDINATOR=https://HOST:PORT`.

With it set, a read command asks the coordinator's API for the very document its `--json`
prints (the API returns the CLI's documents), signed with the key of the node home named
by `KUMIAI_NODE_HOME` and trusting only the CA pinned there at `kumiai node init`, instead
of opening a local consortium home. Loads nothing until it is used.
"""

import os
from pathlib import Path
from urllib.parse import quote

from kumiai.domain.errors import InvalidInput
from kumiai.interfaces.cli.output import print_json

COORDINATOR_SETTING = "KUMIAI_COORDINATOR"
NODE_HOME_SETTING = "KUMIAI_NODE_HOME"


def remote_document(as_json: bool, route: str, *parts: str, **params: str | None) -> bool:
    """Print the coordinator's document for `route` (path `parts` quoted in) and say so;
    False when no remote coordinator is set, so the command reads its local home."""
    url = os.environ.get(COORDINATOR_SETTING)
    if not url:
        return False
    if not as_json:
        raise InvalidInput(
            f"with {COORDINATOR_SETTING} set, read commands print the coordinator's "
            "documents as JSON only: add --json"
        )
    from kumiai.node.remote import reader_for  # httpx: only when a coordinator is asked

    node_home = os.environ.get(NODE_HOME_SETTING)
    if not node_home:
        raise InvalidInput(
            f"{COORDINATOR_SETTING} is set: also set {NODE_HOME_SETTING} to a node home "
            "joined to that coordinator (its key signs the reads, its pinned CA is trusted)"
        )
    path = route.format(*(quote(p, safe="") for p in parts))
    with reader_for(Path(node_home), url) as client:
        print_json(client.get(path, **params))
    return True
