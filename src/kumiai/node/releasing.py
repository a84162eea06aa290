"""`kumiai node release`: the node gives up the ε of jobs that are over, and says so.

Across organisations the coordinator cannot reach into a node to release a reservation, so
the node pulls. For every reservation still open in its own spend logs it asks the
coordinator how the job stands (a signed request, over the pinned CA). When the job is
over, unknown to the coordinator, or has not moved for `stale_after` on the node's own
clock, whatever the coordinator says (`domain.releasing.why_release`), the node releases
it in its own signed log, then reports the job's spend with its spend attestation
(`services.releasing` on the coordinator). A report that did not get through is sent again
at the next check-in. `kumiai node serve` runs the check-in every `--release-every` seconds.

The node keeps, in `privacy/releasing.json`, when it last saw each reservation move and
which releases the coordinator has acknowledged: nothing in it grants a right to spend.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kumiai.adapters.coordinator_client import CoordinatorClient
from kumiai.adapters.files import write_json_atomic
from kumiai.domain.budget import JobSpend
from kumiai.domain.clock import parse_iso, to_iso, utc_now
from kumiai.domain.errors import KumiaiError, NotFound
from kumiai.domain.recovery import RECOVERED
from kumiai.domain.releasing import STALE_AFTER, Touch, touched, why_release
from kumiai.node import remote
from kumiai.node.home import NodeHome
from kumiai.node.port import LocalNode
from kumiai.node.spendlog import SpendLog

STATE = "releasing.json"
SUFFIX = ".spend.jsonl"


@dataclass(frozen=True)
class Release:
    """One reservation as this check-in left it."""

    job: str
    dataset: str
    reserved: float
    spent: float
    rounds: int
    released: bool  # released in the node's own log (now or before)
    reported: bool  # the coordinator has taken the release
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _State:
    seen: dict[str, Touch]
    reported: set[str]

    @classmethod
    def load(cls, path: Path) -> "_State":
        """An unreadable file counts as empty: the only cost is a report sent again (which
        the coordinator takes as already done) and stale clocks that start again."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            seen = {
                key: Touch((float(r), float(s), int(n)), parse_iso(str(v["since"])))
                for key, v in doc["seen"].items()
                for r, s, n in [v["mark"]]
            }
            return cls(seen, {str(key) for key in doc["reported"]})
        except (OSError, ValueError, KeyError, TypeError, KumiaiError):
            return cls({}, set())

    def save(self, path: Path) -> None:
        seen = {k: {"mark": list(t.mark), "since": to_iso(t.since)} for k, t in self.seen.items()}
        write_json_atomic(path, {"seen": seen, "reported": sorted(self.reported)})


def _datasets(home: NodeHome) -> list[str]:
    folder = home.root / "privacy"
    return sorted(p.name.removesuffix(SUFFIX) for p in folder.glob(f"*{SUFFIX}"))


def _status(client: CoordinatorClient, job: str) -> tuple[str | None, str]:
    """The coordinator's word on a job (None: it knows none), and a note when unreachable."""
    try:
        return str(client.get(f"/jobs/{job}")["status"]), ""
    except NotFound:
        return None, ""
    except KumiaiError as exc:  # unreachable: only the node's own clock can release now
        return "unreachable", f"; the coordinator did not answer ({exc})"


def check_in(
    root: Path,
    client: CoordinatorClient,
    *,
    now: datetime | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> list[Release]:
    """Release what is over and report it; every open or unreported reservation, as left."""
    node = LocalNode(root)
    member = node.home.member_name
    now = now or utc_now()
    state_file = root / "privacy" / STATE
    state = _State.load(state_file)
    found = []
    try:
        for dataset in _datasets(node.home):
            log = SpendLog(node.home, dataset)
            try:
                jobs = log.view().jobs
            except KumiaiError as exc:  # a damaged log proves nothing: restore it first
                found.append(Release("", dataset, 0.0, 0.0, 0, False, False, str(exc)))
                continue
            for job, spend in sorted(jobs.items()):
                key = f"{job}/{dataset}"
                if spend.reserved == 0 or key in state.reported:
                    continue
                reason = "released before; reporting it"
                if not spend.released:
                    status, note = _status(client, job)
                    mark = (spend.reserved, spend.spent, spend.rounds)
                    state.seen[key] = touched(state.seen.get(key), mark, now)
                    why = why_release(status, state.seen[key], now, stale_after)
                    if why is None:
                        kept = f"kept: the job is {status}{note}"
                        found.append(_release(job, dataset, spend, False, False, kept))
                        continue
                    log.release(job)
                    reason = why + note
                reported, reason = _report(client, node, member, job, dataset, spend, reason)
                if reported:
                    state.reported.add(key)
                    state.seen.pop(key, None)
                found.append(_release(job, dataset, spend, True, reported, reason))
    finally:
        state.save(state_file)
    return found


def _release(
    job: str, dataset: str, spend: JobSpend, released: bool, reported: bool, reason: str
) -> Release:
    return Release(
        job, dataset, spend.reserved, spend.spent, spend.rounds, released, reported, reason
    )


def _report(
    client: CoordinatorClient,
    node: LocalNode,
    member: str,
    job: str,
    dataset: str,
    spend: JobSpend,
    reason: str,
) -> tuple[bool, str]:
    """Tell the coordinator: (taken, reason). Signs a `privacy.recovered` entry only for
    exactly this job, dataset and ε, when the coordinator's mirror was short of it."""
    body = {
        "spent": spend.spent,
        "rounds": spend.rounds,
        "attestation": SpendLog(node.home, dataset).attestation(),
    }
    intent = remote.Intent(RECOVERED, {"job": job, "dataset": dataset, "epsilon": spend.spent})
    path = f"/jobs/{job}/privacy/{dataset}/release"
    try:
        remote.run_act(client, node, member, path, body, intent)
    except NotFound:
        return True, f"{reason}; the coordinator holds no reservation for it"
    except KumiaiError as exc:
        return False, f"{reason}; not yet reported ({exc}), sent again at the next check-in"
    return True, reason


def release_finished(
    root: Path, *, now: datetime | None = None, stale_after: timedelta = STALE_AFTER
) -> list[Release]:
    """One check-in through the coordinator this node joined (pinned URL and CA)."""
    client, _ = remote.client_for(root)
    with client:
        return check_in(root, client, now=now, stale_after=stale_after)


def keep_releasing(
    root: Path,
    every: float,
    stale_after: timedelta,
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    """Check in now and every `every` seconds until `stop`; a failure is said and retried."""
    while True:
        try:
            for r in release_finished(root, stale_after=stale_after):
                if r.released:
                    say(f"released job {r.job} on {r.dataset} (ε {r.spent:.3f} spent): {r.reason}")
        except Exception as exc:  # a background check-in must never stop the node
            say(f"could not check this node's reservations ({exc}); retrying in {every:g} s")
        if stop.wait(every):
            return


def start_releasing(
    root: Path, every: float, stale_after: timedelta, say: Callable[[str], None]
) -> tuple[threading.Thread, threading.Event]:
    """`keep_releasing` in a daemon thread; set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=keep_releasing,
        args=(root, every, stale_after, stop, say),
        name="kumiai-node-release",
        daemon=True,
    )
    thread.start()
    return thread, stop
