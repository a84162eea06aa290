"""Transparency ledger: durable signed appends, proofs and full verification at scale.

Anchors: Crosby & Wallach (USENIX Security 2009) 1,750 events/s on one core with
signatures; Trillian about 1,190 entries/s. Targets: >= 5,000 durable signed appends/s,
proofs under 1 ms at 10^6 entries, full verification >= 10,000 entries/s on 2 cores.
"""

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kumiai.domain import merkle
from kumiai.services import transparency
from kumiai.services.consortium import init_consortium
from kumiai.services.ledger import Act

BATCH = 1000  # entries per commit: each commit is durable (SQLite WAL, synchronous=FULL)
PROOFS = 2000


def _timed_ms(function: Any, samples: list[tuple[int, int]]) -> float:
    """Median milliseconds of one call, over the sampled arguments."""
    durations = []
    for a, b in samples:
        started = time.perf_counter()
        function(a, b)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000


def measure(size: int, log: Any) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="kumiai-ledger-bench-") as tmp:
        consortium = init_consortium(Path(tmp) / "consortium")
        ledger = consortium.ledger
        started = time.perf_counter()
        appended = ledger.tree().size
        while appended < size:
            count = min(BATCH, size - appended)
            acts = [
                Act(
                    "coordinator",
                    "round.completed",
                    {"job": "bench", "round": appended + i, "participants": ["a", "b", "c"]},
                )
                for i in range(count)
            ]
            with consortium.sessions.begin() as session:  # one durable commit per batch
                ledger.append_many(session, acts)
            appended += count
            if appended % 100_000 == 0:
                log(f"{size}: {appended} appended ({time.perf_counter() - started:.0f} s)")
        appends_per_s = (size - 1) / (time.perf_counter() - started)

        tree = ledger.tree()
        rng = random.Random(0)
        inclusion = _timed_ms(
            tree.inclusion_proof, [(rng.randrange(size), size) for _ in range(PROOFS)]
        )
        consistency = _timed_ms(
            tree.consistency_proof, [(rng.randrange(1, size), size) for _ in range(PROOFS)]
        )
        head_size, head_root = size, tree.root()
        index = rng.randrange(size)
        proof = tree.inclusion_proof(index, head_size)
        assert merkle.verify_inclusion(tree.leaf(index), index, head_size, proof, head_root)

        export = Path(tmp) / "ledger.jsonl"
        transparency.export_ledger(consortium, export)
        started = time.perf_counter()
        report = transparency.verify_export(export)
        verify_seconds = time.perf_counter() - started
        if not report.ok:
            raise RuntimeError(
                f"the benchmark's own ledger failed verification: {report.findings[:3]}"
            )
        log(
            f"{size}: {appends_per_s:,.0f} appends/s, inclusion {inclusion:.3f} ms, "
            f"consistency {consistency:.3f} ms, verify {size / verify_seconds:,.0f} entries/s "
            f"({report.heads} heads)"
        )
        return {
            "appends_per_s": appends_per_s,
            "inclusion_proof_ms": inclusion,
            "consistency_proof_ms": consistency,
            "verify_entries_per_s": report.entries / verify_seconds,
            "verify_seconds": verify_seconds,
            "tree_heads": report.heads,
        }


def run(*, sizes: tuple[int, ...] = (100_000, 1_000_000), log: Any, **_: Any) -> dict[str, Any]:
    return {str(size): measure(size, log) for size in sizes}
