"""kumiai's faster dispatch replaces one function of Flower's simulation engine: it must
still be the function it was written against, and it must hand every message over."""

import hashlib
import inspect
import threading
from queue import Queue

from flwr.server.superlink.fleet.vce import vce_api
from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

from kumiai.adapters.flower.simulation import (
    FLOWER_BUILD_SHA256,
    FLOWER_DISPATCH_SHA256,
    FLOWER_TERMINATE_SHA256,
    _dispatch,
    _fast_dispatch,
    _keep_engine,
    _KeptActors,
    one_engine,
)


def test_flowers_functions_are_the_ones_replaced() -> None:
    for function, expected, ours in (
        (vce_api.add_messages_to_queue, FLOWER_DISPATCH_SHA256, "_dispatch"),
        (RayBackend.terminate, FLOWER_TERMINATE_SHA256, "_keep_engine"),
        (RayBackend.build, FLOWER_BUILD_SHA256, "_KeptActors.build"),
    ):
        source = inspect.getsource(function)
        assert hashlib.sha256(source.encode()).hexdigest() == expected, (
            f"Flower changed {function.__qualname__}: re-read it, update "
            f"kumiai.adapters.flower.simulation.{ours} to match, then the hash"
        )


class Store:
    """Flower's LinkState as the dispatcher uses it: one message at a time per node."""

    def __init__(self, waiting: dict[int, list[str]]) -> None:
        self.waiting = waiting

    def get_message_ins(self, node_id: int, limit: int) -> list[str]:
        taken, self.waiting[node_id] = self.waiting[node_id][:limit], self.waiting[node_id][limit:]
        return taken


def test_dispatch_hands_over_every_message_and_stops() -> None:
    store = Store({1: ["a1", "a2"], 2: ["b1"]})
    queue: Queue[str] = Queue()
    stop = threading.Event()
    thread = threading.Thread(target=_dispatch, args=(store, queue, {1: 0, 2: 1}, stop))
    thread.start()
    received = sorted(queue.get(timeout=5) for _ in range(3))
    stop.set()
    thread.join(timeout=5)
    assert received == ["a1", "a2", "b1"] and not thread.is_alive()


def test_the_replacement_is_undone_after_the_run() -> None:
    original = vce_api.add_messages_to_queue
    with _fast_dispatch():
        assert vce_api.add_messages_to_queue is _dispatch
    assert vce_api.add_messages_to_queue is original


def test_one_engine_keeps_ray_between_jobs_and_restores_flower() -> None:
    build, terminate = RayBackend.build, RayBackend.terminate
    with one_engine():
        assert RayBackend.terminate is _keep_engine and RayBackend.build is not build
    assert (RayBackend.build, RayBackend.terminate) == (build, terminate)


class Pool:
    """Flower's BasicActorPool as the kept actors see it."""

    def __init__(self, actors: int) -> None:
        self.pool, self.num_actors, self.ended = list(range(actors)), actors, False

    def terminate_all_actors(self) -> None:
        self.ended = True


class Backend:
    pool: Pool | None = None
    app_fn: object = None


def test_kept_actors_serve_the_next_job_only_when_all_are_idle() -> None:
    built: list[Pool] = []

    def build(backend: Backend, app_fn: object) -> None:
        backend.pool, backend.app_fn = Pool(2), app_fn
        built.append(backend.pool)

    kept = _KeptActors()
    first, second, third = Backend(), Backend(), Backend()
    kept.build(first, "job-1", build)
    kept.build(second, "job-2", build)
    assert second.pool is first.pool and second.app_fn == "job-2" and len(built) == 1
    first.pool.pool.pop()  # an actor still busy when its job ended (stopped mid-round)
    kept.build(third, "job-3", build)
    assert first.pool.ended and third.pool is built[1] and len(built) == 2
    kept.end()
    assert built[1].ended
