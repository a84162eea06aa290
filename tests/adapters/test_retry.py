"""The ServerApp's calls to a SuperLink that died give up in bounded time, and a restarted
one's 401 fails the call at once instead of SIGINT-ing the process (Flower's own retry)."""

import time

import httpx
import pytest

from kumiai.adapters.flower.retry import bounded_http_retry_invoker, lost_link, quiet_heartbeat


def refused() -> None:
    raise httpx.ConnectError("[Errno 111] Connection refused")


def status(code: int) -> None:
    request = httpx.Request("POST", "https://127.0.0.1:1/flwr.proto.ServerAppIo/PullMessages")
    response = httpx.Response(code, request=request)
    raise httpx.HTTPStatusError(f"status {code}", request=request, response=response)


def test_a_dead_superlink_is_retried_for_a_bounded_time_then_raised() -> None:
    calls = []

    def call() -> None:
        calls.append(time.monotonic())
        refused()

    started = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        bounded_http_retry_invoker(max_seconds=1.0).invoke(call)
    assert 0.9 <= time.monotonic() - started < 3
    assert len(calls) >= 2  # it did retry


def test_an_unauthorized_answer_fails_at_once_without_a_signal() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        status(401)

    started = time.monotonic()
    with pytest.raises(httpx.HTTPStatusError):  # Flower's would SIGINT this very process
        bounded_http_retry_invoker(max_seconds=10).invoke(call)
    assert calls == [1] and time.monotonic() - started < 1


def test_a_gateway_error_is_retried() -> None:
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) < 3:
            status(503)
        return "ok"

    assert bounded_http_retry_invoker(max_seconds=10).invoke(call) == "ok"
    assert len(calls) == 3


def test_the_heartbeat_never_raises_nor_signals() -> None:
    class Client:
        def __init__(self, fail) -> None:  # type: ignore[no-untyped-def]
            self.fail = fail

        def SendTaskHeartbeat(self, request):  # type: ignore[no-untyped-def]
            self.fail()

    assert quiet_heartbeat(Client(refused))() is False
    assert quiet_heartbeat(Client(lambda: status(401)))() is False


def test_a_lost_link_is_told_from_a_kumiai_error() -> None:
    assert lost_link(httpx.ConnectError("refused"))
    assert not lost_link(ValueError("bad plan"))


def test_flowers_helper_thread_keeps_the_last_node_list_the_serverapp_raises() -> None:
    import threading

    from kumiai.adapters.flower.deployment import RegisteredNodes

    class Link:
        failure: Exception | None = None

        def get_node_ids(self) -> list[int]:
            if self.failure is not None:
                raise self.failure
            return [1, 2, 99]

    def from_helper_thread() -> object:
        seen: list[object] = []
        helper = threading.Thread(target=lambda: seen.append(grid.get_node_ids()))
        helper.start()
        helper.join()
        return seen

    link = Link()
    grid = RegisteredNodes(link, [1, 2])  # type: ignore[arg-type]
    assert grid.get_node_ids() == [1, 2]
    for failure in (httpx.ConnectError("refused"), RuntimeError("the client has been closed")):
        link.failure = failure
        assert from_helper_thread() == [[1, 2]]  # no exception: no traceback on the terminal
        with pytest.raises(type(failure)):  # the ServerApp's own thread fails the job
            grid.get_node_ids()


def test_flowers_http_grid_still_takes_its_retry_from_the_attribute_kumiai_sets() -> None:
    """run_deployment replaces HttpGrid._retry_invoker (Flower 1.42 has no parameter for
    it); if a Flower upgrade renames it, this fails instead of the bound silently going."""
    import inspect

    from flwr.superlink.grid import HttpGrid

    grid = HttpGrid(token="t")
    assert hasattr(grid, "_retry_invoker")
    assert "retry_invoker=self._retry_invoker" in inspect.getsource(HttpGrid._connect)
