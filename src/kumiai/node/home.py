"""A member's node home: its private key, its data files, what its steward signed or revoked.

This directory is the node's own authority. The coordinator's database only mirrors it.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.adapters.files import write_atomic, write_json_atomic
from kumiai.domain import keys
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.errors import InvalidInput, NotFound, UnsupportedVersion
from kumiai.domain.schema import ColumnType, Schema, TargetSpec, parse_target

# Ids that become file names: no path separators, no dot-dot, so no message can name a file
# outside the node home.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class LocalDataset:
    """The node's own record of a dataset: where the rows are and how to read them."""

    name: str
    file: Path
    sha256: str
    target: TargetSpec
    schema: Schema
    missing: dict[str, tuple[str, ...]]
    rows: int
    ignored: tuple[str, ...] = ()  # columns the steward left out (--ignore)

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.file),
            "sha256": self.sha256,
            "target": str(self.target),
            "schema": {c: t.value for c, t in self.schema.items()},
            "missing": {c: list(v) for c, v in self.missing.items()},
            "rows": self.rows,
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "LocalDataset":
        return cls(
            name=doc["name"],
            file=Path(doc["file"]),
            sha256=doc["sha256"],
            target=parse_target(doc["target"]),
            schema={c: ColumnType(t) for c, t in doc["schema"].items()},
            missing={c: tuple(v) for c, v in doc["missing"].items()},
            rows=int(doc["rows"]),
            ignored=tuple(doc.get("ignored", ())),
        )


class NodeHome:
    """Paths and durable reads/writes inside one member's home directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def member_name(self) -> str:
        return str(self._read_json(self.root / "member.json", "member record")["name"])

    # -- identity --------------------------------------------------------------------
    def create(self, name: str, kind: str, key: Ed25519PrivateKey, coordinator_key: str) -> str:
        """Write the member's identity and private key (0600). Returns the public key.

        The coordinator's public key is pinned here at joining: the node checks every tree
        head it witnesses against it.
        """
        if (self.root / "key.pem").exists():
            raise InvalidInput(f"{self.root} already holds a member key; choose another home")
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / "key.pem", keys.private_key_to_pem(key), mode=0o600)
        public = keys.public_key_b64(key)
        record = {
            "name": name,
            "kind": kind,
            "public_key": public,
            "previous_keys": [],
            "coordinator_key": coordinator_key,
        }
        write_json_atomic(self.root / "member.json", record)
        return public

    def rotate_key(self, key: Ed25519PrivateKey) -> str:
        """Make `key` the member's key; the old public keys stay valid for what they signed."""
        record = self._read_json(self.root / "member.json", "member record")
        retired = self.root / "retired-keys" / f"{keys.fingerprint(record['public_key'])}.pem"
        write_atomic(retired, (self.root / "key.pem").read_bytes(), mode=0o600)
        record["previous_keys"] = [*record.get("previous_keys", []), record["public_key"]]
        record["public_key"] = keys.public_key_b64(key)
        write_atomic(self.root / "key.pem", keys.private_key_to_pem(key), mode=0o600)
        write_json_atomic(self.root / "member.json", record)
        return str(record["public_key"])

    def steward_keys(self) -> tuple[str, ...]:
        """Every public key this member has held, newest first."""
        record = self._read_json(self.root / "member.json", "member record")
        return (str(record["public_key"]), *reversed(record.get("previous_keys", [])))

    def coordinator_key(self) -> str:
        record = self._read_json(self.root / "member.json", "member record")
        if not record.get("coordinator_key"):
            raise NotFound(f"{self.root}/member.json pins no coordinator key; re-join the node")
        return str(record["coordinator_key"])

    def witnessed_head(self) -> str | None:
        """The last tree head this node verified and cosigned (JSON), if any."""
        path = self.root / "witness.json"
        return path.read_text() if path.is_file() else None

    def save_witnessed_head(self, head_json: str) -> None:
        write_atomic(self.root / "witness.json", head_json.encode())

    def private_key(self) -> Ed25519PrivateKey:
        path = self.root / "key.pem"
        if not path.is_file():
            raise NotFound(f"no private key at {path}; this member's node home is incomplete")
        return keys.private_key_from_pem(path.read_bytes(), str(path))

    def public_key(self) -> str:
        return str(self._read_json(self.root / "member.json", "member record")["public_key"])

    @property
    def supernode_auth_file(self) -> Path:
        """The SuperNode's private authentication key (OpenSSH, 0600); never leaves the home."""
        return self.root / "supernode" / "supernode_auth"

    def supernode_key(self) -> str:
        """The SuperNode key's public line, the key pair made here on first use."""
        from kumiai.adapters.tls import supernode_auth_key

        public = self.supernode_auth_file.with_suffix(".pub")
        if not public.is_file():
            self.supernode_auth_file.parent.mkdir(parents=True, exist_ok=True)
            return supernode_auth_key(self.supernode_auth_file.parent).strip()
        return public.read_text().strip()

    # -- datasets --------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def save_dataset(self, dataset: LocalDataset) -> None:
        write_json_atomic(self.root / "datasets" / f"{dataset.name}.json", dataset.to_doc())

    def dataset(self, name: str) -> LocalDataset:
        path = self.root / "datasets" / f"{name}.json"
        if not path.is_file():
            raise NotFound(f"dataset {name!r} is not registered on the node at {self.root}")
        return LocalDataset.from_doc(self._read_json(path, "dataset record"))

    def dataset_names(self) -> list[str]:
        folder = self.root / "datasets"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def dataset_or_none(self, name: str) -> LocalDataset | None:
        return self.dataset(name) if (self.root / "datasets" / f"{name}.json").is_file() else None

    def forget_dataset(self, name: str) -> None:
        (self.root / "datasets" / f"{name}.json").unlink(missing_ok=True)

    # -- agreements and revocations ----------------------------------------------------
    def save_agreement(self, agreement: SignedAgreement) -> None:
        write_atomic(
            self.root / "agreements" / f"{agreement.terms.agreement_id}.json",
            agreement.to_json().encode(),
        )

    def agreements(self) -> list[SignedAgreement]:
        folder = self.root / "agreements"
        if not folder.is_dir():
            return []
        agreements = []
        for path in sorted(folder.glob("*.json")):
            try:
                agreements.append(SignedAgreement.from_json(path.read_text(encoding="utf-8")))
            except UnsupportedVersion as exc:
                raise UnsupportedVersion(f"this node home holds {path}: {exc}") from None
        return agreements

    def revoke(self, agreement_id: str, revoked_at: str, reason: str) -> None:
        write_json_atomic(
            self.root / "revoked" / f"{agreement_id}.json",
            {"agreement_id": agreement_id, "revoked_at": revoked_at, "reason": reason},
        )

    def revoked(self) -> frozenset[str]:
        folder = self.root / "revoked"
        return frozenset(p.stem for p in folder.glob("*.json")) if folder.is_dir() else frozenset()

    def agreement(self, agreement_id: str) -> SignedAgreement | None:
        """The node's own copy of an agreement its steward signed (None if it holds none)."""
        path = self.root / "agreements" / f"{agreement_id}.json"
        if not _SAFE_NAME.fullmatch(agreement_id) or not path.is_file():
            return None
        return SignedAgreement.from_json(path.read_text())

    # -- jobs this node admitted ---------------------------------------------------------
    def admission(self, job_id: str) -> dict[str, Any] | None:
        """The node's record of a job it admitted, or None if it never admitted it."""
        if not _SAFE_NAME.fullmatch(job_id):
            raise InvalidInput(f"job id {job_id!r} is not a valid name")
        path = self.root / "jobs" / f"{job_id}.json"
        return self._read_json(path, "admitted-job record") if path.is_file() else None

    def save_admission(self, job_id: str, record: dict[str, Any]) -> None:
        """Durable before the node answers: a killed process never forgets a round it did."""
        if not _SAFE_NAME.fullmatch(job_id):
            raise InvalidInput(f"job id {job_id!r} is not a valid name")
        write_json_atomic(self.root / "jobs" / f"{job_id}.json", record)

    # -- the node's own copies of its refusals --------------------------------------------
    def save_refusal(self, job_id: str, dataset: str, document: str) -> None:
        if not (_SAFE_NAME.fullmatch(job_id) and _SAFE_NAME.fullmatch(dataset)):
            raise InvalidInput(f"job {job_id!r} or dataset {dataset!r} is not a valid name")
        write_atomic(self.root / "refusals" / f"{job_id}.{dataset}.json", document.encode())

    def refusal_copies(self) -> list[str]:
        """Copies of refusals not yet seen in a head this node cosigned."""
        folder = self.root / "refusals"
        return [p.read_text() for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def refusal_witnessed(self, job_id: str, dataset: str) -> None:
        """The refusal is in a head this node cosigned: keep the copy, stop checking it."""
        name = f"{job_id}.{dataset}.json"
        source = self.root / "refusals" / name
        if source.is_file():
            write_atomic(self.root / "refusals" / "witnessed" / name, source.read_bytes())
            source.unlink()

    @staticmethod
    def _read_json(path: Path, what: str) -> dict[str, Any]:
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFound(f"{what} {path} does not exist; is this a kumiai node home?") from None
        except (json.JSONDecodeError, ValueError):
            raise InvalidInput(f"{what} {path} is not valid JSON; restore it from backup") from None
