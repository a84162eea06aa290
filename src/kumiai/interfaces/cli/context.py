"""Shared CLI state: where the consortium lives, and the consoles."""

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from kumiai.services.consortium import Consortium, default_home, open_consortium

if TYPE_CHECKING:
    from kumiai.services.jobs import HeldReservation

console = Console()
errors = Console(stderr=True)
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 120  # logs and pipes: wide enough for the tables, not 80 columns
    errors.width = 120


def home_of(ctx: typer.Context) -> Path:
    root = ctx.find_root()
    home = (root.obj or {}).get("home")
    return Path(home) if home else default_home()


def consortium(ctx: typer.Context) -> Consortium:
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
    """Say which node still holds ε for a job that is over, and how to retry the release."""
    for h in held:
        errors.print(
            f"[yellow]warning:[/] {escape(h.member)}'s node still holds the ε it reserved for "
            f"job {escape(h.job)} on {escape(h.dataset)}: {escape(h.reason)}. Check the node's "
            "spend log (`kumiai budget`); `kumiai jobs --recover` retries the release.",
            highlight=False,
        )
