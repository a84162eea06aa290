"""A steward registers a dataset on its own node; the catalogue receives metadata only."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from kumiai.adapters import tables
from kumiai.adapters.nodehome import LocalDataset
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import DatasetRow, MemberRow
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.domain.names import check_slug
from kumiai.domain.schema import ColumnType, parse_target
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.lookup import all_rows, get
from kumiai.services.node import parse_file

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
    if sensitivity not in SENSITIVITIES:
        raise InvalidInput(
            f"sensitivity {sensitivity!r} is not known; use one of: " + ", ".join(SENSITIVITIES)
        )
    spec = parse_target(target)
    missing = missing or {}
    with transaction(consortium.sessions) as session:
        get(session, MemberRow, member)
        if session.get(DatasetRow, name) is not None:
            raise InvalidInput(f"dataset {name!r} is already registered; choose another name")
        frame = tables.read_raw(file)
        schema = tables.infer_schema(
            frame,
            path=file,
            target=spec,
            declared=column_types or {},
            ignore=ignore,
            missing=missing,
        )
        # Every cell parses now, or the error names the user's file, row and column.
        _, labels = parse_file(file, spec, schema, missing)
        node = consortium.node(member)
        stored = node.data_dir / f"{name}{file.suffix.lower()}"
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, stored)
        record = LocalDataset(
            name=name,
            file=stored,
            sha256=tables.content_hash(stored),
            target=spec,
            schema=schema,
            missing=missing,
            rows=len(labels),
        )
        node.save_dataset(record)
        row = DatasetRow(
            name=name,
            member=member,
            schema_json=json.dumps({c: t.value for c, t in schema.items()}),
            target=str(spec),
            rows=len(labels),
            sha256=record.sha256,
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
                    "rows": len(labels),
                    "sha256": record.sha256,
                    "target": str(spec),
                    "sensitivity": sensitivity,
                    "schema": {c: t.value for c, t in schema.items()},
                },
                member=member,
                dataset=name,
            ),
        )
        return _info(row)


def list_datasets(consortium: Consortium) -> list[DatasetInfo]:
    with transaction(consortium.sessions) as session:
        return [_info(r) for r in all_rows(session, DatasetRow, DatasetRow.name)]
