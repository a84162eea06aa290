"""`kumiai agent ...` from a user's own ratings CSV: enrol, train, policy, suggest, revoke."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import kumiai as package
from tests.agent.conftest import synthetic_table

SOURCE = str(Path(package.__file__).resolve().parents[1])  # this tree's kumiai, from any cwd


def kumiai(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kumiai", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": SOURCE},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_the_agent_commands_from_a_ratings_csv(tmp_path: Path) -> None:
    table = synthetic_table()
    lines = ["who,film,stars,when,kinds"] + [
        f"{table.user_ids[u]},{table.item_ids[i]},{r},{t},{'|'.join(table.item_genres[i])}"
        for u, i, r, t in zip(table.user, table.item, table.rating, table.time, strict=True)
    ]
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n")
    columns = ["--user-col", "who", "--item-col", "film", "--rating-col", "stars"]

    wrong = kumiai("agent", "enrol", "--ratings", "mine.csv", *columns, cwd=tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "has no column 'time'" in wrong.stderr and "--time-col" in wrong.stderr

    enrolled = kumiai(
        "agent", "enrol", "--ratings", "mine.csv", *columns, "--time-col", "when",
        "--genres-col", "kinds", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout) == {"devices": 24, "skipped_users": 0}

    trained = kumiai("agent", "train", "--rounds", "5", "--fraction", "0.5", "--json", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    doc = json.loads(trained.stdout)
    assert (
        doc["rounds"] == 5
        and doc["plan"] is None
        and set(doc["metrics"])
        == {
            "rmse",
            "ndcg_at_10",
            "hit_rate_at_10",
        }
    )

    policy = kumiai("agent", "policy", "user3", "--block", "Horror", "--json", cwd=tmp_path)
    assert json.loads(policy.stdout)["blocked_genres"] == ["Horror"]

    suggested = kumiai(
        "agent", "suggest", "user3", "--at", "2026-11-29T01:00:00Z", "--json", cwd=tmp_path
    )
    assert suggested.returncode == 0, suggested.stderr
    doc = json.loads(suggested.stdout)
    assert doc["user"] == "user3" and doc["at"] == "2026-11-29T01:00:00Z"
    assert all("Horror" not in s["genres"] for s in doc["suggestions"])

    unknown = kumiai("agent", "suggest", "nobody", cwd=tmp_path)
    assert unknown.returncode == 2 and "user 'nobody' has no device" in unknown.stderr

    revoked = kumiai("agent", "revoke", "user3", cwd=tmp_path)
    assert "consent-personal-agent-user3 revoked" in revoked.stdout
    again = kumiai("agent", "train", "--rounds", "2", "--fraction", "1", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["refusals"] == 2


def test_the_agent_demo_on_a_ratings_csv(tmp_path: Path) -> None:
    table = synthetic_table()
    lines = ["user,item,rating,time,genres"] + [
        f"{table.user_ids[u]},{table.item_ids[i]},{r},{t},{'|'.join(table.item_genres[i])}"
        for u, i, r, t in zip(table.user, table.item, table.rating, table.time, strict=True)
    ]
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n")
    shown = kumiai(
        "agent", "demo", "--ratings", "mine.csv", "--rounds", "3", "--user", "user3", cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert "24 devices, each holding one user's ratings and consent" in shown.stdout
    assert re.search(r"at user-level ε = (7\.9\d|8\.00)", shown.stdout)
    assert "suggestions for user user3, made on their device" in shown.stdout
    assert "their privacy spend, from their device's own log: ε" in shown.stdout
