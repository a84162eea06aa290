"""The node answers a DP analysis (a `statistics` job) itself, in two steps.

1. `admit_analysis`: the node checks the coordinator-signed job document with the same pure
   check its guard runs on every Flower message (`domain.policy.check_job`: signature,
   agreement, purpose, kind, expiry, revocation, ε cap), refuses a dataset below the
   agreement's minimum cohort, and reserves the job's ε in its own signed spend log against
   the agreement's cap and the lifetime budget. It computes ε from the job document's
   queries itself. Under secure aggregation it hands out a fresh X25519 masking key, signed
   by its member for this job and dataset (`domain.masking_key`).
2. `release_analysis`: told who else takes part, the node first checks every peer's masking
   key against the ledger it witnessed (`domain.peer_trust`), then spends the reservation,
   draws the noise itself, keeps the noisy vector in its home, and only then lets it leave:
   masked (secure aggregation, its noise share calibrated so the participants' shares sum to
   the stated scale) or plain (noised in full).

A job id already in the spend log is not charged again, and a release already made is
returned as it was (never redrawn: a second draw would leak more for the same ε).
"""

import json
import math
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from kumiai.adapters.files import write_atomic, write_json_atomic
from kumiai.domain.analysis import TARGET, Analysis, exact_vectors
from kumiai.domain.clock import utc_now
from kumiai.domain.disclosure import FORBIDDEN
from kumiai.domain.errors import InvalidInput, KumiaiError
from kumiai.domain.job import JobKind, SignedJob
from kumiai.domain.masking_key import MaskingKey, SignedMaskingKey, sign_masking_key
from kumiai.domain.peer_trust import Identities, LoggedEntry, check_peer_keys
from kumiai.domain.policy import check_job
from kumiai.domain.secure_sum import mask, public_key_b64
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.node.witnessing import last_witnessed

ANALYSIS = "analysis"  # the `kind` of an analysis's reservation in the spend log
PINS = "peer-identities.json"  # peers' keys and datasets' owners this node verified before


def _folder(home: NodeHome) -> Any:
    return home.root / "analyses"


def _checked(home: NodeHome, dataset: str, job_json: str) -> tuple[SignedJob, Any, Analysis]:
    """(job, the node's own agreement, the analysis) or InvalidInput with the node's reason."""
    home.dataset(dataset)  # NotFound unless the dataset is this node's
    steward = home.member_name
    job = SignedJob.from_json(job_json)
    doc = job.document
    if doc.kind is not JobKind.STATISTICS:
        raise InvalidInput(
            f"{steward} refused job {doc.job_id}: an analysis runs only as a statistics job, "
            f"not {doc.kind.value!r}"
        )
    agreement = home.agreement(doc.agreements.get(dataset, ""))
    decision = check_job(
        job=job,
        coordinator_key=home.coordinator_key(),
        operation="statistics",
        server_round=0,
        dataset=dataset,
        steward=steward,
        steward_public_keys=home.steward_keys(),
        agreement=agreement,
        revoked=home.revoked(),
        now=utc_now(),
    )
    if not decision.allowed or agreement is None:
        raise InvalidInput(decision.reason)
    if agreement.terms.aggregate_statistics == FORBIDDEN:
        raise InvalidInput(
            f"{steward} refused job {doc.job_id}: agreement {agreement.terms.agreement_id} lets "
            "no aggregate statistics leave this node"
        )
    try:
        analysis = Analysis.from_json(doc.settings.analysis, doc.settings.epsilon)
    except InvalidInput as exc:
        raise InvalidInput(f"{steward} refused job {doc.job_id}: {exc}") from None
    return job, agreement, analysis


def _masking_key(home: NodeHome, job: str, dataset: str) -> X25519PrivateKey:
    """The node's X25519 key for masking this job's release: made once, kept in its home."""
    path = _folder(home) / f"{job}.{dataset}.key"
    if not path.is_file():
        pem = X25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        write_atomic(path, pem, mode=0o600)
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise InvalidInput(f"{path} holds no X25519 key; remove it and run the job again")
    return key


def _same_charge(held: Any, doc: Any, analysis: Analysis) -> bool:
    """Whether a reservation already in the log was made for exactly this analysis."""
    return (
        held.details.get("kind") == ANALYSIS
        and held.project == doc.project
        and held.details.get("analysis") == json.loads(doc.settings.analysis)
        and abs(held.reserved - analysis.epsilon) < 1e-12
    )


def _columns(home: NodeHome, dataset: str) -> tuple[dict[str, Any], int]:
    from kumiai.node.worker import load_rows  # pandas: only when rows are read

    columns, labels = load_rows(home.dataset(dataset))
    out = dict(columns)
    out.setdefault(TARGET, labels)
    return out, len(labels)


def _signed_masking_key(home: NodeHome, job: str, dataset: str) -> str:
    """The node's masking public key for `job`, signed by its member (JSON)."""
    public = public_key_b64(_masking_key(home, job, dataset))
    statement = MaskingKey(job=job, dataset=dataset, member=home.member_name, masking_key=public)
    return sign_masking_key(statement, home.private_key()).to_json()


def admit_analysis(home: NodeHome, dataset: str, job_json: str) -> tuple[bool, str, str]:
    """(allowed, reason, the signed masking key or ''). A refusal reserves and writes nothing."""
    try:
        job, agreement, analysis = _checked(home, dataset, job_json)
        doc = job.document
        _, rows = _columns(home, dataset)
    except KumiaiError as exc:
        return False, str(exc), ""
    steward, terms = home.member_name, agreement.terms
    if rows < terms.min_cohort:
        return (
            False,
            f"{steward} refused job {doc.job_id}: site {dataset!r} holds {rows} rows, below "
            f"the minimum cohort of {terms.min_cohort} in agreement {terms.agreement_id}",
            "",
        )
    log = SpendLog(home, dataset)
    held = log.view().jobs.get(doc.job_id)
    if held is None:
        details = {
            "kind": ANALYSIS,
            "analysis": json.loads(doc.settings.analysis),
            "rounds": 0,
            "delta": 0.0,
        }
        decision = log.reserve(
            job=doc.job_id,
            project=doc.project,
            planned=analysis.epsilon,
            delta=0.0,
            agreement_cap=terms.epsilon_cap,
            details=details,
        )
        if not decision.allowed:
            return False, f"{steward} refused job {doc.job_id}: {decision.reason}", ""
        reason = decision.reason
    elif not _same_charge(held, doc, analysis):
        return False, _another_use(steward, doc.job_id, dataset), ""
    else:
        reason = f"job {doc.job_id} already holds ε={held.reserved:.3f}; not charged again"
    if not doc.secure_aggregation:
        return True, reason, ""
    return True, reason, _signed_masking_key(home, doc.job_id, dataset)


def _another_use(steward: str, job: str, dataset: str) -> str:
    return (
        f"{steward} refused job {job}: this node already charged {dataset!r} under that job id "
        "for other queries or another ε; a job id is charged, and its release drawn, once"
    )


def noise_share(length: int, scale: float, parties: int, rng: Any = None) -> list[int]:
    """One party's share of discrete Laplace noise of `scale`, `length` times over.

    Discrete Laplace is a difference of two geometric variables, and a geometric variable is
    the sum of `parties` independent negative binomials NB(1/parties, 1-α), α = exp(-1/scale):
    so the parties' shares sum to exactly one discrete Laplace draw (Goryczka & Xiong 2015).
    With `parties` = 1 the share is the whole noise. The draw is a whole number, so no
    floating-point low bits leak (Mironov 2012); the generator is seeded from the OS.
    """
    import numpy as np

    rng = rng if rng is not None else np.random.default_rng()
    p = 1 - math.exp(-1.0 / scale)
    shape = 1.0 / parties
    draws = rng.negative_binomial(shape, p, size=(2, length))
    return [int(v) for v in draws[0] - draws[1]]


def _pinned(home: NodeHome) -> Identities | None:
    """What this node verified about its peers in earlier jobs (kumiai.domain.peer_trust)."""
    path = home.root / PINS
    if not path.is_file():
        return None
    try:
        return Identities.from_document(json.loads(path.read_text()))
    except ValueError:
        raise InvalidInput(f"{path} is unreadable; restore it from backup") from None


def _trusted_peers(
    home: NodeHome,
    dataset: str,
    job: str,
    datasets: tuple[str, ...],
    peers: dict[str, str],
    evidence: Sequence[dict[str, Any]],
) -> dict[str, str]:
    """dataset -> masking key, once every peer's key passes `check_peer_keys` against the
    tree head this node witnessed itself; InvalidInput with the reason otherwise."""
    signed = {d: SignedMaskingKey.from_json(text) for d, text in peers.items()}
    verdict = check_peer_keys(
        job=job,
        job_datasets=datasets,
        own_dataset=dataset,
        own_masking_key=public_key_b64(_masking_key(home, job, dataset)),
        peers=signed,
        head=last_witnessed(home),
        evidence=[LoggedEntry.from_document(e) for e in evidence],
        pinned=_pinned(home),
    )
    if not verdict.allowed:
        raise InvalidInput(verdict.reason)
    write_json_atomic(home.root / PINS, verdict.identities.document())
    return verdict.masking_keys


def release_analysis(
    home: NodeHome,
    dataset: str,
    job_json: str,
    peers: dict[str, str],
    evidence: Sequence[dict[str, Any]] = (),
) -> tuple[bool, str, list[int]]:
    """(allowed, reason, the vector that leaves). `peers`: dataset -> signed masking key
    (`SignedMaskingKey` JSON) of every site the job names (empty for plain aggregation);
    `evidence`: `LoggedEntry` documents proving those sites' owners and keys in the ledger."""
    try:
        job, _, analysis = _checked(home, dataset, job_json)
    except KumiaiError as exc:
        return False, str(exc), []
    doc = job.document
    steward = home.member_name

    def refuse(why: str) -> tuple[bool, str, list[int]]:
        return False, f"{steward} refused job {doc.job_id}: {why}", []

    if not doc.secure_aggregation and peers:
        return refuse("the job document says plain aggregation, but masking keys were sent")
    log = SpendLog(home, dataset)
    held = log.view().jobs.get(doc.job_id)
    stored = _folder(home) / f"{doc.job_id}.{dataset}.json"
    if held is None:
        return refuse("this node holds no reservation for it; it must be admitted first")
    if not _same_charge(held, doc, analysis):
        return False, _another_use(steward, doc.job_id, dataset), []
    keys: dict[str, str] = {}
    if doc.secure_aggregation:
        try:
            keys = _trusted_peers(home, dataset, doc.job_id, doc.datasets, peers, evidence)
        except KumiaiError as exc:
            return refuse(str(exc))
    parties = len(keys) if doc.secure_aggregation else 1
    if stored.is_file():
        kept = json.loads(stored.read_text())
        if kept["parties"] != parties or kept.get("peers", {}) != keys:
            # masked anew for other keys, the same share could be unmasked alone
            return refuse(
                f"its release was drawn and masked for {kept['parties']} participant(s) with "
                "other masking keys; a release is drawn, and masked, for one set of participants"
            )
        noisy = [int(v) for v in kept["noisy"]]
    elif held.released:
        return refuse("its reservation was released before anything was drawn; start a new job")
    else:
        columns, rows = _columns(home, dataset)
        noisy = []
        for query, releases in zip(analysis.queries, analysis.releases(), strict=True):
            try:
                vectors = exact_vectors(query, columns, rows)
            except InvalidInput as exc:
                return refuse(str(exc))
            for release, vector in zip(releases, vectors, strict=True):
                share = noise_share(release.length, release.scale, parties)
                noisy.extend(v + n for v, n in zip(vector, share, strict=True))
        if held.spent < held.reserved:
            log.spend(job=doc.job_id, round_=0, epsilon=held.reserved)  # paid before it leaves
        write_json_atomic(stored, {"parties": parties, "peers": keys, "noisy": noisy}, mode=0o600)
    if not doc.secure_aggregation:
        return True, f"ε={analysis.epsilon:g} spent", noisy
    key = _masking_key(home, doc.job_id, dataset)
    return True, f"ε={analysis.epsilon:g} spent", mask(noisy, dataset, key, keys, doc.job_id)
