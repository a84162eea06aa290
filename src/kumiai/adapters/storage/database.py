"""Opening the governance database: one URL setting, migrations applied on open.

A database already at the newest migration opens without loading Alembic (0.12-0.17 s of
CPU on every command, against 0.015 s for the rest of opening): only `HEAD_REVISION` is
compared with the `alembic_version` row. A test keeps `HEAD_REVISION` equal to the newest file in
`migrations/versions/`.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kumiai.domain.errors import InvalidInput

MIGRATIONS = Path(__file__).parent / "migrations"
URL_SETTING = "KUMIAI_DATABASE_URL"
HEAD_REVISION = "0012"  # the head of the migration chain: keep in step with migrations/versions/


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
    try:
        if not _at_head(engine):
            with engine.begin() as connection:
                _upgrade(connection)
    except OperationalError as exc:
        raise InvalidInput(f"cannot open the database at {url!r}: {exc.orig}") from None
    return sessionmaker(engine, expire_on_commit=False)


def _at_head(engine: Engine) -> bool:
    """Whether the schema is already at HEAD_REVISION: one read, outside any transaction.

    The DB-API connection is used directly so that SQLite's `BEGIN IMMEDIATE` (above) does
    not take the write lock for a read. A missing table (a new database) reads as not at head.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT version_num FROM alembic_version")
        versions = [row[0] for row in cursor.fetchall()]
        cursor.close()
    except engine.dialect.loaded_dbapi.Error:
        return False
    finally:
        connection.close()  # back to the pool, rolled back
    return versions == [HEAD_REVISION]


def _upgrade(connection: Connection) -> None:
    """Bring the schema to the newest migration with Alembic (loaded only here)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: everything in it commits together or not at all."""
    with factory() as session, session.begin():
        yield session
