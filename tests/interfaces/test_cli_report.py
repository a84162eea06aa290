"""`kumiai report` as a user types it: each format, offline from an export, and mistakes."""

import json
from pathlib import Path

import pytest

from tests.interfaces.test_cli import assert_user_error, kumiai

TITLE = "Heart <script>alert(1)</script>"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-report") / "c"
    for args in (
        ["init"],
        ["member", "add", "lab", "--kind", "university"],
        ["member", "add", "kita", "--kind", "hospital"],
        ["project", "propose", "heart", "--by", "lab", "--title", TITLE, "--purpose", "triage"],
        ["project", "approve", "heart", "--by", "kita"],
    ):
        result = kumiai(home, *args)
        assert result.returncode == 0, result.stderr
    return home


def test_json_is_the_report_document(home: Path) -> None:
    result = kumiai(home, "report", "--for", "investor", "--json", "--date", "2026-11-30")
    assert result.returncode == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    verdict = json.loads(kumiai(home, "ledger", "verify", "--json").stdout)
    assert doc["ledger"]["root"] == verdict["root"]
    assert doc["ledger"]["size"] == verdict["counts"]["entries"]
    assert (doc["audience"], doc["date"]) == ("investor", "2026-11-30")
    [theme] = doc["themes"]
    [project] = theme["projects"]
    assert (theme["theme"], project["title"], project["status"]) == ("unthemed", TITLE, "active")
    kinds = {a["seq"]: a["kind"] for a in doc["appendix"]}
    assert [kinds[s] for s in project["cites"]] == ["project.proposed", "project.approved"]
    same = kumiai(home, "report", "--for", "investor", "--format", "json", "--date", "2026-11-30")
    assert json.loads(same.stdout) == doc


def test_each_format_to_a_file_or_stdout(home: Path, tmp_path: Path) -> None:
    markdown = kumiai(home, "report", "--for", "board")
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("# kumiai report for board\n")
    assert "Heart \\<script\\>" in markdown.stdout

    page = tmp_path / "report.html"
    result = kumiai(home, "report", "--for", "member", "--member", "kita", "--output", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"Wrote the member report (html) to {page}" in " ".join(result.stderr.split())
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "Heart &lt;script&gt;alert(1)&lt;/script&gt;" in html

    data = tmp_path / "report.json"
    assert kumiai(home, "report", "--for", "board", "--output", str(data)).returncode == 0
    assert json.loads(data.read_text())["audience"] == "board"


def test_offline_from_an_export_alone(home: Path, tmp_path: Path) -> None:
    export, keys = tmp_path / "ledger.jsonl", tmp_path / "keys.json"
    assert kumiai(home, "ledger", "export", str(export), "--keys", str(keys)).returncode == 0
    nowhere = tmp_path / "no-home"  # the investor has no consortium home
    args = ["report", "--for", "investor", "--json", "--date", "2026-11-30"]
    offline = kumiai(nowhere, *args, "--export", str(export), "--keys", str(keys))
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout) == json.loads(kumiai(home, *args).stdout)
    assert not nowhere.exists()


def test_mistakes_are_one_line(home: Path, tmp_path: Path) -> None:
    cases = [
        (["--for", "bank"], "--for 'bank' is not an audience; choose one of investor"),
        (["--for", "investor", "--format", "pdf"], "--format 'pdf' is not a format"),
        (["--for", "investor", "--format", "md", "--json"], "--json and --format md disagree"),
        (["--for", "investor", "--date", "30/11/2026"], "is not a day of the form YYYY-MM-DD"),
        (["--for", "member"], "--for member needs --member NAME"),
        (["--for", "member", "--member", "ghost"], "'ghost' never joined"),
        (["--for", "board", "--member", "kita"], "--member is only for --for member"),
        (["--for", "board", "--export", str(tmp_path / "x.jsonl")], "does not exist"),
    ]
    for args, message in cases:
        assert_user_error(kumiai(home, "report", *args), message)
