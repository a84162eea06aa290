"""The collector is paused for a command's start-up only, and comes back on its own."""

import gc
import time

from kumiai.interfaces.cli.collector import pause_collection


def test_the_collector_is_paused_then_back() -> None:
    assert gc.isenabled()
    try:
        pause_collection(0.2)
        assert not gc.isenabled()
        pause_collection(0.01)  # already paused: this does not shorten or stack the pause
        time.sleep(0.1)
        assert not gc.isenabled()
        deadline = time.monotonic() + 5
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gc.isenabled()
    finally:
        gc.enable()
