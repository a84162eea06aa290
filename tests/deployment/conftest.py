"""Real Flower processes on 127.0.0.1: each test's processes are stopped by PID at its end."""

import os
import socket
from collections.abc import Iterator

import pytest

from kumiai.adapters.flower.supervised import descendants


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def stopped_at_end() -> Iterator[list]:  # type: ignore[type-arg]
    """Register each supervised process here; all of them are stopped, even on failure,
    and the test fails if any PID (or a descendant) outlives the stop."""
    started: list = []  # type: ignore[type-arg]
    yield started
    pids = []
    for process in reversed(started):
        if process.pid is not None:
            pids += [process.pid, *descendants(process.pid)]
        process.stop()
    assert not [p for p in pids if alive(p)], "a process outlived its stop"


class NodeProcess:
    """`kumiai serve-node` for one member's home, as its organisation would run it."""

    def __init__(self, home, superlink: str, ca, log) -> None:  # type: ignore[no-untyped-def]
        import subprocess
        import sys

        from kumiai.adapters.flower.supervised import Supervised

        env = dict(os.environ)
        src = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "kumiai", "serve-node", "--home", str(home)]
        command += ["--superlink", superlink, "--runtime-port", str(free_port())]
        if ca is not None:
            command += ["--ca", str(ca)]
        self.process = Supervised("node", command, log, env)
        self.process.start()
        self.subprocess = subprocess

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def log_text(self) -> str:
        return self.process.log.read_text(errors="replace")

    def supernode_log(self, home) -> str:  # type: ignore[no-untyped-def]
        path = home / "supernode" / "supernode.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_connected(self, home, timeout: float = 40.0) -> None:  # type: ignore[no-untyped-def]
        self.process.wait_until(
            lambda: "SuperNode ID:" in self.supernode_log(home), timeout, "connected"
        )

    def stop(self) -> None:
        self.process.stop()
