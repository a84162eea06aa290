"""Figures that cite their sources: `{"value", "unit", "cites", "id"}`.

`cites` lists the sequence numbers of the ledger entries a value is computed from, so an
auditor can recompute it from an export; `id` names the figure within its document
("themes/medical/projects/heart/budget/allocated"). Money is integer yen.
"""

from collections.abc import Iterable, Sequence
from typing import Any

# A list item is named in figure ids by the first of these keys it holds.
_ITEM_KEYS = ("milestone", "licence", "model", "period", "dataset", "motion", "project", "theme")


def figure(value: int | float, unit: str, cites: Iterable[int]) -> dict[str, Any]:
    return {"value": value, "unit": unit, "cites": sorted(set(cites))}


def total(items: Sequence[tuple[int | float, int]], unit: str) -> dict[str, Any]:
    """A total and every entry it adds up; yen stay int, ε stays float."""
    zero: int | float = 0.0 if unit == "epsilon" else 0
    return figure(sum((v for v, _ in items), zero), unit, (s for _, s in items))


def _is_figure(node: object) -> bool:
    return isinstance(node, dict) and "unit" in node and "value" in node and "cites" in node


def figures(document: object) -> dict[str, dict[str, Any]]:
    """Every figure in a report document, by its id."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: object) -> None:
        if _is_figure(node):
            assert isinstance(node, dict)
            found[node["id"]] = node
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def cited(document: object) -> set[int]:
    """Every seq the document cites, in figures and in records."""
    seqs: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("cites"), list):
                seqs.update(node["cites"])
            for key, value in node.items():
                if key != "cites":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return seqs


def assign_ids(node: object, path: tuple[str, ...], seen: set[str]) -> None:
    if _is_figure(node):
        assert isinstance(node, dict)
        name = "/".join(path)
        if name in seen:  # two figures under one name would make citations ambiguous
            raise AssertionError(f"two figures named {name!r}")
        seen.add(name)
        node["id"] = name
    elif isinstance(node, dict):
        for key, value in node.items():
            assign_ids(value, (*path, str(key)), seen)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            label = str(index)
            if isinstance(item, dict):
                label = next(
                    (str(item[k]) for k in _ITEM_KEYS if isinstance(item.get(k), str)), label
                )
            assign_ids(item, (*path, label), seen)


def merge(parts: list[dict[str, Any]], unit: str) -> dict[str, Any]:
    """One figure adding up others, citing all they cite."""
    return figure(sum(p["value"] for p in parts), unit, (s for p in parts for s in p["cites"]))
