"""What a create-spinout motion must say: the new company's name, its founders, its origin.

A spin-out is founded from a theme or a project of the association (one of them), by
founders who are members; the charter's conflict rule keeps the founders from voting on it.
"""

from typing import Any

from kumiai.domain.errors import InvalidInput
from kumiai.domain.names import check_slug


def spinout_payload(
    name: object, founders: object, theme: object = None, project: object = None
) -> dict[str, Any]:
    """The motion's payload, validated: {"spinout", "founders" (sorted), "theme", "project"}."""
    if not isinstance(name, str):
        raise InvalidInput("the spin-out's name must be a name, e.g. --set spinout=kokoro-ai")
    check_slug(name, "spin-out")
    if not isinstance(founders, list | tuple) or not founders:
        raise InvalidInput("a spin-out needs founders: --founders a,b (members of the association)")
    for founder in founders:
        if not isinstance(founder, str):
            raise InvalidInput(f"founder {founder!r} must be a member's name")
        check_slug(founder, "founder")
    if len(set(founders)) != len(founders):
        raise InvalidInput("a founder is named twice; name each founder once")
    if name in founders:
        raise InvalidInput(f"the spin-out {name!r} cannot found itself")
    if (theme is None) == (project is None):
        raise InvalidInput(
            "a spin-out is founded from a theme or a project: give one, --theme T or --project P"
        )
    for value, what in ((theme, "theme"), (project, "project")):
        if value is not None:
            if not isinstance(value, str):
                raise InvalidInput(f"the {what} a spin-out comes from must be a name")
            check_slug(value, what)
    return {"spinout": name, "founders": sorted(founders), "theme": theme, "project": project}
