"""While `coordinator serve` runs a SuperLink, it admits exactly the members' current node
keys: a member that joins is registered within seconds, without a restart; a key the
consortium no longer holds for a member (an old key, a key registered behind its back) is
unregistered, after which Flower refuses it.

The decision is `domain.node_admission.plan_admission`. What it reads: the members' keys in
the governance database (whichever API worker wrote them) and the SuperLink's own list of
live nodes. What it never reads: `nodes.json`, which it only writes (member -> node id, for
`train --superlink`), so a tampered file is overwritten at the next pass and never makes it
register anything.
"""

import threading
import time
from collections.abc import Callable

from kumiai.adapters.flower.superlink import (
    SuperLink,
    canonical_key,
    live_nodes,
    public_key_bytes,
    read_registered,
    register_node,
    unregister_node,
    write_registered,
)
from kumiai.domain.errors import KumiaiError
from kumiai.domain.node_admission import plan_admission
from kumiai.services.consortium import Consortium
from kumiai.services.deployment import node_keys

ADMISSION_SECONDS = 2.0  # how often the keeper reads the members' keys: a join waits this long
SUPERLINK_SECONDS = 30.0  # how often it asks the SuperLink even when no key changed
_RUNNING: set["AdmissionKeeper"] = set()  # the keepers of this process (coordinator serve)


def members_changed() -> None:
    """A join just committed in this process: its keepers look now, not at their next tick
    (a join taken by another process waits for the tick)."""
    for keeper in list(_RUNNING):
        keeper.wake()


def admit_members(consortium: Consortium, link: SuperLink) -> list[str]:
    """One pass: make the SuperLink admit the members' current keys and nothing else.

    Returns one line per change or problem (for the operator's log); updates `link.nodes`
    and the nodes file. Unregisters before it registers, so a rotated key never overlaps its
    successor.
    """
    lines, held, problems = node_keys(consortium), {}, []
    for member, line in lines.items():
        try:
            held[member] = canonical_key(public_key_bytes(line))
        except KumiaiError as exc:  # a row no join could have written: admit nothing for it
            problems.append(f"{member}'s SuperNode key is not admitted: {exc}")
    plan = plan_admission(held, live_nodes(link.address))
    problems += [
        f"{member}'s SuperNode key is held by another member too: admitted for neither"
        for member in plan.shared
    ]
    nodes, changes = dict(plan.admitted), []
    for node in plan.unregister:
        try:
            unregister_node(link.address, node.node_id)
            changes.append(
                f"unregistered node {node.node_id} (registered as {node.name!r}): "
                "no member holds its key now"
            )
        except Exception as exc:  # Flower's error, or gone meanwhile: the next pass retries
            problems.append(f"could not unregister node {node.node_id}: {exc}")
    for member, _ in plan.register:
        try:
            nodes[member] = register_node(link.address, lines[member], member)
            changes.append(f"registered {member}'s SuperNode key (node {nodes[member]})")
        except Exception as exc:  # e.g. a key this SuperLink unregistered once stays refused
            problems.append(f"could not register {member}'s SuperNode key: {exc}")
    link.nodes = dict(sorted(nodes.items()))
    if _recorded(link) != link.nodes:
        write_registered(link.nodes_file, link.nodes)
    return changes + problems


def _recorded(link: SuperLink) -> dict[str, int] | None:
    """What the nodes file says, or None when it is not even a nodes file (rewritten then:
    a corrupted file must not stop admission)."""
    try:
        return read_registered(link.nodes_file)
    except (ValueError, TypeError, AttributeError, OSError):
        return None


class AdmissionKeeper:
    """A thread in the serve process: every few seconds it reads the members' keys, and runs
    `admit_members` when they changed (or at least every `SUPERLINK_SECONDS`, to undo what
    was registered behind its back, without filling the SuperLink's log with ListNodes). It
    reports each change once (a problem that persists is not repeated every pass)."""

    def __init__(
        self,
        consortium: Consortium,
        link: SuperLink,
        report: Callable[[str], None],
        every: float = ADMISSION_SECONDS,
        recheck: float = SUPERLINK_SECONDS,
    ) -> None:
        self.consortium, self.link, self.report, self.every = consortium, link, report, every
        self.recheck = recheck
        self._seen: dict[str, str] | None = None  # the keys at the last pass that succeeded
        self._last = 0.0
        self._stop, self._wake = threading.Event(), threading.Event()
        self._said: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="node-admission", daemon=True)

    def start(self) -> "AdmissionKeeper":
        _RUNNING.add(self)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        _RUNNING.discard(self)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def due(self) -> bool:
        """Whether the members' keys changed since the last pass, or a recheck is due."""
        try:
            held = node_keys(self.consortium)
        except Exception:  # the database busy: let the pass say why
            return True
        changed, self._seen = held != self._seen, held
        return changed or time.monotonic() - self._last >= self.recheck

    def run_once(self) -> None:
        try:
            lines = admit_members(self.consortium, self.link)
            self._last = time.monotonic()
        except Exception as exc:  # the SuperLink restarting, the database busy: next pass
            lines = [f"node admission paused: {exc}"]
            self._seen = None  # try again at the next tick
        new = [line for line in lines if line not in self._said]
        self._said = {line for line in lines if not line.startswith(("registered", "unreg"))}
        for line in new:
            self.report(line)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            if not self._stop.is_set() and self.due():
                self.run_once()
