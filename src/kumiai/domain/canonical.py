"""Canonical JSON (RFC 8785, JCS): the only byte form that is ever signed or hashed.

JCS fixes every byte: keys sorted by their UTF-16 code units, numbers in ECMAScript's
shortest round-trip form (1e+21, 1e-7, 0.30000000000000004), strings in UTF-8 with the
minimal escapes. An auditor can therefore rebuild the signed bytes in any language
(verifiers/js does it with Node's standard library), which `json.dumps` alone does not
promise: its float form is Python's repr.
"""

import json
import math
from typing import Any

import rfc8785

from kumiai.domain.errors import NotCanonical, UnsupportedVersion

MAX_SAFE_INTEGER = 2**53 - 1
"""Beyond this an integer is not exact as an IEEE double, which is what a JSON number is."""

# json's C encoder already writes JCS bytes for values without floats whose keys are ASCII
# (ASCII sorts the same by code point and by UTF-16 code unit; the string escapes agree).
# Ledger appends and audits take that path; anything else goes through rfc8785.
_PLAIN = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value; NotCanonical names any part JSON cannot carry."""
    if _plain(obj):
        try:
            return _PLAIN(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate; rfc8785 refuses it and _explain names it
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, RecursionError) as exc:
        raise NotCanonical(_explain(obj, exc)) from None


def _plain(obj: Any) -> bool:
    """True when the value holds no float, only ASCII keys and only exact integers."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or kind is bool or value is None:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                continue
            return False
        if kind is dict:
            for key in value:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        else:
            return False
    return True


def _explain(obj: Any, exc: Exception) -> str:
    """Name the first value that canonical JSON cannot hold, by its path, and the fix."""
    stack: list[tuple[str, Any]] = [("$", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return (
                f"{path} is {value}: canonical JSON (RFC 8785) has no NaN or Infinity; "
                "record a finite number, or leave the field out"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(int(value)) > MAX_SAFE_INTEGER:
                return (
                    f"{path} is {value}, beyond ±(2^53 - 1), which a JSON number cannot hold "
                    "exactly; record it as a string"
                )
        elif isinstance(value, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
                return f"{path} holds a lone surrogate, which is not Unicode text; remove it"
        elif isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    return f"{path} has the key {key!r}; canonical JSON keys must be strings"
                if any(0xD800 <= ord(c) <= 0xDFFF for c in key):
                    return f"{path} has a key with a lone surrogate, which is not Unicode text"
            stack.extend((f"{path}.{k}", v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
        elif value is not None and not isinstance(value, bool):
            return f"{path} is a {type(value).__name__}, which canonical JSON cannot hold"
    return f"the value cannot be written as canonical JSON (RFC 8785): {exc}"


def has_lone_surrogate(value: Any) -> bool:
    """True when a parsed JSON value holds a lone UTF-16 surrogate (escaped as \\udXXX).

    Such a string is not Unicode text: it has no UTF-8 bytes to sign or hash.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_json(text: str | bytes) -> Any:
    """Parse JSON as JCS (and JavaScript) read it: every number an IEEE double, none infinite.

    So Python and any other verifier rebuild the same canonical bytes from the same text.
    ValueError (as json.loads) for NaN, Infinity and numbers out of a double's range.
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    return _DECODER.decode(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def _exact_int(text: str) -> int | float:
    number = int(text)
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return number
    return _finite_float(text)  # as a double, the way every other JSON reader sees it


_DECODER = json.JSONDecoder(
    parse_constant=_no_constant, parse_float=_finite_float, parse_int=_exact_int
)  # one instance: json.loads with hooks would build a decoder per call


def whole_number(value: Any, what: str) -> int:
    """A JSON number that is a whole number >= 0, as an int; ValueError otherwise.

    JSON numbers are doubles, so 3 and 3.0 are one number (and one canonical form, "3").
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number")
    if not (0 <= value <= MAX_SAFE_INTEGER and float(value).is_integer()):
        raise ValueError(f"{what} is not a whole number from 0 to 2^53 - 1")
    return int(value)


def require_version(doc: Any, type_: str, version: int, *, what: str, fix: str) -> None:
    """Refuse a document that is not `type_`, or is another format version of it.

    ValueError for a wrong type (the caller calls it malformed); UnsupportedVersion, naming
    the type, the version found and the version expected, for a known type of another version.
    """
    if not isinstance(doc, dict) or doc.get("type") != type_:
        raise ValueError(f"not a {type_}")
    found = whole_number(doc.get("version"), f"the version of the {type_}")
    if found == version:
        return
    if found < version:
        raise UnsupportedVersion(
            f"{what} is {type_} version {found}, written by an older kumiai; this kumiai "
            f"reads only version {version}, signed as RFC 8785 canonical JSON. {fix}"
        )
    raise UnsupportedVersion(
        f"{what} is {type_} version {found}, written by a newer kumiai; this kumiai reads "
        f"only version {version}. Upgrade kumiai to read it."
    )
