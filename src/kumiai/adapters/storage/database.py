"""Opening the governance database: one URL setting, migrations applied on open."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kumiai.domain.errors import InvalidInput

MIGRATIONS = Path(__file__).parent / "migrations"
URL_SETTING = "KUMIAI_DATABASE_URL"


def database_url(home: Path) -> str:
    """KUMIAI_DATABASE_URL when set (e.g. PostgreSQL), else SQLite inside the home."""
    return os.environ.get(URL_SETTING) or f"sqlite:///{home / 'kumiai.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the job writer
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_database(url: str) -> sessionmaker[Session]:
    """Create the engine, bring the schema to the newest migration, return a session factory."""
    try:
        engine: Engine = create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise InvalidInput(f"{URL_SETTING}={url!r} is not a usable database URL ({exc})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE takes the write lock at BEGIN: two writers (a job recording its rounds, a
        # steward revoking) queue up instead of failing mid-transaction, and the ledger's
        # sequence numbers are read and written under one lock.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise InvalidInput(f"cannot open the database at {url!r}: {exc.orig}") from None
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: everything in it commits together or not at all."""
    with factory() as session, session.begin():
        yield session
