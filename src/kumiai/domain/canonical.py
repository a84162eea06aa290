"""Canonical JSON: the only byte form that is ever signed or hashed.

Sorted keys, UTF-8, no spaces, no NaN, so two parties always derive the same bytes.
"""

import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    """Encode a JSON-able value canonically."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
