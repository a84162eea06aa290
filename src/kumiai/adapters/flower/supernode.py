"""A member's SuperNode, and the node's own executor that runs its ClientApp.

The SuperNode (`flower-supernode`, supervised) dials the coordinator's SuperLink over TLS,
proves itself with the node's authentication key, and queues the messages it receives. It
runs with `--isolation process`: it starts no executor of its own. The node's process runs
`run_tasks` instead, Flower's process-isolation contract (the SuperNode's Runtime API on
127.0.0.1, the same calls `flwr-clientapp` makes) with two differences that are the point:

- The ClientApp is the node's own, installed and guarded, passed in by the node. The FAB the
  SuperLink shipped is never installed nor imported. A run whose FAB is not kumiai's shim,
  byte for byte (`adapters.flower.shim.SHIM_SHA256`), is refused with an error reply: a
  coordinator cannot make a node run code the node did not choose.
- The process stays warm: Flower's executor starts a new `flwr-clientapp` process (about
  3 s of imports) for every message; here the next task runs in the same process.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kumiai.adapters.flower.shim import SHIM_SHA256
from kumiai.adapters.flower.supervised import Supervised, executable, flower_environment

READY_SECONDS = 60.0
TASK_POLL_SECONDS = 0.02  # the node's own wait between AcquireTask calls (a local HTTP call)
APP_REFUSED = "the node runs only its own installed ClientApp"


@dataclass
class SuperNode:
    """A supervised `flower-supernode` with TLS and node authentication."""

    superlink: str  # host:port of the SuperLink's Fleet API
    ca_cert: Path | None  # the consortium's CA; None is tested as "a node without the CA"
    auth_key: Path  # the node's private SuperNode key (OpenSSH)
    folder: Path  # its log and Flower home
    runtime_port: int  # its Runtime API, on 127.0.0.1 only
    process: Supervised | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def runtime_address(self) -> str:
        return f"127.0.0.1:{self.runtime_port}"

    def command(self) -> list[str]:
        command = [
            executable("flower-supernode"),
            "--superlink",
            self.superlink,
            "--auth-supernode-private-key",
            str(self.auth_key),
            "--isolation",
            "process",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.runtime_port),
            "--max-retries",
            "3",
        ]
        if self.ca_cert is not None:
            command += ["--root-certificates", str(self.ca_cert)]
        return command

    def start(self, timeout: float = READY_SECONDS) -> None:
        """Start and wait until the SuperLink accepted it (refused: why, from its log)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = Supervised(
            "SuperNode",
            self.command(),
            self.folder / "supernode.log",
            flower_environment(self.folder / "flwr"),
        )
        log = self.process.log
        start = log.stat().st_size if log.exists() else 0
        self.process.start()

        def connected() -> bool:
            with log.open("rb") as handle:
                handle.seek(start)
                return b"SuperNode ID:" in handle.read()

        self.process.wait_until(
            connected, timeout, f"accepted by the SuperLink at {self.superlink}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def _runtime_client(address: str, token: str | None) -> Any:
    from flwr.supercore.interceptors import (
        RuntimeTokenHttpInterceptor,
        RuntimeVersionHttpInterceptor,
    )
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    interceptors: list[Any] = [RuntimeVersionHttpInterceptor(component_name="flwr-clientapp")]
    if token is not None:
        interceptors.append(RuntimeTokenHttpInterceptor(token))
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,  # the SuperNode's Runtime API listens on 127.0.0.1 only
        root_certificates=None,
        interceptors=interceptors,
        retry_invoker=make_simple_http_retry_invoker(),
    )


PULL_BACKOFF = (0.01, 0.1)
"""First and longest wait (s) while the SuperNode is still fetching a message's objects.

Flower's `flwr-clientapp` waits 1 s, doubling to 10 s; it starts 3 s after the task exists,
when the objects are long there. This executor takes the task at once and would otherwise
lose a second per message to that first wait."""


def _pull_task_input(client: Any) -> tuple[Any, Any, Any]:
    """Flower's `run_clientapp.pull_task_input` with a short backoff: (message, context, fab)."""
    from flwr.app import Message
    from flwr.common.serde import context_from_proto, fab_from_proto
    from flwr.proto.node_pb2 import Node
    from flwr.proto.runtime_pb2 import PullAppMessagesRequest, PullTaskInputRequest
    from flwr.supercore.inflatable.inflatable_protobuf_utils import (
        make_confirm_message_received_fn_protobuf,
        make_pull_object_fn_protobuf,
    )
    from flwr.supercore.inflatable.inflatable_utils import pull_and_inflate_object_from_tree
    from flwr.supercore.task_identity import TaskIdentity

    task = client.PullTaskInput(PullTaskInputRequest())
    TaskIdentity.task_id, TaskIdentity.run_id = task.task_id, task.run.run_id
    TaskIdentity.node_id = task.context.node_id
    context, fab = context_from_proto(task.context), fab_from_proto(task.fab)
    pulled = client.PullMessages(PullAppMessagesRequest())
    if not pulled.messages_list:
        raise RuntimeError("the SuperNode's Runtime API gave a task without its message")
    node, tree = Node(node_id=context.node_id), pulled.message_object_trees[0]
    message = pull_and_inflate_object_from_tree(
        tree,
        make_pull_object_fn_protobuf(client.PullObject, node, context.run_id),
        make_confirm_message_received_fn_protobuf(
            client.ConfirmMessageReceived, node, context.run_id
        ),
        return_type=Message,
        initial_backoff=PULL_BACKOFF[0],
        backoff_cap=PULL_BACKOFF[1],
    )
    message.metadata.__dict__["_message_id"] = tree.object_id  # as Flower does
    return message, context, fab


def run_task(address: str, token: str, app: Any, pinned_fab: str = SHIM_SHA256) -> bool:
    """Run one message through `app` (a Flower ClientApp) in this process; push the reply.

    Returns False when the run's app was refused.
    """
    from flwr.app import Error, Message
    from flwr.common.constant import ErrorCode, SubStatus
    from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
    from flwr.supernode.runtime.run_clientapp import push_message, push_task_output

    client = _runtime_client(address, token)
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    heartbeat.start()
    context = None
    status, details, accepted = SubStatus.FAILED, "", True
    try:
        message, context, fab = _pull_task_input(client)
        if fab.hash_str != pinned_fab:
            accepted = False
            details = (
                f"{APP_REFUSED}: the SuperLink shipped app {fab.hash_str[:12]}, "
                f"not kumiai's shim {pinned_fab[:12]}"
            )
            reply = Message(Error(code=ErrorCode.INVALID_FAB, reason=details), reply_to=message)
        else:
            try:
                reply = app(message=message, context=context)
                status = SubStatus.COMPLETED
            except Exception as exc:  # the guarded app answers errors itself; this is a crash
                details = f"{type(exc).__name__}: {exc}"
                reply = Message(
                    Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=details),
                    reply_to=message,
                )
        push_message(client, reply, context)
    finally:
        push_task_output(client, context, status, details)
        heartbeat.stop()
        client.close()
    return accepted


def run_tasks(
    address: str,
    app_for: Callable[[], Any],
    stop: threading.Event,
    pinned_fab: str = SHIM_SHA256,
    on_refused: Callable[[], None] | None = None,
) -> None:
    """Take the SuperNode's ClientApp tasks one by one until `stop` is set."""
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.constant import TaskType

    app = app_for()
    client = _runtime_client(address, None)
    try:
        while not stop.is_set():
            response = client.AcquireTask(
                AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
            )
            if response.HasField("task") and response.token:
                if not run_task(address, response.token, app, pinned_fab) and on_refused:
                    on_refused()
                continue
            stop.wait(TASK_POLL_SECONDS)
    finally:
        client.close()
