"""`kumiai demo --serve`: the demo consortium, then the API and the dashboard on loopback,
its URL printed; every page of the demo answers; SIGTERM stops it."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.interfaces.uvicorn_thread import free_port as _free_port

pytestmark = pytest.mark.simulation


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.read().decode()


def test_demo_serve_prints_the_url_and_serves_every_page_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "COLUMNS": "200", "FLWR_TELEMETRY_ENABLED": "0"}
    command = [sys.executable, "-m", "kumiai", "demo", "--dir", str(tmp_path / "demo")]
    server = subprocess.Popen(
        [*command, "--serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        assert server.stdout is not None
        for line in server.stdout:  # the demo's output, then the URL
            if found := re.search(r"Dashboard: (http://\S+/ui/)", line):
                url = found.group(1)
                break
        assert url == f"http://127.0.0.1:{port}/ui/", url
        deadline = time.monotonic() + 30
        while True:
            try:
                overview = _get(url)
                break
            except OSError:
                assert time.monotonic() < deadline, "nothing listens at the printed URL"
                time.sleep(0.2)
        assert '<a href="/ui/projects/heart-disease">heart-disease</a>' in overview
        assert "cosigned the latest head" in overview  # the demo's nodes witnessed last
        project = _get(url + "projects/heart-disease")
        found_jobs = set(re.findall(r'<a href="/ui/jobs/(job-[0-9a-f]+)">', project))
        pages = [_get(url + f"jobs/{job}") for job in sorted(found_jobs)]
        # The training job's 30 rounds (beside it, the contribution analysis's job).
        assert sum('data-status="completed" data-rounds="30"' in p for p in pages) == 1
        model = _get(url + "models/heart-disease-v1")
        assert len(re.findall(r'data-figure="share/', model)) == 3  # three hospitals trained
        for page in ("privacy", "ledger", "board", "investor", "models", "projects"):
            _get(url + page)
        # Bound to loopback: not reachable at this machine's other addresses.
        others = {
            a[4][0] for a in socket.getaddrinfo(socket.gethostname(), port, socket.AF_INET)
        } - {"127.0.0.1"}
        for address in others:
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, port))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail("the demo's server did not stop within 15 s of SIGTERM")
