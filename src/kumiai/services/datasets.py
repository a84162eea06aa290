"""A steward registers a dataset on its own node; the catalogue receives metadata only.

Registering and updating check every cell of the steward's file before anything is
stored, and write the node's copy, its record, the catalogue row and the signed ledger
entry together: a refusal or a crash leaves none of them behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumiai.adapters import tables
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    DatasetRow,
    JobRow,
    JobSiteRow,
    MemberRow,
    ProjectRow,
    RequestRow,
)
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import DataError, InvalidInput, StateError
from kumiai.domain.job import JobStatus
from kumiai.domain.names import check_slug
from kumiai.domain.project import ProjectStatus
from kumiai.domain.schema import ColumnType, Schema, TargetSpec, parse_target
from kumiai.node.port import LocalDataset, NodePort, StagedDataset
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import all_rows, get

Result = TypeVar("Result")
SENSITIVITIES = ("public", "internal", "confidential", "special-category")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    member: str
    rows: int
    target: str
    sensitivity: str
    sha256: str
    schema: dict[str, str]


@dataclass(frozen=True)
class DatasetUpdate:
    """A new version of a dataset: the catalogue entry before and after, and columns left out."""

    before: DatasetInfo
    after: DatasetInfo
    left_out: tuple[str, ...]


def _info(row: DatasetRow) -> DatasetInfo:
    return DatasetInfo(
        row.name,
        row.member,
        row.rows,
        row.target,
        row.sensitivity,
        row.sha256,
        json.loads(row.schema_json),
    )


def _schema_doc(schema: Schema) -> dict[str, str]:
    return {c: t.value for c, t in schema.items()}


def _stage(node: NodePort, name: str, file: Path, sha256: str) -> StagedDataset:
    """Copy the file to the node; refuse if it changed while it was being checked."""
    write = node.stage_dataset(name, file)
    if tables.content_hash(write.staged) != sha256:
        write.undo()
        raise DataError(f"data file {file} changed while kumiai was checking it; run again")
    return write


def _commit(
    consortium: Consortium, work: Callable[[Session, list[StagedDataset]], Result]
) -> Result:
    """Run `work(session, writes)` in one transaction; undo its node writes if it fails.

    `work` installs its node writes last, so the node is changed only when the database
    is about to commit, and put back if the commit fails.
    """
    writes: list[StagedDataset] = []
    try:
        with transaction(consortium.sessions) as session:
            result = work(session, writes)
    except BaseException:
        for write in writes:
            write.undo()
        raise
    for write in writes:
        write.finish()
    return result


def register_dataset(
    consortium: Consortium,
    *,
    member: str,
    file: Path,
    name: str,
    target: str,
    column_types: dict[str, ColumnType] | None = None,
    missing: dict[str, tuple[str, ...]] | None = None,
    ignore: tuple[str, ...] = (),
    sensitivity: str = "confidential",
) -> DatasetInfo:
    """Copy the file into the member's node home, check every cell, publish the metadata."""
    check_slug(name, "dataset")
    _check_sensitivity(sensitivity)
    spec = parse_target(target)
    missing = missing or {}

    def work(session: Session, writes: list[StagedDataset]) -> DatasetInfo:
        _require_new(session, member, name)
        sha256 = tables.content_hash(tables.require_file(file))
        frame = tables.read_raw(file)
        checked = tables.check_file(file, frame, spec, column_types or {}, ignore, missing)
        node = consortium.node(member)
        writes.append(write := _stage(node, name, file, sha256))
        record = LocalDataset(
            name=name,
            file=write.stored,
            sha256=sha256,
            target=spec,
            schema=checked.schema,
            missing=missing,
            rows=checked.rows,
            ignored=ignore,
        )
        row = _record(
            consortium,
            session,
            member,
            name,
            checked.schema,
            spec,
            checked.rows,
            sha256,
            sensitivity,
        )
        session.flush()
        write.install(record)
        return _info(row)

    return _commit(consortium, work)


def _require_new(session: Session, member: str, name: str) -> None:
    get(session, MemberRow, member)
    if session.get(DatasetRow, name) is not None:
        raise InvalidInput(
            f"dataset {name!r} is already registered; choose another name, or register a "
            f"new version of its file with: kumiai dataset update {name} FILE"
        )


def _check_sensitivity(sensitivity: str) -> None:
    if sensitivity not in SENSITIVITIES:
        raise InvalidInput(
            f"sensitivity {sensitivity!r} is not known; use one of: " + ", ".join(SENSITIVITIES)
        )


def _record(
    consortium: Consortium,
    session: Session,
    member: str,
    name: str,
    schema: Schema,
    spec: TargetSpec,
    rows: int,
    sha256: str,
    sensitivity: str,
) -> DatasetRow:
    """The catalogue row and the member's signed `dataset.registered` entry."""
    row = DatasetRow(
        name=name,
        member=member,
        schema_json=json.dumps(_schema_doc(schema)),
        target=str(spec),
        rows=rows,
        sha256=sha256,
        sensitivity=sensitivity,
        registered_at=utc_now(),
    )
    session.add(row)
    consortium.ledger.append(
        session,
        Act(
            member,
            "dataset.registered",
            {
                "dataset": name,
                "member": member,
                "rows": rows,
                "sha256": sha256,
                "target": str(spec),
                "sensitivity": sensitivity,
                "schema": _schema_doc(schema),
            },
            member=member,
            dataset=name,
        ),
    )
    session.flush()
    return row


_SHA256 = re.compile(r"[0-9a-f]{64}")


def record_dataset(
    consortium: Consortium,
    *,
    member: str,
    name: str,
    target: str,
    schema: dict[str, str],
    rows: int,
    sha256: str,
    sensitivity: str = "confidential",
) -> DatasetInfo:
    """The catalogue's side of a dataset its node checked and keeps on its own machine.

    The node read every cell (`kumiai node register`); the coordinator records the metadata
    and the entry the node signed, and never sees the file.
    """
    check_slug(name, "dataset")
    _check_sensitivity(sensitivity)
    spec = parse_target(target)
    try:
        types = {str(c): ColumnType(t) for c, t in schema.items()}
    except ValueError:
        known = ", ".join(t.value for t in ColumnType)
        raise InvalidInput(f"a column type in the schema is not one of: {known}") from None
    if not types or rows < 1 or not _SHA256.fullmatch(sha256):
        raise InvalidInput(
            "a dataset needs a schema with columns, at least one row and its file's SHA-256 "
            "(64 hex digits)"
        )
    with transaction(consortium.sessions) as session:
        _require_new(session, member, name)
        return _info(
            _record(consortium, session, member, name, types, spec, rows, sha256, sensitivity)
        )


def schema_changes(before: Schema, after: Schema) -> list[str]:
    """What a new version does to the columns, in words: adds, drops, retypes."""
    changes = []
    added = [c for c in after if c not in before]
    dropped = [c for c in before if c not in after]
    retyped = [
        f"{c} from {before[c].value} to {after[c].value}"
        for c in before
        if c in after and before[c] is not after[c]
    ]
    if added:
        changes.append("adds " + ", ".join(added))
    if dropped:
        changes.append("drops " + ", ".join(dropped))
    if retyped:
        changes.append("changes " + ", ".join(retyped))
    return changes


def _projects_using(session: Session, dataset: str) -> list[str]:
    """Active projects with a pending or signed request on the dataset."""
    query = (
        select(RequestRow.project)
        .join(ProjectRow, ProjectRow.name == RequestRow.project)
        .where(
            RequestRow.dataset == dataset,
            RequestRow.status.in_(("pending", "signed")),
            ProjectRow.status == ProjectStatus.ACTIVE.value,
        )
        .distinct()
        .order_by(RequestRow.project)
    )
    return list(session.scalars(query))


def _refuse_while_jobs_run(session: Session, dataset: str) -> None:
    """A job in progress planned its privacy spend and split on the rows it started with."""
    query = (
        select(JobRow.id)
        .join(JobSiteRow, JobSiteRow.job_id == JobRow.id)
        .where(
            JobSiteRow.dataset == dataset,
            JobRow.status.in_((JobStatus.PENDING.value, JobStatus.RUNNING.value)),
        )
        .order_by(JobRow.id)
    )
    jobs = list(session.scalars(query))
    if jobs:
        raise StateError(
            f"dataset {dataset!r} is in use by job(s) {', '.join(jobs)}, still running; update "
            "it when they have finished (`kumiai jobs` marks a job whose process died failed)"
        )


@dataclass(frozen=True)
class _ColumnPlan:
    """How a new version's columns are read: as registered, plus the steward's changes."""

    declared: dict[str, ColumnType]
    ignored: tuple[str, ...]
    left_out: tuple[str, ...]  # in the new file only, and not named by the steward
    missing: dict[str, tuple[str, ...]]


def _plan_columns(
    previous: LocalDataset,
    found: list[str],
    column_types: dict[str, ColumnType],
    ignore: tuple[str, ...],
    missing: dict[str, tuple[str, ...]] | None,
) -> _ColumnPlan:
    kept = {c: t for c, t in previous.schema.items() if c in found and c not in ignore}
    declared = kept | column_types
    still_ignored = tuple(c for c in previous.ignored if c in found and c not in declared)
    ignored = tuple(dict.fromkeys((*still_ignored, *ignore)))
    left_out = tuple(
        c for c in found if c not in declared and c not in ignored and c != previous.target.column
    )
    markers = {c: v for c, v in previous.missing.items() if c in found}
    for column, values in (missing or {}).items():
        markers[column] = tuple(dict.fromkeys((*markers.get(column, ()), *values)))
    return _ColumnPlan(declared, ignored, left_out, markers)


def update_dataset(
    consortium: Consortium,
    name: str,
    file: Path,
    *,
    column_types: dict[str, ColumnType] | None = None,
    missing: dict[str, tuple[str, ...]] | None = None,
    ignore: tuple[str, ...] = (),
) -> DatasetUpdate:
    """Register a new version of a dataset's file, checked like a registration.

    The target and sensitivity stay. The registered columns keep their types (`column_types`
    adds or retypes columns); columns the new file adds are left out unless named there;
    `missing` adds markers to the registered ones; `ignore` drops registered columns. A
    schema change is refused while an active project has a request on the dataset. Signed
    agreements and the privacy budget carry over: they are about the same people's data.
    """

    def work(session: Session, writes: list[StagedDataset]) -> DatasetUpdate:
        row = get(session, DatasetRow, name)
        before = _info(row)
        _refuse_while_jobs_run(session, name)
        node = consortium.node(row.member)
        previous = node.dataset(name)
        sha256 = tables.content_hash(tables.require_file(file))
        if sha256 == previous.sha256 and previous.file.is_file():
            raise InvalidInput(
                f"data file {file} is the version of {name!r} already registered (same "
                "content hash); nothing to update"
            )
        frame = tables.read_raw(file)
        plan = _plan_columns(previous, list(frame.columns), column_types or {}, ignore, missing)
        checked = tables.check_file(
            file,
            frame,
            previous.target,
            plan.declared,
            (*plan.ignored, *plan.left_out),
            plan.missing,
        )
        changes = schema_changes(previous.schema, checked.schema)
        projects = _projects_using(session, name) if changes else []
        if projects:
            new = ", ".join(plan.left_out)
            unused = f" (columns not in the registered schema are left out: {new})"
            raise StateError(
                f"data file {file} {'; '.join(changes)} compared with dataset {name!r} as "
                f"registered, and active project(s) {', '.join(projects)} asked to use it with "
                "its registered columns; keep the columns and types (--types, --missing), or "
                "register the new file under a new name" + (unused if plan.left_out else "")
            )
        writes.append(write := _stage(node, name, file, sha256))
        record = LocalDataset(
            name=name,
            file=write.stored,
            sha256=sha256,
            target=previous.target,
            schema=checked.schema,
            missing=plan.missing,
            rows=checked.rows,
            ignored=plan.ignored,
        )
        row.schema_json = json.dumps(_schema_doc(checked.schema))
        row.rows = checked.rows
        row.sha256 = sha256
        consortium.ledger.append(
            session,
            Act(
                row.member,
                "dataset.updated",
                {
                    "dataset": name,
                    "member": row.member,
                    "previous_sha256": before.sha256,
                    "sha256": sha256,
                    "previous_rows": before.rows,
                    "rows": checked.rows,
                    "schema": _schema_doc(checked.schema),
                    "schema_changes": changes,
                },
                member=row.member,
                dataset=name,
            ),
        )
        session.flush()
        write.install(record)
        return DatasetUpdate(before, _info(row), plan.left_out)

    return _commit(consortium, work)


def list_datasets(consortium: Consortium) -> list[DatasetInfo]:
    with transaction(consortium.sessions) as session:
        return [_info(r) for r in all_rows(session, DatasetRow, DatasetRow.name)]
