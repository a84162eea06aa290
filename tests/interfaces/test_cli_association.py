"""Themes, funds, spend and milestones as a user types them."""

import hashlib
import json
from pathlib import Path

from tests.interfaces.test_cli import assert_user_error, kumiai

BOARD = ("aoi-univ", "kita-hospital", "minami-corp")


def _ok(home: Path, *args: str) -> str:
    result = kumiai(home, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _pass(home: Path, motion: str) -> None:
    for seat in BOARD:
        _ok(home, "motion", "vote", motion, "yes", "--by", seat)
    assert "passed" in _ok(home, "motion", "close", motion)


def test_themes_funds_spend_and_milestones_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "c"
    _ok(home, "init")
    for member in (*BOARD, "nishi-lab"):
        _ok(home, "member", "add", member, "--kind", "university")
    _ok(home, "theme", "add", "medical", "--title", "Medical AI", "--by", "aoi-univ")
    _ok(home, "theme", "add", "agents", "--title", "Personal agents", "--by", "kita-hospital")
    _ok(
        home,
        "project",
        "propose",
        "heart",
        "--by",
        "aoi-univ",
        "--purpose",
        "diagnosis",
        "--theme",
        "medical",
    )
    _ok(home, "charter", "propose", "--by", "aoi-univ", "--founders", ",".join(BOARD))
    for member in BOARD:
        _ok(home, "charter", "sign", member)
    assert_user_error(
        kumiai(home, "theme", "add", "industrial", "--title", "Industrial", "--by", "nishi-lab"),
        "'nishi-lab' holds no board seat",
    )
    assert_user_error(
        kumiai(home, "theme", "rank", "medical", "--by", "aoi-univ"), "leaves out agents"
    )
    assert "motion-1" in _ok(home, "theme", "rank", "agents,medical", "--by", "aoi-univ")
    _pass(home, "motion-1")
    ranked = json.loads(_ok(home, "theme", "list", "--json"))
    assert [(t["name"], t["rank"], t["projects"]) for t in ranked] == [
        ("agents", 1, []),
        ("medical", 2, ["heart"]),
    ]
    assert json.loads(_ok(home, "theme", "show", "medical", "--json"))["ranked_by"] == "motion-1"

    _ok(
        home,
        "funds",
        "receive",
        "--source",
        "nedo-grant",
        "--kind",
        "grant",
        "--from",
        "NEDO",
        "--amount",
        "10000000",
    )
    assert_user_error(
        kumiai(
            home,
            "funds",
            "receive",
            "--source",
            "nedo-grant",
            "--kind",
            "grant",
            "--from",
            "NEDO",
            "--amount",
            "-5",
        ),
        "must be a whole number above 0, not '-5'",
    )
    assert_user_error(
        kumiai(
            home,
            "funds",
            "allocate",
            "heart",
            "--amount",
            "10000001",
            "--source",
            "nedo-grant",
            "--by",
            "aoi-univ",
        ),
        "'nedo-grant' has 10000000 yen unallocated, less than the 10000001 yen asked",
    )
    _ok(
        home,
        "motion",
        "propose",
        "allocate-funds",
        "--by",
        "aoi-univ",
        "--set",
        "project=heart",
        "--set",
        "amount=6000000",
        "--set",
        "source=nedo-grant",
        "--set",
        "site_rounds=90",
    )
    _pass(home, "motion-2")
    books = json.loads(_ok(home, "funds", "--json"))
    assert (books["received_yen"], books["allocated_yen"], books["unallocated_yen"]) == (
        10_000_000,
        6_000_000,
        4_000_000,
    )
    assert books["sources"][0]["allocations"][0]["site_rounds"] == 90
    assert "¥4,000,000" in _ok(home, "funds")

    _ok(
        home,
        "spend",
        "record",
        "heart",
        "--category",
        "compute",
        "--amount",
        "400000",
        "--description",
        "GPU hours",
        "--on",
        "2026-11-01",
        "--by",
        "aoi-univ",
    )
    assert_user_error(
        kumiai(
            home,
            "spend",
            "record",
            "heart",
            "--category",
            "data",
            "--amount",
            "1",
            "--description",
            "x",
            "--by",
            "kita-hospital",
        ),
        "only project 'heart''s lead member, aoi-univ, may record its spend",
    )
    budget = json.loads(_ok(home, "spend", "heart", "--json"))
    assert (budget["allocated_yen"], budget["total_spent_yen"], budget["left_yen"]) == (
        6_000_000,
        400_000,
        5_600_000,
    )
    assert budget["spent_yen"]["compute"] == 400_000
    assert budget["compute"] == {"site_rounds": 90, "used": 0, "left": 90}
    assert json.loads(_ok(home, "project", "budget", "heart", "--json")) == budget
    assert "left ¥5,600,000" in _ok(home, "spend", "show", "heart")

    _ok(
        home,
        "milestone",
        "add",
        "heart",
        "first-model",
        "--title",
        "A first model",
        "--due",
        "2026-01-31",
        "--by",
        "aoi-univ",
    )
    assert_user_error(
        kumiai(home, "milestone", "accept", "heart", "first-model", "--by", "aoi-univ"),
        "has no evidence",
    )
    report = tmp_path / "report.txt"
    report.write_text("results")
    _ok(home, "milestone", "evidence", "heart", "first-model", "--document", str(report))
    listing = json.loads(_ok(home, "milestone", "list", "heart", "--json"))
    assert [(m["name"], m["status"], m["late"]) for m in listing] == [
        ("first-model", "open", True)  # due 2026-01-31, not accepted
    ]
    assert listing[0]["evidence"][0]["ref"] == hashlib.sha256(b"results").hexdigest()
    assert "late" in _ok(home, "milestone", "list")
    _ok(home, "milestone", "accept", "heart", "first-model", "--reject", "--by", "aoi-univ")
    _pass(home, "motion-3")
    shown = json.loads(_ok(home, "milestone", "show", "heart", "first-model", "--json"))
    assert (shown["status"], shown["motion"]) == ("rejected", "motion-3")
    # `project show` gathers the same records: theme, money against actual, milestones.
    project = json.loads(_ok(home, "project", "show", "heart", "--json"))
    assert project["budget"] == json.loads(_ok(home, "spend", "heart", "--json"))
    assert project["budget"]["theme"] == "medical"
    assert project["milestones"] == json.loads(_ok(home, "milestone", "list", "heart", "--json"))
    text = _ok(home, "project", "show", "heart")
    assert "theme medical" in text and "left ¥5,600,000" in text
    assert "first-model" in text and "rejected" in text
    assert _ok(home, "ledger", "verify").startswith("verified")


def test_unknown_names_are_one_line_errors(tmp_path: Path) -> None:
    home = tmp_path / "c"
    _ok(home, "init")
    _ok(home, "member", "add", "aoi-univ", "--kind", "university")
    assert_user_error(kumiai(home, "theme", "show", "quantum"), "unknown theme 'quantum'")
    assert_user_error(kumiai(home, "spend", "lung"), "unknown project 'lung'")
    assert_user_error(
        kumiai(home, "milestone", "list", "lung"), "unknown project 'lung'", "kumiai project list"
    )
    assert_user_error(
        kumiai(
            home,
            "funds",
            "receive",
            "--source",
            "s",
            "--kind",
            "loan",
            "--from",
            "x",
            "--amount",
            "1",
        ),
        "not one of: dues, grant, investor",
    )
    assert json.loads(_ok(home, "funds", "list", "--json"))["sources"] == []


def test_train_past_the_compute_quota_is_one_line_naming_it(tmp_path: Path) -> None:
    from tests.services.test_quota import _with_quota

    home = tmp_path / "c"
    _with_quota(home, 100)
    result = kumiai(home, "train", "heart", "--rounds", "34")
    assert_user_error(
        result,
        "project 'heart' is over its compute quota: quota 100 site-rounds, used 0, asked 102",
    )
    assert "privacy" not in result.stdout.lower() and result.stdout == ""
    assert json.loads(_ok(home, "jobs", "--json")) == []
    refusals = json.loads(_ok(home, "ledger", "show", "--type", "job.refused", "--json"))
    assert [r["payload"]["quota"] for r in refusals] == [
        {"site_rounds": 100, "used": 0, "asked": 102, "rounds": 34, "sites": 3}
    ]
