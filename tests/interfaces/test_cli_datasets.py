"""Registration refusals and `dataset update` as a steward meets them: one line, no traceback."""

from pathlib import Path

from tests.interfaces.test_cli import assert_user_error, kumiai

HEADER = "age,sex,los,num\n"
ROWS = "".join(f"{40 + i},{('M', 'F')[i % 2]},{i + 1},{i % 2}\n" for i in range(12))


def _register(home: Path, path: Path) -> object:
    return kumiai(
        home, "dataset", "register", str(path), "--member", "site", "--name", "d", "--target", "num"
    )


def test_refusals_and_an_update_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "c"
    assert kumiai(home, "init").returncode == 0
    assert kumiai(home, "member", "add", "site", "--kind", "hospital").returncode == 0
    path = tmp_path / "site.csv"

    path.write_text(HEADER.replace("sex", "los") + ROWS)
    assert_user_error(_register(home, path), str(path), "'los' (columns 2, 3)")  # type: ignore[arg-type]
    path.write_text(HEADER + ROWS.replace("\n45,", "\nforty-five,"))
    assert_user_error(
        _register(home, path),  # type: ignore[arg-type]
        "row 6 (line 7), column 'age': 'forty-five' is not a number",
        "--missing age=forty-five",
    )
    assert not any((home / "members" / "site" / "data").glob("*"))

    path.write_text(HEADER + ROWS)
    assert _register(home, path).returncode == 0  # type: ignore[attr-defined]
    path.write_text(HEADER + ROWS + "70,F,3,1\n")
    result = kumiai(home, "dataset", "update", "d", str(path))
    assert result.returncode == 0, result.stderr
    assert "12 → 13 rows" in result.stdout
    shown = kumiai(home, "ledger", "show", "--type", "dataset.")
    assert "dataset.updated" in shown.stdout and "previous_rows=12" in shown.stdout
    assert_user_error(kumiai(home, "dataset", "update", "d", str(path)), "nothing to update")


def test_a_non_finite_training_option_is_named(tmp_path: Path) -> None:
    # The settings are checked before the consortium is opened: no home is needed.
    assert_user_error(
        kumiai(tmp_path / "c", "train", "p", "--lr", "inf"),
        "learning rate (--lr) must be a finite number, got inf",
    )
