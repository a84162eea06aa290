"""Running a job on Flower's simulation engine (Ray), quietly and without network access."""

import contextlib
import hashlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

DISPATCH_POLL_SECONDS = 0.01
"""How often the simulation engine hands waiting messages to the nodes (Flower: 0.1 s)."""

FLOWER_DISPATCH_SHA256 = "953f4bd41a931a7779a4a670ab17b633f6e20b08a0128535328674466419777a"
"""Flower 1.42.0's vce_api.add_messages_to_queue, which `_fast_dispatch` replaces; a test
fails when a new Flower changes it, so the replacement is re-read before it is kept."""


def _dispatch(state: Any, queue: Any, nodes_mapping: Any, f_stop: threading.Event) -> None:
    """Flower's add_messages_to_queue with a 10 ms wait instead of 100 ms.

    Written here because Flower offers no setting for it: its simulation engine polls its
    message store every 100 ms, and every exchange of a round waits for that poll (two per
    plain round, five under SecAgg+), which was most of a small job's round time.
    """
    while not f_stop.is_set():
        for node_id in nodes_mapping:
            for message in state.get_message_ins(node_id=node_id, limit=1):
                queue.put(message)
        f_stop.wait(DISPATCH_POLL_SECONDS)


@contextlib.contextmanager
def _fast_dispatch() -> Iterator[None]:
    from flwr.server.superlink.fleet.vce import vce_api

    original = vce_api.add_messages_to_queue
    vce_api.add_messages_to_queue = _dispatch
    try:
        yield
    finally:
        vce_api.add_messages_to_queue = original


FLOWER_TERMINATE_SHA256 = "572052de11fe046c057296609a80a242237f476ca547d6bd10fcb186e5c221c4"
"""Flower 1.42.0's RayBackend.terminate, which `one_engine` replaces for its duration."""

FLOWER_BUILD_SHA256 = "6a0c387457a6dbc1b35091762c24afdd2c3453fe09eeceeb7e966136f832ddc0"
"""Flower 1.42.0's RayBackend.build, which `one_engine` wraps for its duration."""


ACTORS_IDLE_SECONDS = 5.0


class _KeptActors:
    """The node actors (Ray worker processes) that one engine's jobs share.

    A fresh actor imports Flower, kumiai, pandas, scikit-learn and dp-accounting before it
    can answer: about 5 s per job on two cores. The actors hold no job state (each message
    brings its ClientApp and its node's context), so the next job can reuse them.
    """

    def __init__(self) -> None:
        self.pool: Any = None

    def build(self, backend: Any, app_fn: Any, original: Any) -> None:
        pool = self.pool
        if pool is not None and len(pool.pool) == pool.num_actors:  # every actor idle
            backend.pool, backend.app_fn = pool, app_fn
            return
        if pool is not None:  # a job ended with an actor still busy: start afresh
            pool.terminate_all_actors()
        original(backend, app_fn)
        self.pool = backend.pool

    def end(self, wait: float = ACTORS_IDLE_SECONDS) -> None:
        """End the actors once the messages in flight (a stopped job's) have come back.

        Ending an actor under a running message makes Flower's engine threads log Ray's
        errors; a message takes well under a second.
        """
        pool = self.pool
        if pool is None:
            return
        deadline = time.monotonic() + wait
        while len(pool.pool) < pool.num_actors and time.monotonic() < deadline:
            time.sleep(0.05)
        pool.terminate_all_actors()
        self.pool = None


@contextlib.contextmanager
def one_engine() -> Iterator[None]:
    """Run many jobs on one Ray and one set of node actors (a benchmark, a notebook's loop).

    Flower starts Ray and its node actors for a job when none are running and ends them when
    the job ends: about 7 s for Ray and 5 s for the actors on two cores, most of a small
    job. Inside this block the first job starts them, the next jobs reuse them, and they
    end once, at the end (on an exception or a signal too).
    """
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    kept = _KeptActors()
    build, terminate = RayBackend.build, RayBackend.terminate

    def reuse(backend: Any, app_fn: Any) -> None:
        kept.build(backend, app_fn, build)

    RayBackend.build = reuse
    RayBackend.terminate = _keep_engine
    try:
        yield
    finally:
        RayBackend.build, RayBackend.terminate = build, terminate
        import ray

        kept.end()
        if ray.is_initialized():
            ray.shutdown()


def _keep_engine(backend: Any) -> None:
    """RayBackend.terminate inside `one_engine`: the actors and Ray stay for the next job."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Flower logs every round at INFO (and run_simulation's deprecation); kumiai shows its own."""
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_simulation(
    server_app: ServerApp, client_app: ClientApp, num_nodes: int, home: Path
) -> None:
    """One Flower simulation: `num_nodes` SuperNodes, Ray state kept out of /tmp/ray."""
    # Ray's socket paths must stay under ~107 bytes, so its directory is short and derived
    # from the home rather than inside it.
    tag = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:10]
    os.environ["RAY_TMPDIR"] = os.path.join(tempfile.gettempdir(), f"kumiai-ray-{tag}")
    os.environ.setdefault("FLWR_HOME", str(home / "flwr"))
    os.environ["RAY_DEDUP_LOGS"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"] = "0"
    from flwr.simulation import run_simulation as flower_run_simulation

    with quiet(), _fast_dispatch():
        _start_ray(RAY_INIT_ARGS)
        flower_run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=num_nodes,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": RAY_INIT_ARGS,
            },
        )


RAY_INIT_ARGS = {
    "num_cpus": 2,
    "logging_level": "ERROR",
    "log_to_driver": False,
    "include_dashboard": False,
}
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _start_ray(init_args: dict[str, Any]) -> None:
    """Start Ray as Flower's RayBackend.init_ray would, with the stop signals blocked.

    Ray's C++ threads, created here, inherit the blocked mask and keep it, so a SIGTERM or
    Ctrl-C is always delivered to a Python thread, and the main thread runs kumiai's handler
    (the job fails as stopped). Flower's own init_ray then finds Ray running and leaves it.
    """
    import ray

    if ray.is_initialized() or threading.current_thread() is not threading.main_thread():
        return
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    ours = signal.getsignal(signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        ray.init(runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}, **init_args)
    finally:
        # ray.init leaves its C++ failure handler on SIGTERM, which aborts (SIGABRT) a
        # process stopped early in a job; the Python handler kumiai had goes back on.
        if callable(ours):
            signal.signal(signal.SIGTERM, ours)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class PartitionLocator:
    """Simulation: SuperNode partition i is the node of sites[i] = (member home, dataset)."""

    def __init__(self, sites: list[tuple[str, str]]) -> None:
        self.sites = sites

    def __call__(self, context: Context) -> tuple[Path, str | None]:
        home, dataset = self.sites[int(context.node_config["partition-id"])]
        return Path(home), dataset
