"""Fetching governance rows by name, with the one-line 'not found' every command shares."""

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters.storage.schema import (
    AgreementRow,
    Base,
    DatasetRow,
    JobRow,
    MemberRow,
    ModelVersionRow,
    ProjectRow,
    RequestRow,
    ThemeRow,
)
from kumiai.domain.errors import NotFound

Row = TypeVar("Row", bound=Base)

_WHAT: dict[type[Base], tuple[str, str]] = {
    MemberRow: ("member", "kumiai member list"),
    DatasetRow: ("dataset", "kumiai dataset list"),
    ProjectRow: ("project", "kumiai project list"),
    RequestRow: ("data-use request", "kumiai requests"),
    AgreementRow: ("agreement", "kumiai agreement list"),
    JobRow: ("job", "kumiai jobs"),
    ModelVersionRow: ("model version", "kumiai models"),
    ThemeRow: ("theme", "kumiai theme list"),
}


def get(session: Session, row_type: type[Row], key: str) -> Row:
    row = session.get(row_type, key)
    if row is None:
        what, listing = _WHAT[row_type]
        raise NotFound(f"unknown {what} {key!r}; see `{listing}`")
    return row


def all_rows(session: Session, row_type: type[Row], *order: object) -> list[Row]:
    return list(session.scalars(select(row_type).order_by(*order)))  # type: ignore[arg-type]


def project_datasets(session: Session, project: str) -> list[DatasetRow]:
    """Every dataset some data-use request of the project names, whatever its steward said."""
    return list(
        session.scalars(
            select(DatasetRow)
            .join(RequestRow, RequestRow.dataset == DatasetRow.name)
            .where(RequestRow.project == project)
            .order_by(DatasetRow.name)
        ).unique()
    )
