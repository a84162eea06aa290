"""Real Flower processes on 127.0.0.1: each test's processes are stopped by PID at its end."""

import socket
from collections.abc import Iterator

import pytest

from kumiai.adapters.flower.supervised import alive, descendants


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stopped_at_end() -> Iterator[list]:  # type: ignore[type-arg]
    """Register each supervised process here; all of them are stopped, even on failure,
    and the test fails if any PID (or a descendant) outlives the stop."""
    started: list = []  # type: ignore[type-arg]
    yield started
    stop_every(started)


def stop_every(started: list) -> None:  # type: ignore[type-arg]
    """Stop each process (last started first) by its PID; fail if any PID outlives it."""
    pids = []
    for process in reversed(started):
        if process.pid is not None:
            pids += [process.pid, *descendants(process.pid)]
        process.stop()
    assert not [p for p in pids if alive(p)], "a process outlived its stop"
