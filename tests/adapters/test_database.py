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


@pytest.fixture
def url(tmp_path: Path, backend: str) -> str:
    """A new, empty database: a SQLite file, or a fresh PostgreSQL database."""
    return database.database_url(tmp_path)


def test_a_new_database_is_migrated_to_head(url: str) -> None:
    assert revision_of(url) == [HEAD_REVISION]


def test_a_database_at_head_opens_without_alembic(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_database(url)

    def refuse(_connection: object) -> None:
        raise AssertionError("Alembic ran on a database already at head")

    monkeypatch.setattr(database, "_upgrade", refuse)
    assert revision_of(url) == [HEAD_REVISION]


def test_a_database_behind_head_is_upgraded(url: str) -> None:
    command.upgrade(config_for(url), "0005")
    assert revision_of(url) == [HEAD_REVISION]


def test_every_migration_downgrades_and_upgrades_again(url: str) -> None:
    """Each step back is possible on both backends (an operator's way out of a bad upgrade)."""
    command.upgrade(config_for(url), "head")
    command.downgrade(config_for(url), "base")
    command.upgrade(config_for(url), "head")
    assert revision_of(url) == [HEAD_REVISION]
