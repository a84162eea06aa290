"""`kumiai coordinator serve` as a process of its own, for the tests that talk to it over TLS."""

import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ENV = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


def start_coordinator(home: Path, port: int | str) -> "subprocess.Popen[str]":
    """Start it and return once its public `/ledger/head` answers a client trusting only the
    consortium's CA; one that exits, or stays silent for 30 s, fails the test (and is killed)."""
    command = [sys.executable, "-m", "kumiai", "--home", str(home), "coordinator", "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    trusting = ssl.create_default_context(cafile=str(home / "tls" / "ca.pem"))
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(
                f"https://127.0.0.1:{port}/ledger/head", context=trusting, timeout=5
            ).close()
            return server
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None:
                raise AssertionError(f"the coordinator exited: {server.communicate()}") from None
            if time.monotonic() > deadline:
                server.kill()
                server.wait()
                raise AssertionError("the coordinator did not answer within 30 s") from None
            time.sleep(0.2)
