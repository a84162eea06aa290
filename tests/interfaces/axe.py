"""axe-core (vendored under tests/assets/axe-core) run in a page Playwright has open.

The script is evaluated through the DevTools protocol, so the pages' strict
Content-Security-Policy stays as served (it would refuse an injected <script>). A page
passes when axe finds no violation of impact "serious" or "critical".
"""

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parents[1] / "assets" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")
RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary),
    }));
}"""


@cache
def axe_source() -> str:
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256, f"{AXE} is not the vendored 4.14.1"
    return data.decode("utf-8")


def violations(page: Any, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe's violations of these impacts (serious and critical) on the page as it is now."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(axe_source())
    found: list[dict[str, Any]] = page.evaluate(RUN)
    return [v for v in found if v["impact"] in impacts]


def describe(found: list[dict[str, Any]]) -> str:
    """Each violated rule with its help text and the nodes that break it."""
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    {node}" for node in v["nodes"])
    return "\n".join(lines)


def assert_accessible(page: Any, where: str) -> None:
    found = violations(page)
    assert not found, f"axe on {where}:\n{describe(found)}"
