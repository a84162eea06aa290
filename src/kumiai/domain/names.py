"""Names of members, datasets and projects: short slugs usable in paths and commands."""

import re

from kumiai.domain.errors import InvalidInput

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_slug(value: str, what: str) -> str:
    """Return the slug, or explain how to write one."""
    if not _SLUG.match(value):
        raise InvalidInput(
            f"{what} name {value!r} is not valid; use 1-63 lowercase letters, digits and "
            "hyphens, starting with a letter or digit (e.g. 'cleveland-clinic')"
        )
    return value
