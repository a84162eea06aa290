"""`kumiai spinout / licence / revenue / royalties` as a user runs them: one line per
mistake and no traceback, `--json` documents, and `royalties verify` on an export alone."""

import json
import subprocess
from pathlib import Path

import pytest

from kumiai.services.consortium import open_consortium
from tests.interfaces.test_interrupted_job import kumiai
from tests.services.licensing import MODEL, association, pass_motion
from tests.verifiers.test_js_verifier import _node


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-royalties") / "c"
    association(home, association_share="1/4")
    return home


def ok(home: Path, *args: str) -> str:
    result = kumiai(home, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(home: Path, message: str, *args: str) -> None:
    result = kumiai(home, *args)
    assert result.returncode != 0
    said = " ".join(result.stderr.split())  # Rich wraps the one message at the width
    assert said.startswith("error:") and message in said, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_spinout_licence_revenue_statement_and_verify(home: Path, tmp_path: Path) -> None:
    shown = json.loads(ok(home, "charter", "show", "--json"))
    assert shown["document"]["royalties"] == {"association_share": "1/4"}
    created = ok(
        home, "spinout", "create", "kokoro-ai", "--founders", "lab,cleveland-clinic",
        "--project", "heart", "--by", "kokoro-corp",
    )  # fmt: skip
    assert "create-spinout" in created
    consortium = open_consortium(home)
    pass_motion(consortium, "motion-1")
    [spinout] = json.loads(ok(home, "spinout", "list", "--json"))
    assert spinout["name"] == "kokoro-ai" and spinout["founders"] == ["cleveland-clinic", "lab"]
    assert json.loads(ok(home, "spinout", "show", "kokoro-ai", "--json")) == spinout

    proposed = ok(
        home, "licence", "propose", MODEL, "--licensee", "kokoro-ai",
        "--field", "cardiology triage", "--territory", "JP",
        "--starts", "2027-01-01", "--ends", "2027-12-31", "--royalty-bp", "500",
        "--restriction", "no clinical decision without regulatory approval",
        "--restriction", "no insurance pricing", "--by", "lab",
    )  # fmt: skip
    assert "grant-licence" in proposed
    pass_motion(consortium, "motion-2")
    [licence] = json.loads(ok(home, "licence", "list", "--json"))
    assert licence["licence"] == "licence-1" and licence["terms"]["restrictions"] == [
        "no clinical decision without regulatory approval",
        "no insurance pricing",
    ]

    line = json.loads(
        ok(
            home,
            "revenue",
            "report",
            "licence-1",
            "--period",
            "2027-Q1",
            "--amount",
            "1000000",
            "--by",
            "kokoro-ai",
            "--json",
        )
    )
    # 5 % of ¥1,000,000 = ¥50,000; the association's 1/4 = ¥12,500; ¥37,500 by 5 : 3
    # = 23,437.5 and 14,062.5: one yen left, equal remainders, the first name takes it.
    assert (line["royalty_yen"], line["association_yen"]) == (50_000, 12_500)
    assert line["payouts"] == {
        "cleveland-clinic": 23_438,
        "hungarian-cardiology": 14_062,
        "va-long-beach": 0,
    }
    shown = json.loads(ok(home, "licence", "show", "licence-1", "--json"))
    assert shown["revenue"][0]["payouts"] == line["payouts"]
    assert "¥23,438" in ok(home, "royalties", "statement")

    statement = json.loads(
        ok(home, "royalties", "statement", "--member", "hungarian-cardiology", "--json")
    )
    [mine] = statement["statements"]
    assert mine["total_yen"] == 14_062 and mine["lines"][0]["period"] == "2027-Q1"
    assert statement["royalty_yen"] == 50_000 and statement["association_yen"] == 12_500

    export = tmp_path / "ledger.jsonl"
    ok(home, "ledger", "export", str(export), "--keys", str(tmp_path / "keys.json"))
    elsewhere = tmp_path / "no-home"  # offline: no consortium home at all
    keys = ("--keys", str(tmp_path / "keys.json"))  # pinned, as an auditor received them
    verdict = json.loads(ok(elsewhere, "royalties", "verify", str(export), *keys, "--json"))
    assert verdict["ok"] and verdict["distributions"] == 1 and verdict["mismatches"] == []
    assert not elsewhere.exists()
    assert "match to the yen" in ok(elsewhere, "royalties", "verify", str(export))
    # The JavaScript verifier knows the new kinds and the charter's association share.
    script = Path(__file__).resolve().parents[2] / "verifiers" / "js" / "verify.mjs"
    js = subprocess.run(
        [_node(), str(script), str(export)], capture_output=True, text=True, check=False
    )
    assert js.returncode == 0, js.stdout + js.stderr

    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text(export.read_text().replace("23438", "23439"))
    result = kumiai(elsewhere, "royalties", "verify", str(tampered), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False


def test_mistakes_print_one_line(home: Path) -> None:
    refused(
        home, "outside 1..10000", "licence", "propose", MODEL, "--licensee", "kokoro-corp",
        "--field", "f", "--territory", "JP", "--starts", "2027-01-01", "--ends", "2027-12-31",
        "--royalty-bp", "0", "--by", "lab",
    )  # fmt: skip
    refused(
        home, "a theme or a project", "spinout", "create", "x-labs", "--founders", "lab",
        "--by", "lab",
    )  # fmt: skip
    refused(home, "unknown licence 'licence-9'", "revenue", "report", "licence-9",
            "--period", "2027-Q1", "--amount", "5", "--by", "lab")  # fmt: skip
    refused(home, "unknown spin-out 'nobody'", "spinout", "show", "nobody")
    refused(home, "does not exist", "royalties", "verify", str(home / "missing.jsonl"))
