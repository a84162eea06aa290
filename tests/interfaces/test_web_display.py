"""Records as text (`interfaces.web.display`), and the report's licence table by audience."""

from kumiai.interfaces.reports.html import _licences
from kumiai.interfaces.web.display import delta, metric, metric_name, plain


def test_python_values_read_as_words() -> None:
    assert plain(None) == "—" and plain("") == "—" and plain({}) == "—" and plain([]) == "—"
    assert plain(True) == "yes" and plain(False) == "no"
    assert plain(["a", "b"]) == "a, b"
    assert plain(0) == "0" and plain(1.0) == "1.0"


def test_money_is_yen_and_a_rate_in_basis_points_says_so() -> None:
    assert plain({"amount": 20_000_000}) == (
        '<ul class="record"><li><span class="key">amount</span>: ¥20,000,000</li></ul>'
    )
    assert plain(-5, "refund_yen") == "-¥5" and plain(500, "royalty_rate_bp") == "500 bp"
    assert plain(True, "amount") == "yes"  # a boolean is never money
    assert plain("20000000", "amount") == "20000000"  # text stays text


def test_nested_records_are_escaped_lists_in_key_order() -> None:
    html = plain({"b": {"<i>": "<script>"}, "a": None})
    assert html == (
        '<ul class="record"><li><span class="key">a</span>: —</li>'
        '<li><span class="key">b</span>: <ul class="record"><li><span class="key">&lt;i&gt;'
        "</span>: &lt;script&gt;</li></ul></li></ul>"
    )


def test_a_count_is_whole_and_a_score_has_three_places() -> None:
    assert metric("examples", 200.0) == "200" and metric("examples", 1234) == "1,234"
    assert metric("auc", 0.87149) == "0.871" and metric("loss", 1) == "1.000"
    assert metric("auc", None) == "—" and metric("auc", True) == "—"
    assert metric_name("auc") == "AUC" and metric_name("f1") == "f1"


def _licence(periods: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    def f(name: str, value: int) -> dict:  # type: ignore[type-arg]
        return {"id": name, "value": value, "unit": "yen", "cites": [1]}

    terms = {"field_of_use": "x", "territory": "JP", "starts": "a", "ends": "b"}
    return [
        {
            "licence": "licence-1",
            "cites": [1],
            "model": "m",
            "licensee": "k",
            "motion": "motion-1",
            "terms": {**terms, "royalty_rate_bp": 500, "restrictions": []},
            "revenue_yen": f("r", 100),
            "royalty_yen": f("y", 5),
            "association_yen": f("a", 1),
            "paid_to_members_yen": f("p", 4),
            "periods": periods,
        }
    ]


def test_the_payouts_column_is_there_only_when_the_audience_has_payouts() -> None:
    period = {
        "period": "2027-Q1",
        "revenue_yen": {"id": "r", "value": 100, "unit": "yen", "cites": [1]},
        "distributed": True,
        "rule": "r1",
    }
    investor = _licences(_licence([period]), "Licences")
    assert "<th>payouts</th>" not in investor and "<th></th>" not in investor
    payout = {"id": "cc", "value": 4, "unit": "yen", "cites": [1]}
    board = _licences(_licence([{**period, "payouts": {"cc": payout}}]), "Licences")
    assert "<th>payouts</th>" in board and "cc <span" in board


def test_delta_has_three_significant_figures() -> None:
    assert delta(0.0004385964912280702) == "0.000439" and delta(1e-5) == "1e-05"
    assert delta(None) == "—" and delta(0) == "0"
