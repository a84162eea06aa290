"""The transparency ledger: every act recorded and signed, tampering named, forks caught."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow, TreeHeadRow
from kumiai.domain import keys, merkle
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, UnsupportedVersion
from kumiai.domain.ledger import Entry, SignedEntry, TreeHead, sign_entry, sign_head
from kumiai.node.home import NodeHome
from kumiai.services import members, transparency
from kumiai.services.agreements import list_agreements, revoke_agreement
from kumiai.services.consortium import Consortium, init_consortium, open_consortium
from tests.services.helpers import heart_consortium

pytestmark = pytest.mark.usefixtures("backend")  # on SQLite and on PostgreSQL


@pytest.fixture
def consortium(tmp_path: Path) -> Consortium:
    built, _ = heart_consortium(
        tmp_path / "c", hospitals=("cleveland-clinic", "va-long-beach"), sign=("cleveland-clinic",)
    )
    transparency.witness_all(built)
    return built


def _export(consortium: Consortium, tmp_path: Path) -> tuple[Path, list[dict]]:
    path = tmp_path / "ledger.jsonl"
    transparency.export_ledger(consortium, path)
    return path, [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def _first_problem(path: Path) -> str:
    report = transparency.verify_export(path)
    assert not report.ok
    return str(report.findings[0])


def test_every_governance_act_is_an_entry_signed_by_its_actor(consortium: Consortium) -> None:
    kinds = [(e.actor, e.kind) for e in transparency.show_entries(consortium)]
    assert kinds[0] == ("coordinator", "consortium.created")
    assert ("lab", "member.joined") in kinds
    assert ("cleveland-clinic", "dataset.registered") in kinds
    assert ("lab", "project.proposed") in kinds and (
        "cleveland-clinic",
        "project.approved",
    ) in kinds
    assert ("lab", "request.made") in kinds and ("cleveland-clinic", "agreement.signed") in kinds
    [signed] = transparency.show_entries(consortium, kind="agreement.signed")
    assert signed.payload["agreement"]["dataset"] == "cleveland-clinic-heart"
    assert [
        e.kind for e in transparency.show_entries(consortium, dataset="va-long-beach-heart")
    ] == ["dataset.registered", "request.made"]
    report = transparency.verify_ledger(consortium)
    assert report.ok, report.findings
    assert report.cosignatures == 3  # every member's node cosigned the head


def test_tables_and_log_never_disagree_when_a_change_fails(consortium: Consortium) -> None:
    before = consortium.ledger.tree().size
    with pytest.raises(InvalidInput):
        members.add_member(consortium, "lab", "university")  # exists: the change rolls back
    assert consortium.ledger.tree().size == before
    members.add_member(consortium, "newcomer", "startup")
    assert consortium.ledger.tree().size == before + 1
    assert transparency.verify_ledger(consortium).ok


def test_inclusion_proofs_verify_against_the_signed_head(consortium: Consortium) -> None:
    proof = transparency.prove_inclusion(consortium, 3)
    assert proof.verified and proof.head.size == consortium.ledger.tree().size
    bad = [bytes.fromhex(h) for h in proof.path]
    bad[0] = bytes(32)
    assert not merkle.verify_inclusion(
        bytes.fromhex(proof.leaf_hash), 3, proof.head.size, bad, bytes.fromhex(proof.head.root)
    )


def test_a_changed_byte_in_an_entry_is_named(consortium: Consortium, tmp_path: Path) -> None:
    path, records = _export(consortium, tmp_path)
    changed = records[4]["leaf"].replace('"rows":304', '"rows":305')  # line 5 holds entry 3
    assert changed != records[4]["leaf"]
    records[4]["leaf"] = changed
    _write(path, records)
    assert _first_problem(path).startswith("entry 3")


def test_a_deleted_entry_is_named(consortium: Consortium, tmp_path: Path) -> None:
    path, records = _export(consortium, tmp_path)
    del records[4]  # entry 3
    _write(path, records)
    assert "entry 3: carries sequence number 4" in _first_problem(path)


def test_reordered_entries_are_named(consortium: Consortium, tmp_path: Path) -> None:
    path, records = _export(consortium, tmp_path)
    records[3], records[4] = records[4], records[3]
    _write(path, records)
    assert "entry 2: carries sequence number 3" in _first_problem(path)


def test_swapped_and_forged_signatures_are_named(consortium: Consortium, tmp_path: Path) -> None:
    path, records = _export(consortium, tmp_path)
    leaves = [json.loads(records[i]["leaf"]) for i in (6, 7)]
    leaves[0]["signature"], leaves[1]["signature"] = leaves[1]["signature"], leaves[0]["signature"]
    records[6]["leaf"], records[7]["leaf"] = (
        json.dumps(v, sort_keys=True, separators=(",", ":")) for v in leaves
    )
    _write(path, records)
    problem = _first_problem(path)
    assert problem.startswith("entry 5") and "signature does not verify" in problem

    path, records = _export(consortium, tmp_path)
    leaf = json.loads(records[9]["leaf"])
    leaf["signature"] = keys.sign(keys.new_private_key(), b"anything")
    records[9]["leaf"] = json.dumps(leaf, sort_keys=True, separators=(",", ":"))
    _write(path, records)
    assert _first_problem(path).startswith("entry 8")


def test_an_entry_signed_by_an_unregistered_key_is_named(
    consortium: Consortium, tmp_path: Path
) -> None:
    path, records = _export(consortium, tmp_path)
    size = len([r for r in records if r.get("record") == "entry"])
    impostor = sign_entry(
        Entry(size, utc_now(), "lab", "project.closed", {"project": "heart"}),
        keys.new_private_key(),
    )
    records.insert(size + 1, {"record": "entry", "leaf": impostor.leaf_bytes().decode()})
    _write(path, records)
    problems = [str(f) for f in transparency.verify_export(path).findings]
    assert any(
        p.startswith(f"entry {size}") and "not 'lab''s registered key" in p for p in problems
    ), problems


def test_a_key_rotation_changes_which_key_is_valid(consortium: Consortium, tmp_path: Path) -> None:
    old = NodeHome(consortium.member_home("lab")).private_key()
    members.rotate_key(consortium, "lab")
    members.add_member(consortium, "after-rotation", "startup")
    assert transparency.verify_ledger(consortium).ok
    path, records = _export(consortium, tmp_path)
    size = len([r for r in records if r.get("record") == "entry"])
    stale = sign_entry(Entry(size, utc_now(), "lab", "project.closed", {"project": "heart"}), old)
    records.insert(size + 1, {"record": "entry", "leaf": stale.leaf_bytes().decode()})
    _write(path, records)
    problems = [str(f) for f in transparency.verify_export(path).findings]
    assert any(p.startswith(f"entry {size}") and "registered key" in p for p in problems)


def test_the_keys_file_pins_each_member_at_joining_so_a_rotation_still_verifies(
    consortium: Consortium, tmp_path: Path
) -> None:
    """`ledger export --keys` after a rotation: the verifier pins the key a member joined with
    and follows `member.key-rotated` through the log, so the file must hold the joining key."""
    joined = keys.public_key_b64(NodeHome(consortium.member_home("lab")).private_key())
    members.rotate_key(consortium, "lab")
    pinned = transparency.member_keys(consortium)
    assert pinned["lab"] == joined
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(pinned))
    path, _ = _export(consortium, tmp_path)
    report = transparency.verify_export(path, keys_file)
    assert report.ok, [str(f) for f in report.findings]


def test_a_head_inconsistent_with_an_earlier_one_is_named(
    consortium: Consortium, tmp_path: Path
) -> None:
    path, records = _export(consortium, tmp_path)
    coordinator = consortium.coordinator_key()
    index = next(
        i
        for i, r in enumerate(records)
        if r.get("record") == "tree-head" and r["head"]["size"] == 5
    )
    head = TreeHead(5, "00" * 32, utc_now())
    signed = sign_head(head, coordinator)
    records[index] = {"record": "tree-head", **json.loads(signed.to_json())}
    _write(path, records)
    problems = [str(f) for f in transparency.verify_export(path).findings]
    assert any(p.startswith("tree head 5: root does not match") for p in problems)
    assert any(p.startswith("tree heads 4 and 5") for p in problems)


def test_a_malformed_export_is_a_clear_error(tmp_path: Path, consortium: Consortium) -> None:
    path, _ = _export(consortium, tmp_path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:20]
    path.write_text("\n".join(lines))
    with pytest.raises(InvalidInput, match=r"line 4: .* the export is malformed"):
        transparency.verify_export(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        transparency.verify_export(tmp_path / "absent.jsonl")


def test_witnesses_catch_a_coordinator_that_rewrites_an_old_entry(consortium: Consortium) -> None:
    with transaction(consortium.sessions) as session:
        row = session.get(LedgerEntryRow, 3)
        assert row is not None
        rewritten = row.leaf.replace('"rows":304', '"rows":30')  # understate the data used
        assert rewritten != row.leaf
        session.execute(
            update(LedgerEntryRow)
            .where(LedgerEntryRow.seq == 3)
            .values(leaf=rewritten, leaf_hash=merkle.leaf_hash(rewritten.encode()))
        )
        size = session.scalar(select(TreeHeadRow.size).order_by(TreeHeadRow.size.desc()))
    # The dishonest coordinator re-signs a head over its rewritten history.
    reopened = open_consortium(consortium.home)
    tree = reopened.ledger.tree()
    forged = sign_head(
        TreeHead(tree.size, tree.root().hex(), utc_now()), reopened.coordinator_key()
    )
    with transaction(reopened.sessions) as session:
        session.merge(TreeHeadRow(size=size, document=forged.to_json()))
    verdicts = transparency.witness_all(reopened)
    assert all(not v.accepted and "forked or rewrote" in v.reason for v in verdicts.values())
    report = transparency.verify_ledger(reopened)
    assert any(str(f).startswith("entry 3") for f in report.findings)


def test_witnesses_catch_a_fork(consortium: Consortium, tmp_path: Path, backend: str) -> None:
    """The coordinator shows one history to cleveland and another to va-long-beach."""
    if backend != "sqlite":
        pytest.skip("the fork is made by copying the home with its SQLite file")
    fork_home = tmp_path / "fork"
    shutil.copytree(consortium.home, fork_home)
    forked = open_consortium(fork_home)
    members.add_member(consortium, "shown-to-cleveland", "startup")
    members.add_member(forked, "shown-to-va", "company")
    cleveland, va = consortium.node("cleveland-clinic"), forked.node("va-long-beach")
    honest = transparency.witness_all(consortium)
    assert honest["cleveland-clinic"].accepted
    assert transparency.witness_all(forked)["va-long-beach"].accepted
    # Now cleveland is shown the other history: no proof from its head can exist.
    with transaction(forked.sessions) as session:
        other_head = forked.ledger.latest_head(session)
    assert other_head is not None
    last = cleveland.last_witnessed()
    assert last is not None and last.size == other_head.size and last.root != other_head.root
    result = cleveland.witness(
        other_head, forked.ledger.tree().consistency_proof(last.size, other_head.size)
    )
    assert not result.verdict.accepted and "forked" in result.verdict.reason
    assert va.last_witnessed() == other_head


def test_a_revocation_is_recorded_by_the_steward(consortium: Consortium) -> None:
    [agreement] = list_agreements(consortium)
    revoke_agreement(consortium, agreement.id, "consent withdrawn")
    [entry] = transparency.show_entries(consortium, kind="agreement.revoked")
    assert entry.actor == "cleveland-clinic" and entry.payload["reason"] == "consent withdrawn"
    rows = transparency.show_entries(consortium, member="cleveland-clinic")
    assert rows[-1].kind == "agreement.revoked"
    assert SignedEntry  # the leaf type is part of the public record format


APPENDER = """
import sys
from pathlib import Path
from kumiai.adapters.storage.database import transaction
from kumiai.services.consortium import open_consortium
from kumiai.services.ledger import Act

consortium = open_consortium(Path(sys.argv[1]))
for i in range(100000):
    with transaction(consortium.sessions) as session:
        [entry] = consortium.ledger.append_many(
            session, [Act("coordinator", "round.completed", {"job": "soak", "round": i})])
    print(entry.entry.seq, flush=True)  # acknowledged: committed before this line is written
"""


def test_appends_acknowledged_before_a_kill_survive_it(
    consortium: Consortium, tmp_path: Path
) -> None:
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(consortium.home)], stdout=subprocess.PIPE, text=True
    )
    acknowledged, target = -1, consortium.ledger.tree().size + 150
    assert process.stdout is not None
    for line in process.stdout:
        acknowledged = int(line)
        if acknowledged >= target:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    reopened = open_consortium(consortium.home)
    assert reopened.ledger.tree().size > acknowledged
    report = transparency.verify_ledger(reopened)
    assert report.ok, report.findings[:3]
    members.add_member(reopened, "after-the-crash", "startup")  # the log goes on
    assert transparency.verify_ledger(reopened).ok


WRITER = """
import sys
from pathlib import Path
from kumiai.adapters.storage.database import transaction
from kumiai.services.consortium import open_consortium
from kumiai.services.ledger import Act

consortium = open_consortium(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()  # both writers start together
for i in range(int(sys.argv[3])):
    with transaction(consortium.sessions) as session:
        [entry] = consortium.ledger.append_many(
            session, [Act("coordinator", "round.completed", {"job": sys.argv[2], "round": i})])
    print(entry.entry.seq, flush=True)
"""


def test_two_coordinator_processes_appending_at_once_keep_one_gap_free_sequence(
    consortium: Consortium, tmp_path: Path
) -> None:
    script, appends = tmp_path / "writer.py", 120
    script.write_text(WRITER)
    before = consortium.ledger.tree().size
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(consortium.home), name, str(appends)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("writer-a", "writer-b")
    ]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0]
    seqs = [[int(line) for line in output.split()] for output in outputs]
    assert all(len(s) == appends and s == sorted(s) for s in seqs)
    assert sorted(seqs[0] + seqs[1]) == list(range(before, before + 2 * appends))
    reopened = open_consortium(consortium.home)
    assert reopened.ledger.tree().size == before + 2 * appends
    report = transparency.verify_ledger(reopened)
    assert report.ok, report.findings[:3]


def test_a_home_written_by_an_older_kumiai_is_refused_by_name(tmp_path: Path) -> None:
    """Its signed history is in the old canonical form; nothing may extend it."""
    home = tmp_path / "old"
    init_consortium(home)
    marker = home / "consortium.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "version": 1}))
    for opening in (open_consortium, init_consortium):
        with pytest.raises(UnsupportedVersion) as refused:
            opening(home)
        message = str(refused.value)
        assert "this consortium home" in message and "older kumiai" in message
        assert "kumiai.consortium version 1" in message and "only version 2" in message
