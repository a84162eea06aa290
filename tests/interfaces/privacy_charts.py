"""The privacy page's charts held to its budget table: each chart's caption, accessible
name and last bar state the table's spent, committed and left for its dataset."""

import re

import pytest

from kumiai.services.privacy import BudgetLine


def assert_charts_end_at_the_table(html: str, lines: list[BudgetLine], charted: set[str]) -> None:
    """Exactly the datasets `charted` have a chart, each ending at its table row."""
    assert {b.dataset for b in lines if f"ε of {b.dataset}, entry by entry" in html} == charted
    for line in (b for b in lines if b.dataset in charted):
        row = re.search(rf'<tr data-dataset="{line.dataset}">(.*?)</tr>', html)
        assert row, html
        _, spent, committed, left = re.findall(r'<td class="n">([^<]*)</td>', row.group(1))
        figures = f"ε of {line.dataset}, entry by entry: spent {spent}, committed {committed}"
        if line.lifetime is None:
            caption = f"{figures}; no lifetime budget set"
        else:
            caption = f"{figures}, left {left} of its lifetime budget {line.lifetime:.4f}"
        # Seen and heard: the caption and the chart's accessible name state the final three.
        assert f"<figcaption>{caption}</figcaption>" in html
        assert f'aria-label="{caption}"' in html
        # The last bar's segments are those figures, not only to four places.
        for series, value in (
            ("epsilon", line.spent),
            ("committed", line.committed),
            ("left", line.left),
        ):
            stated = re.findall(
                rf'data-figure="{series}/{line.dataset}/\d+" data-value="([^"]+)"', html
            )
            if value is None:
                assert stated == []  # no lifetime budget: nothing left to chart
            else:
                assert float(stated[-1]) == pytest.approx(value, abs=1e-12)
    if charted:
        assert '<span class="swatch committed" aria-hidden="true"></span>committed' in html
