"""Running a job on Flower's simulation engine (Ray), quietly and without network access."""

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
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


def _end_actors_keep_ray(backend: Any) -> None:
    """RayBackend.terminate without its ray.shutdown(): the next job's nodes reuse Ray."""
    if backend.pool:
        backend.pool.terminate_all_actors()


@contextlib.contextmanager
def one_engine() -> Iterator[None]:
    """Run many jobs on one Ray (a benchmark's seventy jobs, a notebook's loop).

    Flower starts Ray for a job when none is running and shuts it down when the job ends:
    about 7 s per job on two cores, most of a small job. Inside this block the first job
    starts Ray, each job still ends its own node actors, and Ray is shut down once, at the
    end (on an exception or a signal too).
    """
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    original = RayBackend.terminate
    RayBackend.terminate = _end_actors_keep_ray
    try:
        yield
    finally:
        RayBackend.terminate = original
        import ray

        if ray.is_initialized():
            ray.shutdown()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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

    with _quiet(), _fast_dispatch():
        flower_run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=num_nodes,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {
                    "num_cpus": 2,
                    "logging_level": "ERROR",
                    "log_to_driver": False,
                    "include_dashboard": False,
                },
            },
        )


class PartitionLocator:
    """Simulation: SuperNode partition i is the node of sites[i] = (member home, dataset)."""

    def __init__(self, sites: list[tuple[str, str]]) -> None:
        self.sites = sites

    def __call__(self, context: Context) -> tuple[Path, str | None]:
        home, dataset = self.sites[int(context.node_config["partition-id"])]
        return Path(home), dataset
