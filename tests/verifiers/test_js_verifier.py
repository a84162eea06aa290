"""The JavaScript verifier (verifiers/js) and kumiai's own auditor agree, entry by entry.

A real ledger is built through kumiai's services and exported; then it is tampered with in
the ways an auditor must catch. On every variant both verifiers must give the same verdict
for each entry, tree head, pair of heads and cosignature, and the honest export must pass
in both. The signed bytes are RFC 8785 canonical JSON, so the ledger also carries what
canonical forms get wrong: large and small floats, non-ASCII names, and keys that sort
differently by code point and by UTF-16 code unit.
"""

import json
import random
import shutil
import struct
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from kumiai.adapters.storage.database import transaction
from kumiai.domain import keys, merkle
from kumiai.domain.audit import report_document
from kumiai.domain.canonical import canonical_json, load_json
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, UnsupportedVersion
from kumiai.domain.ledger import (
    COSIGN_TYPE,
    ENTRY_TYPE,
    HEAD_TYPE,
    KINDS,
    VERSION,
    Entry,
    SignedEntry,
    TreeHead,
    cosign,
    sign_entry,
    sign_head,
)
from kumiai.node.home import NodeHome
from kumiai.services import (
    charter,
    funds,
    members,
    milestones,
    motions,
    privacy,
    spend,
    themes,
    transparency,
)
from kumiai.services.consortium import Consortium
from kumiai.services.ledger import Act
from kumiai.services.projects import propose_project
from tests.services.helpers import heart_consortium

VERIFIER = Path(__file__).resolve().parents[2] / "verifiers" / "js" / "verify.mjs"
MINIMUM_NODE = 18
# The CLI only takes slugs, but the ledger and its verifiers must carry any Unicode name.
UNICODE_MEMBER = unicodedata.normalize("NFC", "ü-クリニック")
FLOATS = {
    "job": "jcs-floats",
    "round": 1,
    "epsilon": 0.1 + 0.2,  # 0.30000000000000004
    "delta": 1e-7,
    "examples": 1e21,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "minus_zero": -0.0,
    "whole": 100.0,
    "third": 1 / 3,
    "largest_exact_integer": 2**53 - 1,
    "metrics": {"auc": 0.8123456789012345, "loss": 1e-21, "accuracy": 0.000001},
    # By code point U+E000 sorts before U+1F600; by UTF-16 code unit (0xE000 > 0xD83D), after.
    "order": {"\ue000": "private use", "😀": "astral", "a": "ascii", "é": "latin", "\x80": "c1"},
}
RECOVERED = {  # the spend a node logged that a killed coordinator never recorded
    "job": "jcs-floats",
    "dataset": "va-long-beach-heart",
    "epsilon": 0.8,
    "recorded_epsilon": 0.6000000000000001,
    "rounds": [4],
}


def _node() -> str:
    """The node binary; a missing or old one fails the test (CI must run it), never skips."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "`node` is not on PATH: this test runs the JavaScript ledger verifier and needs "
            "Node.js 18 or newer; install it (e.g. `apt-get install nodejs`, or nodejs.org)"
        )
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MINIMUM_NODE:
        pytest.fail(f"node {version} is too old for verifiers/js: install Node.js 18 or newer")
    return node


def run_js(export: Path, keys_file: Path | None) -> tuple[int, dict[str, Any]]:
    args = [_node(), str(VERIFIER), str(export), *([str(keys_file)] if keys_file else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@dataclass(frozen=True)
class Built:
    consortium: Consortium
    export: Path
    keys_file: Path
    records: list[dict[str, Any]]  # the export's lines, parsed


def _join_by_hand(consortium: Consortium, name: str) -> None:
    """A member whose name the CLI would refuse, joined through the ledger itself."""
    key = keys.new_private_key()
    public = NodeHome(consortium.member_home(name)).create(
        name, "hospital", key, consortium.coordinator_public_key()
    )
    with transaction(consortium.sessions) as session:
        consortium.ledger.append(
            session,
            Act(name, "member.joined", {"member": name, "kind": "hospital", "public_key": public}),
        )


def _board_approves(consortium: Consortium, project: str) -> None:
    """A charter signed by every founder, a project approved by vote, a motion left open."""
    founders = ("cleveland-clinic", "lab", "va-long-beach")
    charter.propose_charter(consortium, proposed_by="lab", founders=founders)
    for member in founders:
        charter.sign_charter(consortium, member)
    motion = motions.propose_motion(
        consortium, decision="approve-project", payload={"project": project}, proposer="lab"
    )
    for member, choice in zip(founders, ("yes", "yes", "no"), strict=True):
        motions.cast_vote(consortium, motion.id, member, choice)
    motions.close_motion(consortium, motion.id)  # every seat has voted
    spinout = motions.propose_motion(
        consortium,
        decision="create-spinout",
        payload={"spinout": "kokoro-labs", "founders": ["va-long-beach"], "project": project},
        proposer="lab",
    )
    motions.cast_vote(consortium, spinout.id, "cleveland-clinic", "abstain")


def _association(consortium: Consortium, evidence: Path) -> None:
    """A theme ranked, funds allocated, spend recorded, a milestone accepted: every kind the
    association writes is in the export."""
    themes.add_theme(consortium, name="medical", title="医療 AI", by="lab")
    themes.set_project_theme(consortium, "kokoro", "medical", "lab")
    funds.receive_funds(
        consortium, source="nedo-grant", kind="grant", payer="NEDO", amount=10_000_000
    )
    spend.record_spend(
        consortium, project="kokoro", category="compute", amount=1, description="GPU", by="lab"
    )
    milestones.add_milestone(
        consortium, project="kokoro", name="m1", title="最初", due="2026-12-31", by="lab"
    )
    evidence.write_text("結果")
    milestones.add_evidence(consortium, project="kokoro", name="m1", documents=(evidence,))
    for decision, payload in (
        ("set-priorities", {"ranking": ["medical"]}),
        ("allocate-funds", {"project": "kokoro", "amount": 9_007_199, "source": "nedo-grant"}),
        ("accept-milestone", {"project": "kokoro", "milestone": "m1"}),
    ):
        motion = motions.propose_motion(
            consortium, decision=decision, payload=payload, proposer="lab"
        )
        for member in ("cleveland-clinic", "lab", "va-long-beach"):
            motions.cast_vote(consortium, motion.id, member, "yes")
        motions.close_motion(consortium, motion.id)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("js-verifier")
    consortium, _ = heart_consortium(
        root / "c", hospitals=("cleveland-clinic", "va-long-beach"), sign=("cleveland-clinic",)
    )
    keys_file = root / "keys.json"  # pinned as an auditor received them, before any rotation
    keys_file.write_text(json.dumps(transparency.member_keys(consortium)))
    propose_project(
        consortium,
        name="kokoro",
        title="心の研究",
        purpose="Diagnosis support — 診断支援 für Ärztinnen 😀",
        proposed_by="lab",
        members=("cleveland-clinic",),
    )
    _board_approves(consortium, "kokoro")
    _association(consortium, root / "evidence.txt")
    privacy.set_budget(consortium, "va-long-beach-heart", 0.1 + 0.2)  # the steward's node signs
    transparency.witness_all(consortium)
    members.rotate_key(consortium, "cleveland-clinic")  # later cosignatures use the new key
    _join_by_hand(consortium, UNICODE_MEMBER)
    with transaction(consortium.sessions) as session:
        consortium.ledger.append_many(
            session,
            [
                Act("coordinator", "round.completed", FLOATS),
                Act(
                    UNICODE_MEMBER,
                    "job.refused",
                    {"job": "jcs-floats", "reason": "同意がありません", "epsilon": 1e-7},
                ),
                Act("va-long-beach", "privacy.recovered", RECOVERED),
            ],
        )
    transparency.witness_all(consortium)
    export = root / "ledger.jsonl"
    transparency.export_ledger(consortium, export)
    records = [json.loads(line) for line in export.read_text().splitlines()]
    return Built(consortium, export, keys_file, records)


# -- tampering ---------------------------------------------------------------------------
Records = list[dict[str, Any]]


def _seq(records: Records, kind: str, actor: str | None = None, nth: int = 0) -> int:
    """The sequence number of the nth entry of this kind (and actor)."""
    found = [
        entry["seq"]
        for entry in (json.loads(r["leaf"])["entry"] for r in records if r.get("record") == "entry")
        if entry["kind"] == kind and actor in (None, entry["actor"])
    ]
    return found[nth]


def _edit_leaf(records: Records, seq: int, old: str, new: str) -> Records:
    """Replace text inside one entry's leaf (record seq + 1: line 1 is the header)."""
    leaf = records[seq + 1]["leaf"]
    assert old in leaf, (old, leaf)
    records[seq + 1] = {**records[seq + 1], "leaf": leaf.replace(old, new)}
    return records


def _head(records: Records, nth: int) -> int:
    return [i for i, r in enumerate(records) if r.get("record") == "tree-head"][nth]


def changed_payload_byte(records: Records, built: Built) -> Records:
    seq = _seq(records, "dataset.registered", "cleveland-clinic")
    return _edit_leaf(records, seq, '"rows":304', '"rows":305')


def swapped_signatures(records: Records, built: Built) -> Records:
    first, second = (_seq(records, "request.made", nth=i) for i in (0, 1))
    leaves = [json.loads(records[s + 1]["leaf"]) for s in (first, second)]
    leaves[0]["signature"], leaves[1]["signature"] = leaves[1]["signature"], leaves[0]["signature"]
    for s, leaf in zip((first, second), leaves, strict=True):
        records[s + 1] = {"record": "entry", "leaf": canonical_json(leaf).decode()}
    return records


def removed_entry(records: Records, built: Built) -> Records:
    del records[3 + 1]
    return records


def reordered_pair(records: Records, built: Built) -> Records:
    records[4 + 1], records[5 + 1] = records[5 + 1], records[4 + 1]
    return records


def head_signed_by_another_key(records: Records, built: Built) -> Records:
    index = _head(records, 2)
    head = TreeHead.from_document(records[index])
    forged = sign_head(head, keys.new_private_key())
    records[index] = {"record": "tree-head", **json.loads(forged.to_json())}
    return records


def head_over_another_root(records: Records, built: Built) -> Records:
    index = _head(records, 3)
    head = TreeHead.from_document(records[index])
    rewritten = TreeHead(head.size, "ab" * 32, utc_now())
    signed = sign_head(rewritten, built.consortium.coordinator_key())
    records[index] = {"record": "tree-head", **json.loads(signed.to_json())}
    return records


def cosignature_by_the_wrong_key(records: Records, built: Built) -> Records:
    index = next(i for i, r in enumerate(records) if r.get("record") == "cosignature")
    cosig = records[index]
    head = next(
        TreeHead.from_document(r)
        for r in records
        if r.get("record") == "tree-head" and r["head"]["size"] == cosig["size"]
    )
    records[index] = {**cosig, "signature": cosign(head, cosig["witness"], keys.new_private_key())}
    return records


def epsilon_last_digit(records: Records, built: Built) -> Records:
    """...04 -> ...09 is the next double up (...07 would still round to the same one)."""
    seq = _seq(records, "round.completed")
    return _edit_leaf(
        records, seq, '"epsilon":0.30000000000000004', '"epsilon":0.30000000000000009'
    )


def same_numbers_spelled_otherwise(records: Records, built: Built) -> Records:
    """The same doubles in other spellings: the signature holds, the leaf hash does not."""
    seq = _seq(records, "round.completed")
    _edit_leaf(records, seq, '"examples":1e+21', '"examples":1E21')
    # ...07 is not a change either: it rounds to the same double as ...04.
    _edit_leaf(records, seq, '"epsilon":0.30000000000000004', '"epsilon":0.30000000000000007')
    return _edit_leaf(records, seq, '"whole":100', '"whole":100.000')


def unicode_name_decomposed(records: Records, built: Built) -> Records:
    """The same name to the eye, in NFD: JCS never normalises, so it names no member."""
    seq = _seq(records, "job.refused", UNICODE_MEMBER)
    nfd = unicodedata.normalize("NFD", UNICODE_MEMBER)
    assert nfd != UNICODE_MEMBER
    return _edit_leaf(records, seq, f'"actor":"{UNICODE_MEMBER}"', f'"actor":"{nfd}"')


def entry_of_an_older_version(records: Records, built: Built) -> Records:
    seq = _seq(records, "project.proposed")
    return _edit_leaf(
        records, seq, f'"type":"{ENTRY_TYPE}","version":2', f'"type":"{ENTRY_TYPE}","version":1'
    )


def time_in_another_form(records: Records, built: Built) -> Records:
    """The same moment, written +00:00: not the form that was signed, so malformed."""
    seq = _seq(records, "project.approved")
    time = json.loads(records[seq + 1]["leaf"])["entry"]["time"]
    return _edit_leaf(records, seq, f'"time":"{time}"', f'"time":"{time[:-1]}+00:00"')


def _resign(records: Records, seq: int, payload: dict[str, Any], built: Built) -> Records:
    """Rewrite an entry's payload and sign it again with its actor's own key."""
    entry = SignedEntry.from_leaf_bytes(records[seq + 1]["leaf"]).entry
    signed = built.consortium.sign_entry(replace(entry, payload=payload))
    records[seq + 1] = {"record": "entry", "leaf": signed.leaf_bytes().decode()}
    return records


def recovery_lowering_the_spend(records: Records, built: Built) -> Records:
    """Signed by the member itself, but recording less than was recorded: refused."""
    seq = _seq(records, "privacy.recovered")
    return _resign(records, seq, {**RECOVERED, "epsilon": 0.5}, built)


def recovery_naming_no_epsilon(records: Records, built: Built) -> Records:
    seq = _seq(records, "privacy.recovered")
    return _resign(records, seq, {**RECOVERED, "epsilon": "0.8"}, built)


def tally_with_one_more_yes(records: Records, built: Built) -> Records:
    """The coordinator re-signs a close that counts a vote nobody cast."""
    seq = _seq(records, "motion.closed")
    payload = json.loads(records[seq + 1]["leaf"])["entry"]["payload"]
    payload["tally"]["yes"] += 1
    return _resign(records, seq, payload, built)


def vote_moved_to_another_motion(records: Records, built: Built) -> Records:
    """A member's vote replayed on another motion: its signature and digest no longer hold."""
    seq = _seq(records, "motion.voted", "lab")
    return _edit_leaf(records, seq, '"motion":"motion-1"', '"motion":"motion-2"')


def approval_without_its_motion(records: Records, built: Built) -> Records:
    """The coordinator re-signs the project's approval without naming the vote."""
    seq = _seq(records, "project.approved", nth=1)
    return _resign(records, seq, {"project": "kokoro"}, built)


def _payload(records: Records, seq: int) -> dict[str, Any]:
    return json.loads(records[seq + 1]["leaf"])["entry"]["payload"]


def allocation_above_its_motion(records: Records, built: Built) -> Records:
    """The coordinator re-signs an allocation for one yen more than the board voted."""
    seq = _seq(records, "funds.allocated")
    payload = _payload(records, seq)
    return _resign(records, seq, {**payload, "amount_yen": payload["amount_yen"] + 1}, built)


def ranking_naming_another_motion(records: Records, built: Built) -> Records:
    seq = _seq(records, "theme.ranked")
    return _resign(records, seq, {**_payload(records, seq), "motion": "motion-1"}, built)


def milestone_accepted_without_its_motion(records: Records, built: Built) -> Records:
    seq = _seq(records, "milestone.accepted")
    payload = {k: v for k, v in _payload(records, seq).items() if k != "motion"}
    return _resign(records, seq, payload, built)


def _appended(
    records: Records, built: Built, *forged: tuple[str, str, dict[str, Any], Any]
) -> Records:
    """The coordinator appends entries (actor, kind, payload, signing key; None: the actor's
    own node signs) and signs a new tree head over them: every signature, head and proof
    verifies, so only the replay of who holds which key and dataset can catch the forgery."""
    leaves = [r["leaf"] for r in records if r.get("record") == "entry"]
    last = max(i for i, r in enumerate(records) if r.get("record") == "entry")
    added = []
    for actor, kind, payload, key in forged:
        entry = Entry(len(leaves), utc_now(), actor, kind, payload)
        signed = built.consortium.sign_entry(entry) if key is None else sign_entry(entry, key)
        leaves.append(signed.leaf_bytes().decode())
        added.append({"record": "entry", "leaf": leaves[-1]})
    tree = merkle.MerkleTree(merkle.leaf_hash(leaf.encode()) for leaf in leaves)
    head = sign_head(
        TreeHead(tree.size, tree.root().hex(), utc_now()), built.consortium.coordinator_key()
    )
    records[last + 1 : last + 1] = added
    return [*records, {"record": "tree-head", **json.loads(head.to_json())}]


def _joined(name: str, public: str) -> dict[str, Any]:
    return {"member": name, "kind": "hospital", "public_key": public}


def _current_key(records: Records, member: str) -> str:
    """The member's key at the end of the log (after its rotations)."""
    found = ""
    for r in records:
        if r.get("record") == "entry":
            entry = json.loads(r["leaf"])["entry"]
            if entry["actor"] == member and entry["kind"] in (
                "member.joined",
                "member.key-rotated",
            ):
                found = entry["payload"]["public_key"]
    return found


def second_join_of_a_member(records: Records, built: Built) -> Records:
    """A member joins again under a key the coordinator made: its later acts would be forged.
    (The member joined after the keys file was written, so no pinned key catches it.)"""
    key = keys.new_private_key()
    payload = _joined(UNICODE_MEMBER, keys.public_key_b64(key))
    return _appended(records, built, (UNICODE_MEMBER, "member.joined", payload, key))


def join_with_the_coordinator_key(records: Records, built: Built) -> Records:
    """A sock-puppet member holding the coordinator's own key, to vote and register."""
    coordinator = built.consortium.coordinator_key()
    payload = _joined("puppet", keys.public_key_b64(coordinator))
    return _appended(records, built, ("puppet", "member.joined", payload, coordinator))


def dataset_registered_by_another(records: Records, built: Built) -> Records:
    """A puppet joins (honestly, by itself) and registers cleveland-clinic's dataset."""
    key = keys.new_private_key()
    seq = _seq(records, "dataset.registered", "cleveland-clinic")
    stolen = {**_payload(records, seq), "member": "puppet"}
    return _appended(
        records,
        built,
        ("puppet", "member.joined", _joined("puppet", keys.public_key_b64(key)), key),
        ("puppet", "dataset.registered", stolen, key),
    )


def rotation_by_the_coordinator(records: Records, built: Built) -> Records:
    """The coordinator rotates a member's key to one it holds, signing with its own key."""
    member = "va-long-beach"
    payload = {
        "member": member,
        "public_key": keys.public_key_b64(keys.new_private_key()),
        "previous_key": _current_key(records, member),
    }
    coordinator = built.consortium.coordinator_key()
    return _appended(records, built, ("coordinator", "member.key-rotated", payload, coordinator))


def rotation_naming_another_previous_key(records: Records, built: Built) -> Records:
    """A puppet's rotation claims to replace a key it never held."""
    key = keys.new_private_key()
    payload = {
        "member": "puppet",
        "public_key": keys.public_key_b64(keys.new_private_key()),
        "previous_key": _current_key(records, "lab"),
    }
    return _appended(
        records,
        built,
        ("puppet", "member.joined", _joined("puppet", keys.public_key_b64(key)), key),
        ("puppet", "member.key-rotated", payload, key),
    )


def _charge(
    records: Records, actor: str = "cleveland-clinic", **changes: Any
) -> tuple[str, str, dict[str, Any], None]:
    """A node's privacy.charged entry, as services.contribution writes it, with changes."""
    seq = _seq(records, "dataset.registered", "cleveland-clinic")
    payload = {
        "job": "contribution-1",
        "dataset": _payload(records, seq)["dataset"],
        "model": "heart-v1",
        "released_job": "job-1",
        "retrainings": 3,
        "epsilon": 0.25,
        **changes,
    }
    return (actor, "privacy.charged", payload, None)


def privacy_charged_honestly(records: Records, built: Built) -> Records:
    return _appended(records, built, _charge(records))


def privacy_charged_at_zero(records: Records, built: Built) -> Records:
    return _appended(records, built, _charge(records, epsilon=0))


def privacy_charged_negative(records: Records, built: Built) -> Records:
    return _appended(records, built, _charge(records, epsilon=-0.5))


def privacy_charged_as_text(records: Records, built: Built) -> Records:
    return _appended(records, built, _charge(records, epsilon="0.25"))


def privacy_charged_for_no_job(records: Records, built: Built) -> Records:
    return _appended(records, built, _charge(records, job=None))


def privacy_charged_to_another_dataset(records: Records, built: Built) -> Records:
    """va-long-beach's node charges cleveland-clinic's dataset (to exhaust its budget)."""
    return _appended(records, built, _charge(records, actor="va-long-beach"))


def _budget(
    records: Records, actor: str = "cleveland-clinic", **changes: Any
) -> tuple[str, str, dict[str, Any], None]:
    """A node's privacy.budget-set entry, as services.privacy writes it, with changes."""
    dataset = _payload(records, _seq(records, "dataset.registered", "cleveland-clinic"))["dataset"]
    payload = {"dataset": dataset, "member": actor, "epsilon": 5.0, **changes}
    return (actor, "privacy.budget-set", payload, None)


def budget_set_honestly(records: Records, built: Built) -> Records:
    return _appended(records, built, _budget(records))


def budget_set_at_zero(records: Records, built: Built) -> Records:
    return _appended(records, built, _budget(records, epsilon=0))


def budget_set_as_text(records: Records, built: Built) -> Records:
    return _appended(records, built, _budget(records, epsilon="5"))


def budget_set_by_another_member(records: Records, built: Built) -> Records:
    """va-long-beach's node sets cleveland-clinic's budget (to 5000, to drain its data)."""
    return _appended(records, built, _budget(records, actor="va-long-beach", epsilon=5000))


def budget_naming_another_member(records: Records, built: Built) -> Records:
    """The owner's node signs, but the entry names another member as the dataset's."""
    return _appended(records, built, _budget(records, member="va-long-beach"))


def _expect_last(codes: list[str]) -> Callable[..., None]:
    def check(doc: dict[str, Any], records: Records) -> None:
        *before, last = doc["entries"]
        assert all(e["ok"] for e in before), [e for e in before if not e["ok"]]
        assert last["codes"] == codes, last
        assert all(h["ok"] for h in doc["tree_heads"] + doc["consistency"])

    return check


def honest(records: Records, built: Built) -> Records:
    return records


def _expect_entry(kind: str, actor: str | None, codes: list[str]) -> Callable[..., None]:
    def check(doc: dict[str, Any], records: Records) -> None:
        assert doc["entries"][_seq(records, kind, actor)]["codes"] == codes

    return check


def _expect(part: str, code: str) -> Callable[..., None]:
    def check(doc: dict[str, Any], records: Records) -> None:
        assert any(code in item["codes"] for item in doc[part]), doc[part]

    return check


def _expect_ok(doc: dict[str, Any], records: Records) -> None:
    assert doc["ok"], doc


def _expect_sequence(*seqs: int) -> Callable[..., None]:
    def check(doc: dict[str, Any], records: Records) -> None:
        for seq in seqs:
            assert "sequence" in doc["entries"][seq]["codes"], doc["entries"][seq]

    return check


def _expect_entries_ok_heads_not(doc: dict[str, Any], records: Records) -> None:
    assert all(e["ok"] for e in doc["entries"]), [e for e in doc["entries"] if not e["ok"]]
    assert any("root" in h["codes"] for h in doc["tree_heads"])


def _expect_approval_not_voted(doc: dict[str, Any], records: Records) -> None:
    assert doc["entries"][_seq(records, "project.approved", nth=1)]["codes"] == ["not-voted"]


def _expect_older_version(doc: dict[str, Any], records: Records) -> None:
    [bad] = [e for e in doc["entries"] if not e["ok"]]
    assert bad["codes"] == ["malformed"]
    assert "kumiai.ledger-entry version 1" in bad["reason"]
    assert "older kumiai" in bad["reason"] and "only version 2" in bad["reason"]


VARIANTS = {
    "honest": (honest, _expect_ok),
    "changed payload byte": (
        changed_payload_byte,
        _expect_entry("dataset.registered", "cleveland-clinic", ["signature"]),
    ),
    "swapped signatures": (swapped_signatures, _expect_entry("request.made", None, ["signature"])),
    "removed entry": (removed_entry, _expect_sequence(3, 4, 5)),
    "reordered pair": (reordered_pair, _expect_sequence(4, 5)),
    "forged head": (head_signed_by_another_key, _expect("tree_heads", "signature")),
    "head over another root": (head_over_another_root, _expect("consistency", "inconsistent")),
    "cosignature by the wrong key": (
        cosignature_by_the_wrong_key,
        _expect("cosignatures", "signature"),
    ),
    "epsilon changed in its last digit": (
        epsilon_last_digit,
        _expect_entry("round.completed", None, ["signature"]),
    ),
    "same numbers spelled otherwise": (
        same_numbers_spelled_otherwise,
        _expect_entries_ok_heads_not,
    ),
    "non-ASCII name decomposed": (
        unicode_name_decomposed,
        _expect_entry("job.refused", None, ["no-key"]),
    ),
    "entry of an older version": (entry_of_an_older_version, _expect_older_version),
    "recovery lowering the spend": (
        recovery_lowering_the_spend,
        _expect_entry("privacy.recovered", None, ["recovered-lower"]),
    ),
    "recovery naming no epsilon": (
        recovery_naming_no_epsilon,
        _expect_entry("privacy.recovered", None, ["malformed"]),
    ),
    "tally with one more yes": (
        tally_with_one_more_yes,
        _expect_entry("motion.closed", None, ["tally"]),
    ),
    "vote moved to another motion": (
        vote_moved_to_another_motion,
        _expect_entry("motion.voted", "lab", ["signature", "vote"]),
    ),
    "approval without its motion": (
        approval_without_its_motion,
        _expect_approval_not_voted,
    ),
    "allocation above its motion": (
        allocation_above_its_motion,
        _expect_entry("funds.allocated", None, ["not-voted"]),
    ),
    "ranking naming another motion": (
        ranking_naming_another_motion,
        _expect_entry("theme.ranked", None, ["not-voted"]),
    ),
    "milestone accepted without its motion": (
        milestone_accepted_without_its_motion,
        _expect_entry("milestone.accepted", None, ["not-voted"]),
    ),
    "second join of a member": (second_join_of_a_member, _expect_last(["join-twice"])),
    "join with the coordinator key": (join_with_the_coordinator_key, _expect_last(["key-reused"])),
    "dataset registered by another member": (
        dataset_registered_by_another,
        _expect_last(["dataset-owner"]),
    ),
    "rotation signed by the coordinator": (
        rotation_by_the_coordinator,
        _expect_last(["rotation-signer"]),
    ),
    "rotation naming another previous key": (
        rotation_naming_another_previous_key,
        _expect_last(["rotation-signer"]),
    ),
    "privacy charged honestly": (privacy_charged_honestly, _expect_ok),
    "privacy charged at zero": (privacy_charged_at_zero, _expect_last(["privacy-charge"])),
    "privacy charged negative": (privacy_charged_negative, _expect_last(["privacy-charge"])),
    "privacy charged as text": (privacy_charged_as_text, _expect_last(["privacy-charge"])),
    "privacy charged for no job": (privacy_charged_for_no_job, _expect_last(["privacy-charge"])),
    "privacy charged to another dataset": (
        privacy_charged_to_another_dataset,
        _expect_last(["privacy-charge"]),
    ),
    "budget set honestly": (budget_set_honestly, _expect_ok),
    "budget set at zero": (budget_set_at_zero, _expect_last(["privacy-budget"])),
    "budget set as text": (budget_set_as_text, _expect_last(["privacy-budget"])),
    "budget set by another member": (
        budget_set_by_another_member,
        _expect_last(["privacy-budget"]),
    ),
    "budget naming another member": (
        budget_naming_another_member,
        _expect_last(["privacy-budget"]),
    ),
    "time in another form": (
        time_in_another_form,
        _expect_entry("project.approved", None, ["malformed"]),
    ),
}


def _verdicts(doc: dict[str, Any]) -> dict[str, Any]:
    """Everything but the free-text reasons, which each language words its own way."""

    def strip(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k != "reason"}

    return {
        "ok": doc["ok"],
        "root": doc["root"],
        "counts": doc["counts"],
        "export": strip(doc["export"]),
        **{
            part: [strip(item) for item in doc[part]]
            for part in ("entries", "tree_heads", "consistency", "cosignatures")
        },
    }


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_both_verifiers_agree_entry_by_entry(built: Built, tmp_path: Path, variant: str) -> None:
    tamper, expectation = VARIANTS[variant]
    records = tamper([dict(r) for r in built.records], built)
    export = tmp_path / "ledger.jsonl"
    export.write_text("\n".join(json.dumps(r) for r in records) + "\n")

    python = report_document(transparency.verify_export(export, built.keys_file))
    code, js = run_js(export, built.keys_file)

    expectation(python, records)
    assert _verdicts(js) == _verdicts(python)
    assert code == (0 if python["ok"] else 1)
    for doc in (python, js):  # a reason exactly where a verdict fails
        for item in [doc["export"], *doc["entries"], *doc["tree_heads"], *doc["cosignatures"]]:
            assert (item["reason"] is None) == item["ok"], item


def test_the_honest_export_holds_what_canonical_forms_get_wrong(built: Built) -> None:
    """So the agreement above covers floats, Unicode names and UTF-16 key order."""
    leaves = [r["leaf"] for r in built.records if r.get("record") == "entry"]
    floats = next(leaf for leaf in leaves if '"jcs-floats"' in leaf and "round.completed" in leaf)
    for text in (
        '"epsilon":0.30000000000000004',
        '"delta":1e-7',
        '"examples":1e+21',
        '"tiny":5e-324',
        '"huge":1.7976931348623157e+308',
        '"minus_zero":0',
        '"whole":100',
        '"accuracy":0.000001',
        '"order":{"a":"ascii","\x80":"c1","é":"latin","😀":"astral","\ue000":"private use"}',
    ):
        assert text in floats, text
    assert any(f'"actor":"{UNICODE_MEMBER}"' in leaf for leaf in leaves)
    assert any("診断支援" in leaf for leaf in leaves)
    cosigners = {r["witness"] for r in built.records if r.get("record") == "cosignature"}
    assert "cleveland-clinic" in cosigners  # before and after its key rotation


def test_without_a_keys_file_both_verifiers_pass_the_honest_export(built: Built) -> None:
    python = report_document(transparency.verify_export(built.export))
    code, js = run_js(built.export, None)
    assert python["ok"] and code == 0 and _verdicts(js) == _verdicts(python)


def test_a_keys_file_pinning_another_key_fails_in_both(built: Built, tmp_path: Path) -> None:
    pinned = {**json.loads(built.keys_file.read_text())}
    pinned["va-long-beach"] = keys.public_key_b64(keys.new_private_key())
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(pinned))
    python = report_document(transparency.verify_export(built.export, keys_file))
    code, js = run_js(built.export, keys_file)
    joined = _seq(built.records, "member.joined", "va-long-beach")
    assert python["entries"][joined]["codes"] == ["join-pinned"]
    assert code == 1 and _verdicts(js) == _verdicts(python)


def _unusable(
    path: Path, built: Built, lines: list[str]
) -> tuple[InvalidInput, int, dict[str, Any]]:
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput) as refused:
        transparency.verify_export(path, built.keys_file)
    code, js = run_js(path, built.keys_file)
    return refused.value, code, js


def test_an_export_of_an_older_version_is_refused_by_both(built: Built, tmp_path: Path) -> None:
    lines = built.export.read_text().splitlines()
    header = json.loads(lines[0])
    lines[0] = json.dumps({**header, "version": 1})
    error, code, js = _unusable(tmp_path / "old.jsonl", built, lines)
    assert isinstance(error, UnsupportedVersion)
    for text in (str(error), js["error"]):
        assert "kumiai.ledger-export version 1" in text and "only version 2" in text, text
    assert code == 2 and js["ok"] is False


def test_a_malformed_line_is_refused_by_both(built: Built, tmp_path: Path) -> None:
    lines = built.export.read_text().splitlines()
    lines[3] = lines[3][:25]
    error, code, js = _unusable(tmp_path / "cut.jsonl", built, lines)
    assert "line 4" in str(error) and "line 4" in js["error"]
    assert code == 2


def test_the_verifier_knows_the_kinds_and_versions_kumiai_writes() -> None:
    done = subprocess.run(
        [_node(), str(VERIFIER), "--describe"], capture_output=True, text=True, check=True
    )
    described = json.loads(done.stdout)
    assert described["kinds"] == list(KINDS)
    assert described["versions"] == {
        transparency.EXPORT_TYPE: transparency.EXPORT_VERSION,
        ENTRY_TYPE: VERSION,
        HEAD_TYPE: VERSION,
        COSIGN_TYPE: VERSION,
    }


def test_javascript_and_python_write_the_same_canonical_bytes() -> None:
    """JCS in both languages over RFC 8785's examples and 3,000 random doubles."""
    rng = random.Random(8785)
    doubles = []
    while len(doubles) < 3000:
        (value,) = struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))
        if value == value and abs(value) != float("inf"):
            doubles.append(value)
    values: list[Any] = [
        *doubles,
        [1e21, 1e-7, 0.1 + 0.2, 5e-324, -0.0, 2**53 - 1, 1e16, 123456789.0],
        {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "😀": 5, "\x80": 6, "ö": 7},
        {"string": '€$\x0f\nA\'B"\\\\"/', "control": "\x00\x1f\x7f\u2028", "empty": {}},
    ]
    text = json.dumps(values)
    script = (
        f"import {{ canonicalize }} from {json.dumps(VERIFIER.as_uri())};\n"
        "let input = '';\n"
        "process.stdin.on('data', (chunk) => { input += chunk; });\n"
        "process.stdin.on('end', () => {\n"
        "  console.log(JSON.stringify(JSON.parse(input).map(canonicalize)));\n"
        "});\n"
    )
    done = subprocess.run(
        [_node(), "--input-type=module", "-e", script],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    javascript = json.loads(done.stdout)
    python = [canonical_json(value).decode() for value in load_json(text)]
    assert len(python) == len(values)
    mismatches = [(p, j) for p, j in zip(python, javascript, strict=True) if p != j]
    assert not mismatches, mismatches[:5]
