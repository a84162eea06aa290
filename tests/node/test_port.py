"""The node port: what the coordinator may ask of a node, and that the key never leaves it."""

import ast
import inspect
import stat
from pathlib import Path

import pytest

from kumiai.domain import keys, merkle
from kumiai.domain.agreement import signature_is_valid
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.ledger import (
    Entry,
    TreeHead,
    cosignature_valid,
    entry_signature_valid,
    sign_head,
)
from kumiai.domain.schema import ColumnType, parse_target
from kumiai.node.home import LocalDataset
from kumiai.node.port import LocalNode, NodePort
from tests.conftest import COORDINATOR_KEY, COORDINATOR_PUBLIC, make_terms

SRC = Path(__file__).resolve().parents[2] / "src" / "kumiai"
MEMBER, DATASET = "cleveland", "cleveland-heart"


@pytest.fixture
def node(tmp_path: Path) -> LocalNode:
    local = LocalNode(tmp_path / MEMBER)
    local.join(MEMBER, "hospital", COORDINATOR_PUBLIC)
    record = LocalDataset(
        name=DATASET,
        file=tmp_path / "rows.csv",
        sha256="0" * 64,
        target=parse_target("num>0"),
        schema={"age": ColumnType.NUMERIC},
        missing={},
        rows=10,
    )
    local.home.save_dataset(record)
    return local


def port_operations() -> set[str]:
    return {name for name in vars(NodePort) if not name.startswith("_")}


def test_the_local_node_offers_every_operation_of_the_port() -> None:
    assert {"address", "sign_entry", "sign_agreement", "client_app"} <= port_operations()
    missing = [name for name in port_operations() if not hasattr(LocalNode, name)]
    assert missing == []


def test_the_port_hands_out_signatures_never_a_private_key() -> None:
    assert not any("private" in name for name in port_operations())
    for name in port_operations():
        member = getattr(NodePort, name)
        hints = inspect.signature(member.fget if isinstance(member, property) else member)
        assert "Ed25519PrivateKey" not in str(hints), name


def test_the_node_makes_its_own_key_and_keeps_it_private(node: LocalNode) -> None:
    key_file = node.home.root / "key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert node.public_key() == keys.public_key_b64(node.home.private_key())
    assert node.address == str(node.home.root)


def test_the_node_signs_its_own_ledger_entries_only(node: LocalNode) -> None:
    entry = Entry(3, utc_now(), MEMBER, "project.closed", {"project": "heart"})
    assert entry_signature_valid(node.sign_entry(entry), node.public_key())
    with pytest.raises(InvalidInput, match="its own acts"):
        node.sign_entry(Entry(3, utc_now(), "va-long-beach", "project.closed", {}))


def test_the_steward_signs_agreements_for_its_own_datasets_only(node: LocalNode) -> None:
    signed = node.sign_agreement(make_terms(steward=MEMBER, dataset=DATASET))
    assert signature_is_valid(signed, node.public_key())
    node.store_agreement(signed)
    assert node.home.agreement(signed.terms.agreement_id) == signed
    with pytest.raises(InvalidInput, match="its own agreements"):
        node.sign_agreement(make_terms(steward="va-long-beach", dataset=DATASET))
    with pytest.raises(NotFound):
        node.sign_agreement(make_terms(steward=MEMBER, dataset="someone-else-heart"))


def test_a_key_rotation_happens_inside_the_node(node: LocalNode) -> None:
    old = node.public_key()
    with pytest.raises(InvalidInput, match="no new key waits"):
        node.rotate_key()
    waiting = node.next_key()
    assert node.next_key() == waiting  # asked twice, the same key waits
    entry = Entry(5, utc_now(), MEMBER, "member.key-rotated", {"public_key": waiting})
    assert entry_signature_valid(node.sign_entry(entry), old)  # still the old key until rotated
    assert node.rotate_key() == waiting == node.public_key()
    assert node.steward_keys() == (waiting, old)
    assert entry_signature_valid(node.sign_entry(entry), waiting)


def test_budgets_are_set_read_and_released_at_the_node(node: LocalNode) -> None:
    node.set_budget(DATASET, 3.0)
    view = node.budget(DATASET)
    assert view.lifetime == 3.0 and view.spent == 0.0
    assert node.release_privacy(DATASET, "job-never-reserved") is False


def test_the_node_witnesses_and_cosigns_a_head(node: LocalNode) -> None:
    tree = merkle.MerkleTree(merkle.leaf_hash(bytes([i])) for i in range(3))
    head = sign_head(TreeHead(3, tree.root().hex(), utc_now()), COORDINATOR_KEY)
    assert node.last_witnessed() is None
    seen = node.witness(head, [])
    assert seen.verdict.accepted and seen.cosignature is not None
    assert cosignature_valid(head, MEMBER, seen.cosignature, node.public_key())
    assert node.last_witnessed() == head
    assert node.refusal_copies() == []


def _node_imports(path: Path) -> list[str]:
    imported = []
    for statement in ast.walk(ast.parse(path.read_text())):
        if isinstance(statement, ast.ImportFrom) and statement.module:
            names = [f"{statement.module}.{a.name}" for a in statement.names]
            imported += [statement.module] if statement.module != "kumiai.node" else names
        elif isinstance(statement, ast.Import):
            imported += [a.name for a in statement.names]
    return [m for m in imported if m.startswith("kumiai.node") and m != "kumiai.node.port"]


def test_the_coordinators_side_imports_only_the_port_from_the_node() -> None:
    """The import-linter contract, checked here too so a plain test run catches it."""
    allowed = {"benchmarks/attacks.py": ["kumiai.node.spendlog"]}  # it truncates a spend log
    found = {}
    for folder in ("services", "benchmarks"):
        for path in sorted((SRC / folder).glob("*.py")):
            name = f"{folder}/{path.name}"
            imports = [m for m in _node_imports(path) if m not in allowed.get(name, [])]
            if imports:
                found[name] = imports
    assert found == {}, f"reach the node through kumiai.node.port instead: {found}"


def test_the_scan_catches_a_service_reaching_into_a_node_home(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from kumiai.node.home import NodeHome\nfrom kumiai.node import witnessing\n")
    assert _node_imports(bad) == ["kumiai.node.home", "kumiai.node.witnessing"]


def test_joining_twice_keeps_the_first_key(node: LocalNode) -> None:
    public = node.public_key()
    with pytest.raises(InvalidInput, match="already holds a member key"):
        node.join(MEMBER, "hospital", COORDINATOR_PUBLIC)
    entry = Entry(1, utc_now(), MEMBER, "project.closed", {"project": "heart"})
    assert entry_signature_valid(node.sign_entry(entry), public)
