"""A throwaway PostgreSQL server for the storage tests: Debian's own binaries, run as `postgres`.

PostgreSQL refuses to run as root, so a root test run starts it through `runuser`. The server
listens only on a Unix socket in a private directory, with fsync off (nothing here must
survive a crash), and is stopped by its process id when the session ends.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kumiai.adapters.flower.supervised import alive


class Unavailable(Exception):
    """Why no server could start; the PostgreSQL half of the tests is skipped, loudly."""


@dataclass
class PostgresServer:
    root: Path
    port: int
    pid: int
    created: list[str] = field(default_factory=list)

    @property
    def socket_dir(self) -> str:
        return str(self.root / "socket")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self) -> str:
        """A fresh, empty database for one test."""
        import psycopg

        name = f"kumiai_{len(self.created)}_{os.getpid()}"
        with psycopg.connect(
            host=self.socket_dir,
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return name

    def drop_database(self, name: str) -> None:
        """End the test's connections (engines it never disposed) and drop its database."""
        import psycopg

        with psycopg.connect(
            host=self.socket_dir, port=self.port, user="postgres", dbname="postgres",
            autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by the postmaster's process id, then remove its files."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and alive(self.pid):
            time.sleep(0.05)
        if alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise Unavailable(
            "Debian's PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl); "
            "install it with: apt-get install -y postgresql"
        )
    return Path(found[-1]).parent


def _as_postgres() -> list[str]:
    """The prefix that runs a command as the `postgres` user."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("there is no `postgres` user to run the server as") from None
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    if pwd.getpwuid(os.geteuid()).pw_name == "postgres":
        return []
    raise Unavailable("the tests run neither as root nor as `postgres`, so initdb cannot run")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server() -> PostgresServer:
    """initdb and pg_ctl start, as `postgres`, in a new private directory."""
    bin_dir, prefix = _binaries(), _as_postgres()
    root = Path(tempfile.mkdtemp(prefix="kumiai-pg-"))
    (root / "socket").mkdir()
    postgres = pwd.getpwnam("postgres")
    for path in (root, root / "socket"):
        os.chown(path, postgres.pw_uid, postgres.pw_gid)
    data, log, port = root / "data", root / "server.log", _free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise Unavailable(f"{Path(command[0]).name} failed: {done.stderr.strip()[-400:]}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
        "-E", "UTF8", "--no-sync")  # fmt: skip
    options = (
        f"-k {root / 'socket'} -p {port} -c listen_addresses='' -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    return PostgresServer(root, port, pid)
