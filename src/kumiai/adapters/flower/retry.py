"""Flower's HTTP retry, bounded, for the ServerApp's side of a deployment job.

Flower's `make_simple_http_retry_invoker` retries a refused connection without end, and on
a 401 (a restarted SuperLink no longer knows the run's token) sends SIGINT to its own
process. A coordinator whose SuperLink died mid-job would leave `kumiai train` hanging, or
interrupt it from a background thread. Here a lost SuperLink is retried for
`LINK_LOST_SECONDS`, then the call raises; any HTTP error status but a gateway's is final
at once; nothing signals the process. `run_deployment` turns what is raised into one
JobFailed that names the SuperLink.
"""

from collections.abc import Callable
from typing import Any

import httpx
from flwr.supercore.retry import RetryInvoker, exponential

LINK_LOST_SECONDS = 15.0
"""How long a ServerApp call retries a SuperLink that stopped answering before the job
fails: long enough for a network blip, short enough that the job's process ends soon
after its coordinator died."""

HEARTBEAT_RETRY_SECONDS = 2.0
"""A heartbeat that fails is sent again later anyway; a short retry lets the job's end
(which waits for the heartbeat thread) come soon after its SuperLink died."""

_GATEWAY = frozenset({502, 503, 504})


def _final(exc: Exception) -> bool:
    """An answer the SuperLink gave (401, 403...) or a TLS failure: retrying cannot help."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code not in _GATEWAY
    return any(term in str(exc).lower() for term in ("certificate", "ssl", "tls"))


def bounded_http_retry_invoker(max_seconds: float = LINK_LOST_SECONDS) -> RetryInvoker:
    return RetryInvoker(
        wait_gen_factory=lambda: exponential(max_delay=2),
        recoverable_exceptions=(httpx.TransportError, httpx.HTTPStatusError),
        max_tries=None,
        max_time=max_seconds,
        should_giveup=_final,
    )


def quiet_heartbeat(client: Any) -> Callable[[], bool]:
    """The ServerApp task's heartbeat: False (retried later) on any failure.

    Flower's own raises on an unexpected status, killing its thread with a traceback, and
    SIGINTs the process when the SuperLink says the run is over; the job's grid calls find
    out either way, and fail the job in the main thread.
    """
    from flwr.proto.runtime_pb2 import SendTaskHeartbeatRequest

    def beat() -> bool:
        try:
            return bool(client.SendTaskHeartbeat(SendTaskHeartbeatRequest()).success)
        except (httpx.HTTPError, OSError):
            return False

    return beat


def lost_link(exc: BaseException) -> bool:
    """Whether a ServerApp failure is the SuperLink gone or restarted (not a kumiai error)."""
    return isinstance(exc, httpx.HTTPError)
