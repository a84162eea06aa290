"""Shared CLI state: where the consortium lives, and the consoles.

The services and Rich load on first use, never on import: `--help` needs neither, and
`--json` needs no Rich (see "What a command loads" in docs/architecture.md).
"""

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from kumiai.services.consortium import Consortium
    from kumiai.services.jobs import HeldReservation


@cache
def _consoles() -> "tuple[Console, Console]":
    from rich.console import Console

    console, errors = Console(), Console(stderr=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120  # logs and pipes: wide enough for the tables, not 80 columns
        errors.width = 120
    return console, errors


def __getattr__(name: str) -> "Console":
    """`console` (stdout) and `errors` (stderr), made on first use (PEP 562)."""
    if name == "console":
        return _consoles()[0]
    if name == "errors":
        return _consoles()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def home_of(ctx: typer.Context) -> Path:
    """The local consortium home; refused in one line when a remote coordinator is set."""
    from kumiai.interfaces.cli.remote import refuse_local_only
    from kumiai.services.consortium import default_home

    refuse_local_only(ctx.command_path)
    root = ctx.find_root()
    home = (root.obj or {}).get("home")
    return Path(home) if home else default_home()


def consortium(ctx: typer.Context) -> "Consortium":
    from kumiai.services.consortium import open_consortium

    return open_consortium(home_of(ctx))


def when(moment: object) -> str:
    """Render a datetime for tables (UTC, to the minute)."""
    from datetime import datetime

    return moment.strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else "—"


def number(value: object, digits: int = 3) -> str:
    return (
        f"{value:.{digits}f}" if isinstance(value, float) else "—" if value is None else str(value)
    )


def warn_held(held: "Iterable[HeldReservation]") -> None:
    """Say which node still holds ε for a job that is over, and how to retry the release.

    A remote node releasing at its next check-in is how every such job ends: a note."""
    from rich.markup import escape

    for h in held:
        if h.awaiting_node:
            _consoles()[1].print(
                f"note: {escape(h.member)}'s node is on its own machine: the ε it "
                f"reserved for job {escape(h.job)} on {escape(h.dataset)} is {escape(h.reason)}.",
                highlight=False,
            )
            continue
        _consoles()[1].print(
            f"[yellow]warning:[/] {escape(h.member)}'s node still holds the ε it reserved for "
            f"job {escape(h.job)} on {escape(h.dataset)}: {escape(h.reason)}. Check the node's "
            "spend log (`kumiai budget`); `kumiai jobs --recover` retries the release.",
            highlight=False,
        )
