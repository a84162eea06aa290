"""The `kumiai` command as a user runs it: clear one-line errors, never a traceback."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kumiai.services.demo import export_hospital_files


def kumiai(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "KUMIAI_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "kumiai", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:")
    text = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in text, text


def test_commands_before_init_say_how_to_start(tmp_path: Path) -> None:
    assert_user_error(
        kumiai(tmp_path / "nowhere", "member", "list"), "no consortium at", "kumiai init"
    )


def test_governance_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "c"
    files = export_hospital_files(tmp_path / "exports")
    assert kumiai(home, "init").returncode == 0
    for name, kind in (("lab", "university"), ("cleveland-clinic", "hospital")):
        result = kumiai(home, "member", "add", name, "--kind", kind)
        assert result.returncode == 0, result.stderr
    result = kumiai(
        home,
        "dataset",
        "register",
        str(files["cleveland-clinic"]),
        "--member",
        "cleveland-clinic",
        "--name",
        "cleveland-heart",
        "--target",
        "num>0",
        "--missing",
        "chol=0",
        "--ignore",
        "id",
    )
    assert result.returncode == 0, result.stderr
    assert "304 rows" in result.stdout
    assert (
        kumiai(
            home,
            "project",
            "propose",
            "heart",
            "--by",
            "lab",
            "--purpose",
            "diagnosis support",
            "--members",
            "cleveland-clinic",
        ).returncode
        == 0
    )
    assert kumiai(home, "project", "approve", "heart", "--by", "cleveland-clinic").returncode == 0
    result = kumiai(
        home,
        "request",
        "heart",
        "--dataset",
        "cleveland-heart",
        "--by",
        "lab",
        "--rounds",
        "10",
        "--expires",
        "2099-01-01",
    )
    assert result.returncode == 0, result.stderr
    request_id = re.search(r"req-[0-9a-f]{8}", result.stdout)
    assert request_id is not None
    result = kumiai(home, "agreement", "sign", request_id.group())
    assert result.returncode == 0 and "signed by cleveland-clinic" in result.stdout
    listing = kumiai(home, "requests", "heart")
    assert "signed" in listing.stdout and request_id.group() in listing.stdout

    # user mistakes: one line, non-zero, no traceback
    assert_user_error(
        kumiai(home, "project", "propose", "p2", "--by", "ghost", "--purpose", "x"),
        "unknown member 'ghost'",
    )
    assert_user_error(kumiai(home, "train", "no-such-project"), "unknown project 'no-such-project'")
    assert_user_error(
        kumiai(home, "request", "heart", "--dataset", "nope", "--by", "lab"),
        "unknown dataset 'nope'",
    )
    assert_user_error(kumiai(home, "agreement", "sign", request_id.group()), "already signed")
    assert_user_error(kumiai(home, "member", "add", "x", "--kind", "bank"), "use one of")
    assert_user_error(
        kumiai(home, "train", "heart", "--strategy", "magic"), "strategy 'magic' is not known"
    )
    assert_user_error(
        kumiai(home, "train", "heart", "--model", "forest"),
        "model family 'forest' is not known; use one of: logistic, mlp",
    )
    assert_user_error(
        kumiai(
            home,
            "train",
            "heart",
            "--dp-level",
            "client",
            "--epsilon",
            "1",
            "--strategy",
            "fedadam",
        ),
        "client-level DP works with strategy fedavg or fedprox",
    )
    assert_user_error(
        kumiai(home, "train", "heart", "--dp-level", "devices", "--epsilon", "1"),
        "dp level must be one of record, client",
    )


def test_an_unparseable_cell_is_named_by_file_row_and_column(tmp_path: Path) -> None:
    home = tmp_path / "c"
    kumiai(home, "init")
    kumiai(home, "member", "add", "site", "--kind", "startup")
    bad = tmp_path / "bad.csv"
    bad.write_text("age,num\n63,0\n64,1\nabc,0\n")
    result = kumiai(
        home,
        "dataset",
        "register",
        str(bad),
        "--member",
        "site",
        "--name",
        "d",
        "--target",
        "num",
        "--types",
        "age=numeric",
    )
    assert_user_error(result, str(bad), "row 3 (line 4)", "column 'age'", "'abc'")


@pytest.mark.parametrize("args", [["bench", "nope"], ["model", "nope"], ["job", "nope"]])
def test_unknown_things_are_named(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "c"
    kumiai(home, "init")
    assert_user_error(kumiai(home, *args), "nope")


def test_the_ledger_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "c"
    kumiai(home, "init")
    kumiai(home, "member", "add", "lab", "--kind", "university")
    kumiai(home, "member", "add", "st-mary", "--kind", "hospital")
    assert kumiai(home, "ledger", "witness").returncode == 0
    shown = kumiai(home, "ledger", "show", "--type", "member.")
    assert "member.joined" in shown.stdout and "st-mary" in shown.stdout
    proof = json.loads(kumiai(home, "ledger", "prove", "1").stdout)
    assert proof["verified"] is True and proof["tree_size"] == 3
    export, keys = tmp_path / "ledger.jsonl", tmp_path / "keys.json"
    assert kumiai(home, "ledger", "export", str(export), "--keys", str(keys)).returncode == 0
    ok = kumiai(tmp_path / "elsewhere", "ledger", "verify", str(export), "--keys", str(keys))
    assert ok.returncode == 0 and "verified" in ok.stdout

    lines = export.read_text().splitlines()
    lines[2] = lines[2].replace("university", "universitx")
    export.write_text("\n".join(lines) + "\n")
    failed = kumiai(tmp_path / "elsewhere", "ledger", "verify", str(export))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "entry 1: signature does not verify" in failed.stderr
    as_json = kumiai(tmp_path / "elsewhere", "ledger", "verify", str(export), "--json")
    verdicts = json.loads(as_json.stdout)["entries"]
    assert as_json.returncode == 1 and [v["ok"] for v in verdicts] == [True, False, True]
    assert verdicts[1] == {
        "seq": 1,
        "ok": False,
        "reason": "signature does not verify",
        "codes": ["signature"],
    }

    export.write_text(lines[0] + "\n{not json\n")
    assert_user_error(
        kumiai(tmp_path / "elsewhere", "ledger", "verify", str(export)), "line 2", "malformed"
    )
    assert_user_error(kumiai(home, "ledger", "prove", "99"), "no ledger entry 99")


def test_a_benchmark_option_given_to_the_wrong_benchmark_is_refused(tmp_path: Path) -> None:
    assert_user_error(
        kumiai(tmp_path, "bench", "ledger", "--runs", "3"), "--runs applies to", "bench startup"
    )
    assert_user_error(
        kumiai(tmp_path, "bench", "startup", "--sizes", "10"), "--sizes applies to", "bench ledger"
    )
