"""Flower's long-running processes (SuperLink, SuperNode), started and stopped by PID.

Flower's servers start helpers of their own (a SuperExec, `flwr-clientapp` processes), and a
killed SuperNode can leave one orphaned. So each process starts in a session of its own, and
stopping it ends the recorded PID, every descendant found under /proc, and its process
group: never a process by name, never one kumiai did not start.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kumiai.domain.errors import KumiaiError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
STOP_SECONDS = 8.0  # SuperNodes take up to 5 s to exit after SIGTERM (notes: flower-1.42)


def flower_environment(flwr_home: Path) -> dict[str, str]:
    """No telemetry, no update check, Flower's files kept in the given folder."""
    env = dict(os.environ)
    env.update(
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_HOME=str(flwr_home),
    )
    return env


def executable(name: str) -> str:
    """A Flower command from the same environment as this Python (the venv's bin)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the starting process dies.

    Linux only (prctl PR_SET_PDEATHSIG); elsewhere a SIGKILLed parent leaves the child.
    """
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (children first found, then theirs)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def alive(pid: int) -> bool:
    """The process runs (another user's too); a zombie, not yet reaped, counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purpose
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pids(pids: Sequence[int], wait: float = STOP_SECONDS) -> None:
    """SIGTERM each, then SIGKILL whatever still runs after `wait` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Supervised:
    """One Flower server process, its log file, and how to know it is ready."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # its helpers share its group, not ours
                # a SuperNode or SuperLink never outlives a node or coordinator killed -9
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it holds; refuse with the log's last line if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                raise KumiaiError(
                    f"the {self.name} exited with code {code} before it was {what}: "
                    f"{self.last_log_line()} (log: {self.log})"
                )
            if ready():
                return
            time.sleep(0.1)
        self.stop()
        raise KumiaiError(
            f"the {self.name} was not {what} within {timeout:.0f} s (log: {self.log})"
        )

    def last_log_line(self) -> str:
        try:
            lines = [
                _ANSI.sub("", line).strip()
                for line in self.log.read_text(errors="replace").splitlines()
                if line.strip() and not _ANSI.sub("", line).startswith(("INFO", "For more"))
            ]
        except OSError:
            return "no log"
        meaningful = [line for line in lines if "ERROR" in line or "Exit Code" in line]
        tail = lines[-4:] if not meaningful else lines[lines.index(meaningful[-1]) :][:4]
        return " ".join(tail)[-400:]

    def stop(self) -> None:
        """End the process, its descendants and its group; idempotent."""
        if self.process is None:
            return
        pid = self.process.pid
        pids = [pid, *descendants(pid)]
        stop_pids(pids)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # whatever of its group is left (a reparented helper)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1.0)
