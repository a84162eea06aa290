"""Members of the consortium and the kinds of organisation they are."""

from enum import StrEnum

from kumiai.domain.errors import InvalidInput


class MemberKind(StrEnum):
    UNIVERSITY = "university"
    COMPANY = "company"
    HOSPITAL = "hospital"
    STARTUP = "startup"
    SPINOUT = "spinout"  # a company the association spins out, created by motion


def parse_member_kind(value: str) -> MemberKind:
    try:
        return MemberKind(value.lower())
    except ValueError:
        allowed = ", ".join(k.value for k in MemberKind)
        raise InvalidInput(f"member kind {value!r} is not known; use one of: {allowed}") from None
