"""A command's start-up without the cyclic garbage collector.

Starting a read command imports Typer, SQLAlchemy's ORM, the mapped tables and the
services: a few hundred thousand objects that live until the process ends. The cyclic
collector walks them again and again while they are created and frees nothing (measured:
50 to 100 ms of CPU of a 0.5 s `kumiai ledger show`). It is paused for the first second of
a command; a command that runs longer (training, a server) gets it back then.
"""

import gc
import threading

PAUSE_SECONDS = 1.0


def pause_collection(seconds: float = PAUSE_SECONDS) -> None:
    """Collect no reference cycles for `seconds` (a no-op if the collector is already off)."""
    if not gc.isenabled():
        return
    gc.disable()
    timer = threading.Timer(seconds, gc.enable)
    timer.daemon = True  # never keeps a finished command's process alive
    timer.start()
