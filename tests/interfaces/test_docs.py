"""The docs cannot drift: every command is documented, every module has its place."""

import re
from collections.abc import Iterator
from pathlib import Path

import click
import typer.main

from kumiai.interfaces.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "kumiai"


def command_paths(command: click.Command, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """Every command a user can type, as `member list` or `jobs`, walking the sub-apps."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from command_paths(sub, (*prefix, name))
    else:
        yield " ".join(prefix)


def module_names() -> list[str]:
    """Every module under src/kumiai, as `services.jobs`; Alembic's revision scripts are
    named by their folder, not one by one."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" or "versions" in parts:
            continue
        names.append(".".join(parts))
    return names


def mentions(text: str, name: str) -> bool:
    """`services.jobs` or `kumiai.services.jobs`; not `services.jobs_old`, `x.services.jobs`."""
    return re.search(rf"(?<![\w.-])(?:kumiai\.)?{re.escape(name)}(?![\w-])", text) is not None


def test_the_walk_finds_commands_and_modules() -> None:
    commands = set(command_paths(typer.main.get_command(app)))
    assert {"member list", "ledger verify", "budget show", "jobs", "train"} <= commands
    assert {"services.jobs", "domain.policy", "__main__"} <= set(module_names())


def test_every_command_is_named_in_the_readme_or_the_docs() -> None:
    text = "\n".join(
        path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    )
    # As typed: `kumiai member list`, or `kumiai --home DIR member list`.
    typed = r"kumiai(?: --home \S+)? "
    missing = [
        path
        for path in command_paths(typer.main.get_command(app))
        if not re.search(typed + re.escape(path) + r"(?![\w-])", text)
    ]
    assert missing == [], f"document these commands in README.md or docs/*.md: {missing}"


def test_every_module_is_named_in_the_architecture() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [name for name in module_names() if not mentions(text, name)]
    assert missing == [], f"name these modules in docs/architecture.md: {missing}"


def test_the_not_found_hints_name_real_commands() -> None:
    from kumiai.services.lookup import _WHAT

    commands = set(command_paths(typer.main.get_command(app)))
    for _, listing in _WHAT.values():
        assert listing.removeprefix("kumiai ") in commands, listing
