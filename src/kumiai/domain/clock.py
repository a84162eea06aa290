"""Time is UTC and ISO-8601 everywhere; the domain receives `now`, it never reads a clock."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from kumiai.domain.errors import InvalidInput

_source: Callable[[], datetime] | None = None  # set by `frozen_at`; None reads the system clock


def utc_now() -> datetime:
    """The current time in UTC, to the second (signed payloads carry no sub-seconds)."""
    if _source is not None:
        return _source().astimezone(UTC).replace(microsecond=0)
    return datetime.now(UTC).replace(microsecond=0)


@contextmanager
def frozen_at(moment: datetime | Callable[[], datetime]) -> Iterator[None]:
    """Within the block, `utc_now` answers `moment` (or calls it): tests close a voting
    period, or let an agreement expire, without sleeping."""
    global _source
    previous = _source
    _source = moment if callable(moment) else (lambda: moment)
    try:
        yield
    finally:
        _source = previous


def to_iso(moment: datetime) -> str:
    """Render a UTC moment as `YYYY-MM-DDTHH:MM:SSZ` (signed in every ledger entry).

    Formatted by hand: as fast as it can be, and the year always has four digits
    (strftime's %Y leaves years before 1000 short on glibc).
    """
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def parse_iso(text: str, what: str = "time") -> datetime:
    """Parse an ISO-8601 date or time; a bare date means midnight UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not an ISO-8601 date or time; use e.g. 2027-06-30 or "
            "2027-06-30T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
