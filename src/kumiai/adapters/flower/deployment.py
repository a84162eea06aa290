"""Running a job on Flower's deployment engine, the coordinator's side.

The SuperLink runs with `--isolation process`, so nothing of Flower's loads kumiai's
ServerApp from a FAB: this process submits a run carrying the shim FAB through the Control
API, takes the run's ServerApp task from the Runtime API, and runs kumiai's ServerApp (with
its closures over the job and its recorder) right here, on Flower's `HttpGrid`. The
ServerApp polls the grid through `StoppableGrid` (push, then pull every `REPLY_POLL`), so
Flower's 3 s wait in `HttpGrid.send_and_receive` is never used. Every call to the
SuperLink retries a lost link for a bounded time only (`adapters.flower.retry`): a
coordinator killed mid-job fails the job in seconds, with one clear message.
"""

import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid, ServerApp

from kumiai.adapters.flower.grid import DelegatingGrid
from kumiai.adapters.flower.retry import (
    HEARTBEAT_RETRY_SECONDS,
    LINK_LOST_SECONDS,
    bounded_http_retry_invoker,
    lost_link,
    quiet_heartbeat,
)
from kumiai.adapters.flower.shim import SHIM_SHA256, shim_fab
from kumiai.adapters.flower.simulation import quiet
from kumiai.adapters.flower.superlink import SuperLinkAddress, control_client
from kumiai.domain.errors import JobFailed

TASK_SECONDS = 30.0  # for the SuperLink to make the run's ServerApp task


class RegisteredNodes(DelegatingGrid):
    """Only the SuperNodes the coordinator registered take part (by Flower node id)."""

    def __init__(self, inner: Grid, node_ids: Iterable[int]) -> None:
        super().__init__(inner)
        self.node_ids = set(node_ids)
        self.owner = threading.current_thread()  # the one that runs the ServerApp
        self.listed: list[int] = []

    def get_node_ids(self) -> Iterable[int]:
        """The registered nodes the SuperLink lists.

        A failure (a lost SuperLink, a grid closed once the job ended) raises in the
        ServerApp's own thread, which fails the job with one message. Flower's helper thread
        that polls this for SecAgg+'s client manager gets the last list instead of dying
        with a traceback on the operator's terminal."""
        try:
            self.listed = [n for n in self.inner.get_node_ids() if n in self.node_ids]
        except Exception:
            if threading.current_thread() is self.owner:
                raise
        return list(self.listed)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        strangers = {m.metadata.dst_node_id for m in messages} - self.node_ids
        if strangers:
            raise JobFailed(f"refused to send to unregistered node(s) {sorted(strangers)}")
        return self.inner.push_messages(messages)


def _runtime(
    link: SuperLinkAddress, token: str | None, retry_seconds: float = LINK_LOST_SECONDS
) -> Any:
    from flwr.supercore.interceptors import (
        RuntimeTokenHttpInterceptor,
        RuntimeVersionHttpInterceptor,
    )
    from flwr.supercore.runtime import RuntimeHttpClient

    interceptors: list[Any] = [RuntimeVersionHttpInterceptor(component_name="flwr-serverapp")]
    if token is not None:
        interceptors.append(RuntimeTokenHttpInterceptor(token))
    return RuntimeHttpClient.from_server_address(
        server_address=link.address,
        insecure=False,
        root_certificates=link.root_certificates(),
        interceptors=interceptors,
        retry_invoker=bounded_http_retry_invoker(retry_seconds),
    )


def start_run(link: SuperLinkAddress) -> int:
    """Submit a run whose app is the shim FAB; returns Flower's run id."""
    from flwr.common.serde import fab_to_proto, user_config_to_proto
    from flwr.proto.control_pb2 import StartRunRequest
    from flwr.supercore.fab import Fab

    content = shim_fab()
    client = control_client(link)
    try:
        reply = client.StartRun(
            StartRunRequest(
                fab=fab_to_proto(Fab(SHIM_SHA256, content, {})),
                override_config=user_config_to_proto({}),
                federation="",
                app_spec="",
            )
        )
    finally:
        client.close()
    if not reply.HasField("run_id"):
        raise JobFailed(f"the SuperLink at {link.address} did not start the run")
    return int(reply.run_id)


def _acquire_server_task(link: SuperLinkAddress, run_id: int, timeout: float) -> str:
    """The token of this run's ServerApp task; a stale task of an earlier run is closed."""
    from flwr.common.constant import SubStatus
    from flwr.proto.runtime_pb2 import AcquireTaskRequest, PushTaskOutputRequest
    from flwr.supercore.constant import TaskType

    client = _runtime(link, None)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            reply = client.AcquireTask(
                AcquireTaskRequest(supported_task_types=[TaskType.SERVER_APP])
            )
            if reply.HasField("task") and reply.token:
                if int(reply.task.run_id) == run_id:
                    return str(reply.token)
                stale = _runtime(link, reply.token)  # a run whose coordinator died: end it
                try:
                    stale.PushTaskOutput(
                        PushTaskOutputRequest(
                            sub_status=SubStatus.FAILED, details="its coordinator left"
                        )
                    )
                finally:
                    stale.close()
                continue
            time.sleep(0.05)
    finally:
        client.close()
    raise JobFailed(f"the SuperLink made no ServerApp task for run {run_id} in {timeout:.0f} s")


def run_deployment(
    server_app: ServerApp,
    link: SuperLinkAddress,
    node_ids: Iterable[int],
    task_timeout: float = TASK_SECONDS,
) -> int:
    """Run `server_app` here, on the SuperLink's grid, over the registered nodes only.

    Returns Flower's run id. Exceptions of the ServerApp reach the caller, as in simulation.
    """
    from flwr.common.constant import SubStatus
    from flwr.common.serde import context_from_proto, context_to_proto, run_from_proto
    from flwr.proto.runtime_pb2 import PullTaskInputRequest, PushTaskOutputRequest
    from flwr.supercore.heartbeat import HeartbeatSender
    from flwr.supercore.task_identity import TaskIdentity
    from flwr.superlink.grid import HttpGrid

    run_id = start_run(link)
    token = _acquire_server_task(link, run_id, task_timeout)
    client = _runtime(link, token)
    task = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id, TaskIdentity.run_id = task.task_id, task.run.run_id
    TaskIdentity.node_id = task.context.node_id
    beats = _runtime(link, token, HEARTBEAT_RETRY_SECONDS)  # its stop waits for one call
    heartbeat = HeartbeatSender(quiet_heartbeat(beats))
    heartbeat.start()
    grid = HttpGrid(
        runtime_api_address=link.address,
        insecure=False,
        root_certificates=link.root_certificates(),
        token=token,
    )
    grid._retry_invoker = bounded_http_retry_invoker()  # Flower's retries for ever, then SIGINTs
    status, details, context = SubStatus.FAILED, "kumiai's ServerApp failed", None
    gone = False  # the SuperLink stopped answering: nothing more to tell it
    try:
        context = context_from_proto(task.context)
        grid.set_run(run_from_proto(task.run))
        with quiet():
            server_app(grid=RegisteredNodes(grid, node_ids), context=context)
        status, details = SubStatus.COMPLETED, ""
    except BaseException as exc:
        details = f"{type(exc).__name__}: {exc}"[:500]
        if gone := lost_link(exc):
            raise JobFailed(
                f"lost the coordinator's SuperLink at {link.address} mid-job ({details}); "
                "the job stopped, its recorded rounds are kept and no model was released"
            ) from None
        raise
    finally:
        with contextlib.suppress(Exception):  # the SuperLink is gone: the run ends with it
            if not gone:
                client.PushTaskOutput(
                    PushTaskOutputRequest(
                        context=context_to_proto(context) if context is not None else None,
                        sub_status=status,
                        details=details,
                    )
                )
        heartbeat.stop()
        grid.close()
        client.close()
        beats.close()
    return run_id
