"""A hostile coordinator relays masking keys to a node of a secure analysis: every key the
node cannot trace to its owner in the ledger it witnessed is refused, and a refused release
draws nothing, writes nothing, spends nothing; the honest release is then charged once."""

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kumiai.domain.masking_key import MaskingKey, SignedMaskingKey, sign_masking_key
from kumiai.domain.secure_sum import public_key_b64, unmask
from kumiai.node.home import NodeHome
from kumiai.services.consortium import Consortium
from kumiai.services.members import rotate_key
from kumiai.services.peer_evidence import evidence_for_nodes
from tests.node.test_analysing import COUNT_AND_MEAN, _files, _job
from tests.services.helpers import HOSPITALS, heart_consortium, spend_records

VICTIM, PEER, OTHER = HOSPITALS
DATASET = f"{VICTIM}-heart"


@pytest.fixture
def consortium(tmp_path: Path) -> Consortium:
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics", epsilon_cap=3.0)
    return consortium


def _admitted(consortium: Consortium, job_id: str) -> tuple[str, dict[str, str]]:
    """A secure job every node admitted, and each site's signed masking key."""
    job = _job(
        consortium, COUNT_AND_MEAN, secure=True, job_id=job_id, key=consortium.coordinator_key()
    )
    keys = {}
    for hospital in HOSPITALS:
        allowed, reason, key = consortium.node(hospital).admit_analysis(f"{hospital}-heart", job)
        assert allowed, reason
        keys[f"{hospital}-heart"] = key
    return job, keys


def _sites(consortium: Consortium) -> dict[str, tuple[Any, str]]:
    return {f"{h}-heart": (consortium.node(h), h) for h in HOSPITALS}


def _signed(job: str, hospital: str, key: Ed25519PrivateKey, *, member: str | None = None) -> str:
    masking = public_key_b64(X25519PrivateKey.generate())
    statement = MaskingKey(job, f"{hospital}-heart", member or hospital, masking)
    return sign_masking_key(statement, key).to_json()


def _member_key(consortium: Consortium, member: str) -> Ed25519PrivateKey:
    return NodeHome(consortium.member_home(member)).private_key()


def test_every_key_the_node_cannot_trace_is_refused_and_nothing_is_released(
    consortium: Consortium,
) -> None:
    job, keys = _admitted(consortium, "job-analysis-1")
    evidence = evidence_for_nodes(consortium, _sites(consortium))[DATASET]
    node, home = consortium.node(VICTIM), consortium.member_home(VICTIM)
    before = _files(home)
    peer_key = SignedMaskingKey.from_json(keys[f"{PEER}-heart"])
    tampered = json.loads(json.dumps(evidence))
    tampered[0]["path"][0] = "00" * 32
    rogue = Ed25519PrivateKey.generate()  # a key the coordinator made up
    attacks: dict[str, tuple[dict[str, str], list[dict[str, Any]], str]] = {
        "not signed": (
            {**keys, f"{PEER}-heart": SignedMaskingKey(peer_key.statement, "").to_json()},
            evidence,
            f"the masking key for '{PEER}-heart' is not signed by '{PEER}'",
        ),
        "signed by another member": (
            {
                **keys,
                f"{PEER}-heart": _signed("job-analysis-1", PEER, _member_key(consortium, OTHER)),
            },
            evidence,
            f"the masking key for '{PEER}-heart' is not signed by '{PEER}'",
        ),
        "signed by a key the coordinator made": (
            {**keys, f"{PEER}-heart": _signed("job-analysis-1", PEER, rogue)},
            evidence,
            f"is not signed by '{PEER}', the member that owns it in the witnessed ledger",
        ),
        "signed for another job": (
            {**keys, f"{PEER}-heart": _signed("job-other", PEER, _member_key(consortium, PEER))},
            evidence,
            f"the masking key for '{PEER}-heart' was signed for job job-other",
        ),
        "owner the node cannot verify": (
            keys,
            [e for e in evidence if f'"member":"{PEER}"' not in e["leaf"]],
            f"this node cannot verify who owns '{PEER}-heart'",
        ),
        "inclusion proof that does not verify": (
            keys,
            tampered,
            f"the inclusion proof of ledger entry {evidence[0]['seq']} does not verify",
        ),
        "a dropped peer": (
            {d: k for d, k in keys.items() if d != f"{OTHER}-heart"},
            evidence,
            "a secure sum masks for exactly the sites the signed job document names",
        ),
        "malformed": (
            {**keys, f"{PEER}-heart": public_key_b64(X25519PrivateKey.generate())},
            evidence,
            "a signed masking key is malformed",
        ),
    }
    for name, (peers, proofs, reason) in attacks.items():
        allowed, why, vector = node.release_analysis(DATASET, job, peers, proofs)
        assert not allowed and vector == [], name
        assert why.startswith(f"{VICTIM} refused job job-analysis-1: ") and reason in why, name
    assert _files(home) == before  # nothing drawn, kept or spent
    assert [r["kind"] for r in spend_records(consortium, VICTIM)] == ["reserve"]
    # the honest relay goes through, charged once; the sum of the masked vectors is the total
    masked = []
    for hospital in HOSPITALS:
        site = f"{hospital}-heart"
        proofs = evidence_for_nodes(consortium, _sites(consortium))[site]
        allowed, reason, vector = consortium.node(hospital).release_analysis(
            site, job, keys, proofs
        )
        assert allowed, reason
        masked.append(vector)
    kept = [
        json.loads(
            (consortium.member_home(h) / "analyses" / f"job-analysis-1.{h}-heart.json").read_text()
        )["noisy"]
        for h in HOSPITALS
    ]
    assert unmask(masked) == [sum(c) for c in zip(*kept, strict=True)]
    assert [r["kind"] for r in spend_records(consortium, VICTIM)] == ["reserve", "spend"]


def test_a_signature_replayed_from_an_earlier_job_is_refused(consortium: Consortium) -> None:
    """The coordinator kept the peer's signed key from job 1 (whose private half it never
    had, but whose share it might try to pair with a colluder's) and relays it in job 2."""
    first, first_keys = _admitted(consortium, "job-analysis-1")
    for site, proofs in evidence_for_nodes(consortium, _sites(consortium)).items():
        node = consortium.node(site.removesuffix("-heart"))
        assert node.release_analysis(site, first, first_keys, proofs)[0]
    pins = json.loads((consortium.member_home(VICTIM) / "peer-identities.json").read_text())
    assert pins["owners"] == {f"{h}-heart": h for h in HOSPITALS}  # verified once, pinned
    second, keys = _admitted(consortium, "job-analysis-2")
    evidence = evidence_for_nodes(consortium, _sites(consortium))[DATASET]
    replayed = {**keys, f"{PEER}-heart": first_keys[f"{PEER}-heart"]}
    allowed, reason, vector = consortium.node(VICTIM).release_analysis(
        DATASET, second, replayed, evidence
    )
    assert not allowed and vector == []
    assert f"was signed for job job-analysis-1 and dataset '{PEER}-heart'" in reason
    assert not (
        consortium.member_home(VICTIM) / "analyses" / f"job-analysis-2.{DATASET}.json"
    ).exists()
    kinds = [(r["kind"], r["job"]) for r in spend_records(consortium, VICTIM)]
    assert kinds == [
        ("reserve", "job-analysis-1"),
        ("spend", "job-analysis-1"),
        ("reserve", "job-analysis-2"),
    ]


def test_a_node_that_never_witnessed_the_ledger_verifies_nothing(consortium: Consortium) -> None:
    job, keys = _admitted(consortium, "job-analysis-1")
    assert consortium.node(VICTIM).last_witnessed() is None
    allowed, reason, _ = consortium.node(VICTIM).release_analysis(DATASET, job, keys, [])
    assert not allowed and "this node has witnessed no tree head" in reason


def test_a_peer_that_rotated_its_key_signs_with_the_new_one(consortium: Consortium) -> None:
    rotate_key(consortium, PEER)
    job, keys = _admitted(consortium, "job-analysis-1")
    evidence = evidence_for_nodes(consortium, _sites(consortium))[DATASET]
    assert any('"kind":"member.key-rotated"' in e["leaf"] for e in evidence)
    allowed, reason, _ = consortium.node(VICTIM).release_analysis(DATASET, job, keys, evidence)
    assert allowed, reason
