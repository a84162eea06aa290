"""Model parameters as bytes for the database: numpy's own .npz, no pickle."""

import io

import numpy as np


def arrays_to_bytes(arrays: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def arrays_from_bytes(blob: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(blob)) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]
