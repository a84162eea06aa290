"""Small durable-file helpers: a crash never leaves a half-written file behind."""

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    write_chunks_atomic(path, [data], mode)


def write_chunks_atomic(path: Path, chunks: Iterable[bytes], mode: int = 0o644) -> None:
    """`write_atomic` for data that arrives in pieces (a download): `path` appears only once
    every chunk is written; should `chunks` raise (a truncated or tampered stream), the
    temporary file is removed and nothing is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any, mode: int = 0o644) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), mode)
