"""Governance through the services: members, catalogue, projects, requests, agreements."""

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kumiai.adapters.storage.database import database_url
from kumiai.adapters.storage.schema import Base
from kumiai.domain import keys
from kumiai.domain.agreement import SignedAgreement, signature_is_valid
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound, SchemaMismatch, StateError
from kumiai.node.home import NodeHome
from kumiai.services import agreements, datasets, members, projects
from kumiai.services.consortium import init_consortium, open_consortium
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.usefixtures("backend")  # on SQLite and on PostgreSQL


def _database_bytes(home: Path) -> bytes:
    """SQLite: the file after folding the write-ahead log into it. Else: every row."""
    url = database_url(home)
    if not url.startswith("sqlite"):
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as connection:
            rows = [
                repr(tuple(row)).encode()
                for table in Base.metadata.sorted_tables
                for row in connection.execute(text(f"SELECT * FROM {table.name}"))
            ]
        engine.dispose()
        return b"\n".join(rows)
    with sqlite3.connect(home / "kumiai.db") as db:
        db.execute("PRAGMA wal_checkpoint(FULL)")
    return (home / "kumiai.db").read_bytes()


def test_a_member_gets_a_private_key_only_in_its_own_home(home: Path) -> None:
    consortium = init_consortium(home)
    info = members.add_member(consortium, "cleveland", "hospital")
    key_file = Path(info.home) / "key.pem"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    public = NodeHome(Path(info.home)).public_key()
    assert keys.fingerprint(public) == info.key_fingerprint
    database = _database_bytes(home)
    assert b"PRIVATE KEY" not in database and public.encode() in database


def test_unknown_names_and_bad_kinds_are_one_line_errors(home: Path) -> None:
    consortium = init_consortium(home)
    with pytest.raises(InvalidInput, match="use one of: university, company"):
        members.add_member(consortium, "x", "bank")
    with pytest.raises(NotFound, match="unknown member 'ghost'; see `kumiai member list`"):
        projects.propose_project(consortium, name="p", title="", purpose="x", proposed_by="ghost")
    with pytest.raises(NotFound, match="no consortium at"):
        open_consortium(home.parent / "elsewhere")


def test_the_catalogue_holds_metadata_but_never_rows(tmp_path: Path) -> None:
    home = tmp_path / "c"
    consortium, _ = heart_consortium(home, hospitals=("cleveland-clinic",), sign=())
    [info] = datasets.list_datasets(consortium)
    assert info.rows == 304 and info.target == "num>0" and len(info.sha256) == 64
    assert info.schema["cp"] == "categorical" and info.schema["chol"] == "numeric"
    assert "id" not in info.schema
    stored = _database_bytes(home)
    assert b"typical angina" not in stored and b"lv hypertrophy" not in stored
    node_copy = NodeHome(consortium.member_home("cleveland-clinic")).dataset(
        "cleveland-clinic-heart"
    )
    assert node_copy.file.is_file() and node_copy.file.is_relative_to(consortium.home)


def test_a_bad_cell_aborts_registration_without_leaving_anything(
    home: Path, tmp_path: Path
) -> None:
    consortium = init_consortium(home)
    members.add_member(consortium, "site", "hospital")
    path = tmp_path / "bad.csv"
    path.write_text("age,num\n63,0\nsixty,1\n")
    with pytest.raises(InvalidInput, match=r"row 2 .* column 'age'"):
        datasets.register_dataset(
            consortium,
            member="site",
            file=path,
            name="d",
            target="num",
            column_types={"age": datasets.ColumnType.NUMERIC},
        )
    assert datasets.list_datasets(consortium) == []
    assert not any((consortium.member_home("site") / "data").glob("*"))


def test_a_signed_agreement_lives_on_the_node_and_verifies(tmp_path: Path) -> None:
    consortium, requests = heart_consortium(tmp_path / "c", hospitals=("cleveland-clinic",))
    node = NodeHome(consortium.member_home("cleveland-clinic"))
    [agreement] = node.agreements()
    assert signature_is_valid(agreement, node.public_key())
    assert agreement.terms.request_id == requests["cleveland-clinic"]
    [mirror] = agreements.list_agreements(consortium)
    assert mirror.id == agreement.terms.agreement_id
    with pytest.raises(StateError, match="already signed"):
        agreements.sign_request(consortium, requests["cleveland-clinic"])


def test_revocation_is_written_to_the_node_first(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=("cleveland-clinic",))
    [mirror] = agreements.list_agreements(consortium)
    agreements.revoke_agreement(consortium, mirror.id, "consent withdrawn")
    assert mirror.id in NodeHome(consortium.member_home("cleveland-clinic")).revoked()
    with pytest.raises(StateError, match="already revoked"):
        agreements.revoke_agreement(consortium, mirror.id, "again")


def test_requests_need_an_active_project_and_a_future_expiry(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=("cleveland-clinic",), sign=())
    with pytest.raises(InvalidInput, match="in the past"):
        agreements.request_data_use(
            consortium,
            project="heart",
            dataset="cleveland-clinic-heart",
            requested_by="lab",
            expires_at=utc_now() - timedelta(days=1),
        )
    projects.close_project(consortium, "heart", "lab")
    with pytest.raises(StateError, match="closed, not active"):
        agreements.request_data_use(
            consortium,
            project="heart",
            dataset="cleveland-clinic-heart",
            requested_by="lab",
            expires_at=utc_now() + timedelta(days=1),
        )


def test_a_dataset_whose_columns_differ_is_refused_with_the_columns(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=("cleveland-clinic",), sign=())
    members.add_member(consortium, "other", "hospital")
    path = tmp_path / "other.csv"
    rows = "".join(f"{60 + i},{('Male', 'Female')[i % 2]},{70 + i},{i % 2}\n" for i in range(10))
    path.write_text("age,sex,weight,num\n" + rows)
    datasets.register_dataset(
        consortium, member="other", file=path, name="other-heart", target="num>0"
    )
    with pytest.raises(SchemaMismatch) as error:
        agreements.request_data_use(
            consortium,
            project="heart",
            dataset="other-heart",
            requested_by="lab",
            expires_at=utc_now() + timedelta(days=1),
        )
    message = str(error.value)
    assert "other-heart lacks" in message and "chol" in message
    assert "cleveland-clinic-heart lacks weight" in message


def test_the_database_url_setting_selects_another_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_db = tmp_path / "elsewhere.db"
    monkeypatch.setenv("KUMIAI_DATABASE_URL", f"sqlite:///{url_db}")
    consortium = init_consortium(tmp_path / "home")
    members.add_member(consortium, "a", "startup")
    assert url_db.is_file() and not (tmp_path / "home" / "kumiai.db").exists()
    assert [m.name for m in members.list_members(open_consortium(tmp_path / "home"))] == ["a"]
    monkeypatch.setenv("KUMIAI_DATABASE_URL", "nosuchdb://x")
    with pytest.raises(InvalidInput, match="KUMIAI_DATABASE_URL"):
        init_consortium(tmp_path / "home2")
    assert os.environ["KUMIAI_DATABASE_URL"] == "nosuchdb://x"


def test_agreement_documents_in_the_node_home_are_canonical_json(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=("cleveland-clinic",))
    folder = consortium.member_home("cleveland-clinic") / "agreements"
    [path] = list(folder.glob("*.json"))
    text = path.read_text()
    assert " " not in text.split('"purpose"')[0]  # no spaces before the free-text fields
    assert SignedAgreement.from_json(text).terms.project == "heart"
