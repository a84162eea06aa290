"""How figures read: yen with separators, ε and shares to four places."""

from typing import Any

UNIT_NAMES = {
    "yen": "yen",
    "epsilon": "ε",
    "share": "share",
    "metric": "score",
    "count": "count",
    "site-rounds": "site-rounds",
}


def value_text(fig: dict[str, Any]) -> str:
    """The figure's value as shown; tests parse it back (commas and ¥ removed)."""
    value, unit = fig["value"], fig["unit"]
    if unit == "yen":
        return f"¥{value:,}" if value >= 0 else f"-¥{-value:,}"
    if unit in ("epsilon", "share"):
        return f"{value:.4f}"
    if unit == "metric":
        return f"{value:.3f}"
    return f"{value:,}"


def parse_value_text(text: str, unit: str) -> float:
    """The inverse of value_text, to the precision shown (for checking a rendered page)."""
    cleaned = text.replace("¥", "").replace(",", "").strip()
    return float(cleaned)


PRECISION = {
    "yen": 0.0,
    "count": 0.0,
    "site-rounds": 0.0,
    "epsilon": 5e-5,
    "share": 5e-5,
    "metric": 5e-4,
}
