"""Checking many Ed25519 signatures on every core.

One verification costs ~100-170 µs with `cryptography`, so a single core cannot check
10,000 ledger entries a second; chunks go to a process pool instead. Small batches stay
in-process, where starting workers would cost more than it saves. The process pool (and
multiprocessing) loads only when a batch is large enough to use it.
"""

import os

from kumiai.domain.audit import SignatureCheck, verify_sequentially

PARALLEL_FROM = 4000


def verify_in_parallel(checks: list[SignatureCheck]) -> list[bool]:
    workers = os.cpu_count() or 1
    if len(checks) < PARALLEL_FROM or workers < 2:
        return verify_sequentially(checks)
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(checks) // (workers * 4))
    chunks = [checks[i : i + size] for i in range(0, len(checks), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [ok for chunk in pool.map(verify_sequentially, chunks) for ok in chunk]
