"""Opening the database: Alembic runs only when the schema is behind the newest migration."""

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from kumiai.adapters.storage import database
from kumiai.adapters.storage.database import HEAD_REVISION, MIGRATIONS, open_database


def config_for(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def revision_of(url: str) -> list[str]:
    sessions = open_database(url)
    with sessions() as session:
        return list(session.execute(text("SELECT version_num FROM alembic_version")).scalars())


def test_head_revision_is_the_newest_migration() -> None:
    # Revision numbers need not follow the chain's order (branches merge and are re-chained):
    # what matters is one head, and that HEAD_REVISION names it.
    files = {p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py")}
    assert HEAD_REVISION in files
    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD_REVISION


def test_a_new_database_is_migrated_to_head(tmp_path: Path) -> None:
    assert revision_of(f"sqlite:///{tmp_path / 'new.db'}") == [HEAD_REVISION]


def test_a_database_at_head_opens_without_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    open_database(url)

    def refuse(_connection: object) -> None:
        raise AssertionError("Alembic ran on a database already at head")

    monkeypatch.setattr(database, "_upgrade", refuse)
    assert revision_of(url) == [HEAD_REVISION]


def test_a_database_behind_head_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(config_for(url), "0005")
    assert revision_of(url) == [HEAD_REVISION]
