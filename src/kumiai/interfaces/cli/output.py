"""`--json` output: one document on stdout, stable keys, UTC ISO-8601 times, plain numbers.

Scripts and notebooks parse it, so nothing else may reach stdout: no tables, no colour.
"""

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from pathlib import Path

import typer

from kumiai.domain.clock import to_iso

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document only.")


def plain(value: object) -> object:
    """A value as JSON types: dataclasses become objects, times `YYYY-MM-DDTHH:MM:SSZ`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def print_json(document: object) -> None:
    print(json.dumps(plain(document), sort_keys=True, ensure_ascii=False, allow_nan=False))
