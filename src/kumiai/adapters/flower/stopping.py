"""A grid that a stop request ends at its next poll, so a signalled job stops in seconds.

Flower's simulation runs the ServerApp in a non-daemon thread that polls for replies until
the round's timeout (minutes). When the main thread is interrupted (SIGTERM, Ctrl-C), Flower
stops its runtime but not that thread, so the process could neither exit nor be sure the
thread records nothing more. Every exchange of kumiai's ServerApp goes through this grid: it
polls as Flower's InMemoryGrid does, and between polls raises JobStopped once `stop` is set.
"""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from flwr.app import Message
from flwr.serverapp import Grid

from kumiai.adapters.flower.grid import DelegatingGrid
from kumiai.domain.errors import JobStopped, Stopped

REPLY_POLL_SECONDS = 0.01
"""How often the ServerApp looks for replies. Flower's InMemoryGrid waits 0.1 s between
polls, which cost a SecAgg+ round (five exchanges) about half a second of idle waiting;
a poll of the in-memory state costs microseconds. `kumiai bench overhead` gives bare Flower
the same interval, so the comparison stays fair."""


@dataclass
class StopRequest:
    """Shared by the process that was signalled and the ServerApp thread it must end."""

    event: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    server: threading.Thread | None = None  # the ServerApp's thread, once it runs

    def request(self, reason: str) -> None:
        self.reason = reason
        self.event.set()

    def wait_for_server(self, timeout: float) -> bool:
        """Join the ServerApp thread (after `request`): True once it can record nothing more."""
        server = self.server
        if server is None or server is threading.current_thread():
            return True
        server.join(timeout)
        return not server.is_alive()


class StoppableGrid(DelegatingGrid):
    """Delegates to Flower's grid; send_and_receive checks the stop request between polls."""

    def __init__(self, inner: Grid, stop: StopRequest, poll: float = REPLY_POLL_SECONDS) -> None:
        super().__init__(inner)
        self.stop = stop
        self.poll = poll  # over a network (the deployment engine) each poll is a request
        stop.server = threading.current_thread()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        self.check()
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        self.check()
        return self.inner.pull_messages(message_ids)

    def check(self) -> None:
        if self.stop.event.is_set():
            raise JobStopped(self.stop.reason)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """InMemoryGrid.send_and_receive, with the stop check at every poll."""
        waiting = set(self.push_messages(messages))
        end = time.monotonic() + (timeout or 0.0)
        replies: list[Message] = []
        while timeout is None or time.monotonic() < end:
            pulled = list(self.pull_messages(waiting))
            replies.extend(pulled)
            waiting.difference_update(m.metadata.reply_to_message_id for m in pulled)
            if not waiting:
                break
            self.stop.event.wait(self.poll)
        self.check()
        return replies


STOPPED_BY_SIGNAL = "stopped by signal"
SERVER_STOP_SECONDS = 5.0  # one poll, or the round being recorded, then the thread ends


def stop_reason(exc: BaseException) -> str | None:
    """The reason a job ends on this exception, if it is a stop and not an error.

    Ctrl-C raises KeyboardInterrupt; kumiai's SIGTERM handler raises Stopped, and kumiai
    keeps it after starting Ray (adapters.flower.simulation._start_ray). Where Ray was
    started by someone else (a notebook's ray.init), Ray's own Python handler calls
    sys.exit(SIGTERM) instead, so that SystemExit is a stop too.
    """
    import signal

    if isinstance(exc, Stopped):
        return f"{STOPPED_BY_SIGNAL} (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return f"{STOPPED_BY_SIGNAL} (SIGINT)"
    if isinstance(exc, SystemExit) and exc.code == signal.SIGTERM:
        return f"{STOPPED_BY_SIGNAL} (SIGTERM)"
    return None
