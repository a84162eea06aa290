"""The charter and the board's motions as a user types them."""

import json
from pathlib import Path

from tests.interfaces.test_cli import assert_user_error, kumiai

BOARD = ("aoi-univ", "kita-hospital", "minami-corp")


def _ok(home: Path, *args: str) -> str:
    result = kumiai(home, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_charter_then_a_project_approved_by_vote(tmp_path: Path) -> None:
    home = tmp_path / "c"
    _ok(home, "init")
    for member in BOARD:
        _ok(home, "member", "add", member, "--kind", "university")
    _ok(home, "project", "propose", "heart", "--by", "aoi-univ", "--purpose", "diagnosis support")
    assert_user_error(
        kumiai(home, "charter", "propose", "--by", "aoi-univ", "--rule", "approve-project=1/2"),
        "DECISION=QUORUM,THRESHOLD,DAYS",
    )
    out = _ok(home, "charter", "propose", "--by", "aoi-univ", "--rule", "approve-project=1/2,2/3,3")
    assert "Awaiting the signatures of: aoi-univ, kita-hospital, minami-corp" in out
    for member in BOARD:
        out = _ok(home, "charter", "sign", member)
    assert "adopted" in out
    shown = json.loads(_ok(home, "charter", "show", "--json"))
    assert shown["status"] == "adopted" and shown["document"]["seats"] == list(BOARD)
    assert shown["document"]["rules"]["approve-project"]["threshold"] == "2/3"

    assert_user_error(
        kumiai(home, "project", "approve", "heart", "--by", "aoi-univ"), "only by a board vote"
    )
    assert_user_error(
        kumiai(home, "motion", "propose", "dissolve", "--by", "aoi-univ"),
        "unknown decision type 'dissolve'",
    )
    _ok(home, "motion", "propose", "approve-project", "--by", "aoi-univ", "--set", "project=heart")
    _ok(home, "motion", "vote", "motion-1", "yes", "--by", "aoi-univ")
    assert_user_error(
        kumiai(home, "motion", "vote", "motion-1", "no", "--by", "aoi-univ"), "already voted yes"
    )
    assert_user_error(kumiai(home, "motion", "close", "motion-1"), "takes votes until")
    _ok(home, "motion", "vote", "motion-1", "yes", "--by", "kita-hospital")
    _ok(home, "motion", "vote", "motion-1", "abstain", "--by", "minami-corp")
    assert "passed" in _ok(home, "motion", "close", "motion-1")  # every seat voted
    [listed] = json.loads(_ok(home, "motion", "list", "--json"))
    assert listed["status"] == "passed" and listed["tally"]["abstain"] == 1
    motion = json.loads(_ok(home, "motion", "show", "motion-1", "--json"))
    assert motion["votes"] == {"aoi-univ": "yes", "kita-hospital": "yes", "minami-corp": "abstain"}
    [project] = json.loads(_ok(home, "project", "list", "--json"))
    assert project["status"] == "active"
    verdict = json.loads(_ok(home, "ledger", "verify", "--json"))
    assert verdict["ok"] is True
