"""A hostile coordinator for the witness tests: it shows each member its own forked history.

    python tests/node/hostile_witness_coordinator.py CONFIG.json

CONFIG: {"cert", "key": the TLS files; "coordinator_key": the coordinator's Ed25519 key
(PEM) that the nodes pinned; "members": {name: public key}; "sizes": {name: size of the log
shown to that member}}. Every member sees the same first SHARED entries, then entries of its
own. It serves the routes a witness uses (`/ledger/head`, `/ledger/consistency`,
`/witness/cosignatures`, `/witness/cosigned`) over TLS on a free port of 127.0.0.1, picks
the history by the key that signed the request (its RFC 9421 keyid, one of the members'
keys), signs every head with the real key, and
relays cosignatures faithfully (it cannot forge them). It prints its port, then serves until
SIGTERM.
"""

import json
import signal
import ssl
import sys
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from kumiai.domain import keys
from kumiai.domain.errors import Unauthenticated
from kumiai.domain.ledger import TreeHead, sign_head
from kumiai.domain.merkle import MerkleTree, leaf_hash
from kumiai.domain.request_auth import read_claim

SHARED = 5
EPOCH = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def history(member: str, size: int) -> MerkleTree:
    return MerkleTree(
        leaf_hash(f"entry {i}".encode() if i < SHARED else f"{member}'s entry {i}".encode())
        for i in range(size)
    )


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    key = keys.private_key_from_pem(Path(config["coordinator_key"]).read_bytes(), "key")
    members: dict[str, str] = config["members"]
    trees = {name: history(name, size) for name, size in config["sizes"].items()}
    cosigned: dict[str, dict[str, Any]] = {}
    signers = {keys.fingerprint(public): name for name, public in members.items()}

    def head(tree: MerkleTree, size: int) -> dict[str, Any]:
        signed = sign_head(
            TreeHead(size, tree.root(size).hex(), EPOCH + timedelta(seconds=size)), key
        )
        return {"head": signed.document(), "signature": signed.signature}

    class Handler(BaseHTTPRequestHandler):
        def _tree(self) -> MerkleTree:
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                member = signers.get(read_claim(headers).keyid, "")
            except Unauthenticated:  # an unsigned caller sees the first history
                member = ""
            return trees.get(member, next(iter(trees.values())))

        def _reply(self, status: int, document: object) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            tree = self._tree()
            if url.path == "/ledger/head":
                self._reply(200, head(tree, tree.size))
            elif url.path == "/ledger/consistency":
                query = parse_qs(url.query)
                old, new = int(query["old"][0]), int(query["new"][0])
                if not 0 <= old <= new <= tree.size:
                    self._reply(404, {"error": f"the latest signed tree head has {tree.size}"})
                else:
                    path = [p.hex() for p in tree.consistency_proof(old, new)]
                    self._reply(200, {"old_size": old, "new_size": new, "path": path})
            elif url.path == "/witness/cosigned":
                listed = [
                    {**c, "public_key": members[w]}
                    for w, c in sorted(cosigned.items())
                    if w in members
                ]
                self._reply(200, listed)
            else:
                self._reply(404, {"error": f"no route {url.path}"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            cosigned[body["witness"]] = {
                "witness": body["witness"],
                "head": body["head"],
                "signature": body["signature"],
            }
            self._reply(200, {"recorded": True})

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config["cert"], config["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1])
