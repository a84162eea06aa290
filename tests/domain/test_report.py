"""The report as a pure function of verified entries: exact figures, exact citations."""

import re
from datetime import date
from typing import Any

import pytest

from kumiai.domain.bookkeeping import day_of
from kumiai.domain.errors import InvalidInput
from kumiai.domain.figures import cited, figures
from kumiai.domain.report import build_report
from kumiai.interfaces.reports.html import render_html
from kumiai.interfaces.reports.markdown import render_markdown
from tests.domain.report_ledger import ACTS, DAY, entries, full_ledger, verified


def value(doc: dict[str, Any], fid: str) -> tuple[Any, list[int]]:
    f = figures(doc)[fid]
    return f["value"], f["cites"]


HEART = "themes/medical/projects/heart"


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return build_report(full_ledger(), "board", DAY)


@pytest.fixture(scope="module")
def investor() -> dict[str, Any]:
    return build_report(full_ledger(), "investor", DAY)


def test_funds_sum_to_the_yen_and_cite_each_entry(board: dict[str, Any]) -> None:
    assert value(board, "funds/received") == (8_500_000, [13, 14, 15])
    assert value(board, "funds/by_kind/grant") == (5_000_000, [14])
    assert value(board, "funds/by_kind/investor") == (2_500_000, [15])
    assert value(board, "funds/allocated") == (3_500_000, [16, 17])
    assert value(board, "funds/unallocated") == (5_000_000, [13, 14, 15, 16, 17])
    assert value(board, "funds/spent") == (1_600_000, [18, 19, 20])
    assert all(isinstance(f["value"], int) for f in figures(board).values() if f["unit"] == "yen")


def test_budget_against_actual_by_category(board: dict[str, Any]) -> None:
    assert value(board, f"{HEART}/budget/allocated") == (3_500_000, [16, 17])
    assert value(board, f"{HEART}/budget/actual") == (1_600_000, [18, 19, 20])
    assert value(board, f"{HEART}/budget/by_category/personnel") == (1_299_999, [18, 20])
    assert value(board, f"{HEART}/budget/by_category/compute") == (300_001, [19])
    assert value(board, f"{HEART}/budget/by_category/equipment") == (0, [])
    assert value(board, f"{HEART}/budget/remaining") == (1_900_000, [16, 17, 18, 19, 20])
    assert value(board, f"{HEART}/compute/quota_site_rounds") == (60, [16])
    assert value(board, f"{HEART}/compute/used_site_rounds") == (5, [25, 26, 34])
    assert value(board, "themes/medical/allocated_yen") == (3_500_000, [16, 17])


def test_milestones_are_late_by_the_report_day() -> None:
    def states(on: date) -> dict[str, str]:
        doc = build_report(full_ledger(), "investor", on)
        [project] = doc["themes"][1]["projects"]
        return {m["milestone"]: m["status"] for m in project["milestones"]}

    # m1 accepted; m2 due 2026-11-20 and rejected; m3 due 2026-12-01.
    assert states(date(2026, 11, 19)) == {"m1": "accepted", "m2": "on-time", "m3": "on-time"}
    assert states(date(2026, 11, 20)) == {"m1": "accepted", "m2": "on-time", "m3": "on-time"}
    assert states(date(2026, 11, 21)) == {"m1": "accepted", "m2": "late", "m3": "on-time"}
    assert states(date(2026, 12, 2)) == {"m1": "accepted", "m2": "late", "m3": "late"}


def test_milestone_counts_cite_their_milestones(board: dict[str, Any]) -> None:
    assert value(board, f"{HEART}/milestone_counts/accepted") == (1, [21, 30, 31])
    assert value(board, f"{HEART}/milestone_counts/late") == (1, [22, 32])
    assert value(board, f"{HEART}/milestone_counts/on-time") == (1, [23])
    [project] = board["themes"][1]["projects"]
    m1, m2, _ = project["milestones"]
    assert (m1["accepted_on"], m1["accepted_by"]) == ("2026-11-01", "m-5")
    assert m1["evidence"] == [{"kind": "model", "ref": "heart-v1", "seq": 30}]
    assert m2["rejected_by"] == ["m-6"]


def test_epsilon_is_the_last_cumulative_spend_raised_by_a_recovery(board: dict[str, Any]) -> None:
    # job-1: kita 0.75 after round 2, raised to 1.0 by the node's log; job-2: 0.125.
    assert value(board, "epsilon/kita-heart/epsilon") == (1.125, [26, 27, 34])
    assert value(board, "epsilon/minami-heart/epsilon") == (0.5, [26])
    assert value(board, f"{HEART}/epsilon/kita-heart/epsilon") == (1.125, [26, 27, 34])


def test_contribution_shares_go_to_members_through_their_datasets(board: dict[str, Any]) -> None:
    shares = f"{HEART}/models/heart-v1/contributions/shares"
    assert value(board, f"{shares}/kita") == (0.25, [4, 29])
    assert value(board, f"{shares}/minami") == (-0.0625, [5, 29])
    assert value(board, f"{HEART}/models/heart-v1/metrics/auc") == (0.875, [28])


def test_licences_revenue_and_royalties(board: dict[str, Any], investor: dict[str, Any]) -> None:
    lic = f"{HEART}/licences/lic-1"
    assert value(board, f"{lic}/revenue_yen") == (10_002_001, [37, 39])
    assert value(board, f"{lic}/royalty_yen") == (500_000, [38])
    assert value(board, f"{lic}/association_yen") == (100_000, [38])
    # a payout cites its distribution and the contribution shares it was split by (29)
    assert value(board, f"{lic}/paid_to_members_yen") == (400_000, [29, 38])
    assert value(board, f"{lic}/periods/2026-11/payouts/kita") == (400_000, [29, 38])
    [_, december] = board["themes"][1]["projects"][0]["licences"][0]["periods"]
    assert december["distributed"] is False and december["revenue_yen"]["value"] == 2_000
    # The investor sees the totals, not what each member was paid.
    assert value(investor, f"{lic}/paid_to_members_yen") == (400_000, [29, 38])
    assert not any("/payouts/" in fid for fid in figures(investor))


def test_each_audience_sees_what_docs_say(board: dict[str, Any], investor: dict[str, Any]) -> None:
    assert "board" in board and "board" not in investor
    assert "sources" in board["funds"] and "sources" not in investor["funds"]
    [project] = investor["themes"][1]["projects"]
    assert "items" not in project["budget"]
    assert "for_member" not in investor

    kita = build_report(full_ledger(), "member", DAY, member="kita")
    mine = kita["for_member"]
    assert value(kita, "for_member/datasets/kita-heart/epsilon") == (1.125, [26, 27, 34])
    assert value(kita, "for_member/contributions/heart-v1/share") == (0.25, [4, 29])
    payout = "for_member/payouts/lic-1/periods/2026-11/payout_yen"
    assert value(kita, payout) == (400_000, [29, 38])
    assert value(kita, "for_member/payouts_total_yen") == (400_000, [29, 38])
    assert [d["dataset"] for d in mine["datasets"]] == ["kita-heart"]  # not minami's
    assert not any("/payouts/" in fid for fid in figures(kita) if not fid.startswith("for_"))


def test_themes_follow_the_board_ranking_and_unthemed_comes_last(board: dict[str, Any]) -> None:
    themes = [
        (t["theme"], t["rank"], [p["project"] for p in t["projects"]]) for t in board["themes"]
    ]
    assert themes == [
        ("industrial", 1, []),
        ("medical", 2, ["heart"]),
        ("unthemed", None, ["loose"]),
    ]
    assert board["themes"][1]["cites"] == [6, 8]


def test_the_appendix_lists_exactly_the_cited_entries(board: dict[str, Any]) -> None:
    seqs = [a["seq"] for a in board["appendix"]]
    assert seqs == sorted(cited({k: v for k, v in board.items() if k != "appendix"}))
    assert 0 not in seqs and 13 in seqs and 38 in seqs
    by_seq = {a["seq"]: a for a in board["appendix"]}
    assert by_seq[38] == {
        "seq": 38,
        "kind": "royalties.distributed",
        "actor": "coordinator",
        "time": "2026-11-08T09:00:00Z",
        "leaf_hash": f"{38:064x}",
    }
    assert board["ledger"] == {
        "verified": True,
        "root": "ab" * 32,
        "size": len(ACTS),
        "head_time": "2026-11-09T09:00:00Z",
        "witnesses": ["lab"],
    }


def test_every_figure_has_one_id() -> None:
    doc = build_report(full_ledger(), "board", DAY)
    ids = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "unit" in node and "cites" in node:
                ids.append(node["id"])
            else:
                for v in node.values():
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert len(ids) == len(set(ids)) == len(figures(doc)) == 56


def test_a_yen_that_is_not_whole_is_refused_with_its_entry() -> None:
    bad = entries(
        ("lab", "funds.received", {"source": "s", "kind": "grant", "amount_yen": 1.5}),
    )
    with pytest.raises(InvalidInput, match=r"ledger entry 0 \(funds.received\) has amount_yen 1.5"):
        build_report(verified(bad), "investor", DAY)
    boolean = entries(("lab", "funds.received", {"kind": "dues", "amount_yen": True}))
    with pytest.raises(InvalidInput, match="not a whole number of yen"):
        build_report(verified(boolean), "investor", DAY)


def test_unknown_categories_and_licences_are_refused() -> None:
    spend = entries(
        ("lab", "spend.recorded", {"project": "p", "category": "yachts", "amount_yen": 1}),
    )
    with pytest.raises(InvalidInput, match="category 'yachts', not one of personnel"):
        build_report(verified(spend), "board", DAY)
    revenue = entries(("x", "revenue.reported", {"licence": "l", "period": "q", "revenue_yen": 1}))
    with pytest.raises(InvalidInput, match=r"names licence 'l', which no licence\.granted"):
        build_report(verified(revenue), "board", DAY)


def test_audiences_and_days_are_checked() -> None:
    ledger = full_ledger()
    with pytest.raises(InvalidInput, match=r"--for 'bank' is not an audience; choose one of"):
        build_report(ledger, "bank", DAY)
    with pytest.raises(InvalidInput, match="--for member needs --member NAME"):
        build_report(ledger, "member", DAY)
    with pytest.raises(InvalidInput, match="--member is only for --for member"):
        build_report(ledger, "investor", DAY, member="kita")
    with pytest.raises(InvalidInput, match="'ghost' never joined"):
        build_report(ledger, "member", DAY, member="ghost")
    assert day_of("2026-02-28") == date(2026, 2, 28)
    for text in ("2026-02-30", "2026-2-1", "tomorrow", "2026-02-28T00:00:00Z"):
        with pytest.raises(InvalidInput, match="is not a day of the form YYYY-MM-DD"):
            day_of(text)


def test_user_strings_are_escaped_in_html_and_markdown(board: dict[str, Any]) -> None:
    html = render_html(board)
    assert "<script" not in html.lower() and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold" in html
    markdown = render_markdown(board)
    assert not re.search(r"(?<!\\)<(?!a id=\"entry-|/a>)", markdown)  # every other < escaped
    assert "\\<script\\>" in markdown
    assert "\\| \\[link\\](http://x.test)" in markdown  # no table cell, no link


def test_the_html_fetches_nothing(board: dict[str, Any]) -> None:
    html = render_html(board)
    assert not re.search(r"""(?:src|href|action|srcset)\s*=\s*["']?\s*(?:https?:|//)""", html)
    links = re.findall(r"""\b(?:src|href)\s*=\s*(\S+?)[\s>]""", html)
    assert links and all(re.fullmatch(r'"#entry-\d+"', link) for link in links)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html
    # every figure on the page, with its value and citations
    for fid in figures(board):
        assert f'data-figure="{fid}"' in html, fid
    for seq in cited(board):
        assert f'id="entry-{seq}"' in html and f'href="#entry-{seq}"' in html


def test_a_milestone_accepted_after_its_due_day_says_so() -> None:
    acts = [
        ("lab", "project.proposed", {"project": "p", "title": "P", "purpose": "x"}),
        (
            "lab",
            "milestone.set",
            {"project": "p", "milestone": "m", "title": "M", "due": "2026-10-01"},
        ),
        ("coordinator", "milestone.accepted", {"project": "p", "milestone": "m", "motion": "m-1"}),
    ]
    doc = build_report(verified(entries(*acts)), "investor", DAY)  # accepted on 2026-10-03
    [milestone] = doc["themes"][0]["projects"][0]["milestones"]
    assert (milestone["status"], milestone["accepted_late"]) == ("accepted", True)
    assert milestone["accepted_on"] == "2026-10-03"


def test_a_payout_cites_only_a_real_contributions_entry() -> None:
    acts = [*ACTS]
    seq = 38
    payload = dict(acts[seq][2], contributions_seq=37)  # a revenue report, not shares
    acts[seq] = (acts[seq][0], acts[seq][1], payload)
    doc = build_report(verified(entries(*acts)), "board", DAY)
    lic = f"{HEART}/licences/lic-1"
    assert value(doc, f"{lic}/periods/2026-11/payouts/kita") == (400_000, [38])
    [november, _] = doc["themes"][1]["projects"][0]["licences"][0]["periods"]
    assert november["contributions_seq"] is None


def test_every_spend_kind_counts_and_the_chart_ends_at_the_reports_figure() -> None:
    """A contribution job's charge (`privacy.charged`) and a DP analysis (`analysis.released`)
    spend ε as much as a training round: the report counts them, and the privacy chart's
    last point per dataset is the report's figure (they once disagreed: the report left
    the charge out, the chart the analysis)."""
    from kumiai.domain.epsilon_history import epsilon_history

    extra = [
        ("kita", "privacy.charged", {"job": "c-1", "dataset": "kita-heart", "epsilon": 0.25}),
        ("coordinator", "analysis.released",
         {"job": "a-1", "spent": {"kita-heart": 0.5, "minami-heart": 0.125}}),
    ]  # fmt: skip
    ledger = verified(entries(*ACTS, *extra))
    doc = build_report(ledger, "board", DAY)
    n = len(ACTS)
    assert value(doc, "epsilon/kita-heart/epsilon") == (1.875, [26, 27, 34, n, n + 1])
    assert value(doc, "epsilon/minami-heart/epsilon") == (0.625, [26, n + 1])
    history = epsilon_history((e.seq, "", e.kind, e.payload) for e in ledger.entries)
    for dataset in ("kita-heart", "minami-heart"):
        assert history[dataset][-1].total == value(doc, f"epsilon/{dataset}/epsilon")[0]
