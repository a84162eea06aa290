"""Research themes, and the board's ranking of them.

A theme groups projects (medical AI, personal agents...). The board ranks the themes by a
`set-priorities` motion whose ranking names every theme exactly once, so that no theme is
left out of the order by accident and none is counted twice.
"""

from collections.abc import Collection

from kumiai.domain.errors import InvalidInput
from kumiai.domain.names import check_slug


def check_theme(name: str, title: str) -> str:
    """A theme's name is a slug and it has a title people read."""
    check_slug(name, "theme")
    if not title.strip():
        raise InvalidInput(f"theme {name!r} needs a title, e.g. --title 'Medical AI'")
    return name


def ranking_of(value: object, themes: Collection[str]) -> tuple[str, ...]:
    """The ranking a set-priorities motion proposes: every theme exactly once, best first.

    `value` is a JSON list of names or a comma-separated string ("medical,agents").
    """
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",") if t.strip()]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidInput(
            "a ranking is a list of theme names, best first, e.g. --set ranking=medical,agents"
        )
    if not themes:
        raise InvalidInput("there are no themes to rank yet; add one with `kumiai theme add`")
    repeated = sorted({t for t in value if value.count(t) > 1})
    if repeated:
        raise InvalidInput(f"the ranking names {', '.join(repeated)} more than once")
    unknown = sorted(set(value) - set(themes))
    if unknown:
        raise InvalidInput(
            f"the ranking names unknown themes: {', '.join(unknown)}; see `kumiai theme list`"
        )
    missing = sorted(set(themes) - set(value))
    if missing:
        raise InvalidInput(
            f"the ranking leaves out {', '.join(missing)}: rank every theme exactly once"
        )
    return tuple(value)
