"""The hostile coordinator: crafted Flower messages against a real node, every one refused.

`kumiai bench attacks --json` runs every case; `tests/adversarial/` runs the same cases
and also checks each refusal's reason. A case plays the coordinator against a real node:
kumiai's own ClientApp (guard, SecAgg+ and DP mods, handlers) called in-process, a real node
home, agreements its steward really signed, and the consortium's real coordinator key. Where
a case needs the job to be under way, it first plays the honest coordinator for a while.

A case counts as *refused* when the node answers with its refusal (Flower error 4030) and
as *leaked* when the node answered with content, or spent ε, in reply to the hostile message.
"""

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from flwr.app import (
    DEFAULT_TTL,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    Metadata,
    RecordDict,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Stage
from flwr.common.secure_aggregation.secaggplus_constants import Key as SecAggKey

from kumiai.adapters.flower import protocol
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.adapters.storage.database import transaction
from kumiai.domain import keys, merkle
from kumiai.domain.agreement import SignedAgreement, sign_agreement
from kumiai.domain.analysis import Query, make_analysis
from kumiai.domain.budget import SPEND, attest, signed_attestation
from kumiai.domain.clock import utc_now
from kumiai.domain.job import JobDocument, JobKind, SignedJob, sign_job
from kumiai.domain.ledger import TreeHead, sign_head
from kumiai.domain.masking_key import MaskingKey, SignedMaskingKey, sign_masking_key
from kumiai.domain.preprocessing import FeaturePlan, SiteSummary, merge_summaries
from kumiai.domain.secure_sum import public_key_b64
from kumiai.domain.training import TrainingSettings
from kumiai.node.port import LocalNode
from kumiai.node.spendlog import SpendLog
from kumiai.services.agreements import (
    agreements_for_job,
    request_data_use,
    revoke_agreement,
    sign_request,
)
from kumiai.services.consortium import init_consortium, open_consortium
from kumiai.services.datasets import register_dataset
from kumiai.services.demo import export_hospital_files
from kumiai.services.members import add_member
from kumiai.services.peer_evidence import evidence_for_nodes
from kumiai.services.projects import approve_project, propose_project

MEMBER, PEER = "cleveland-clinic", "hungarian-cardiology"
DATASET, PEER_DATASET = f"{MEMBER}-heart", f"{PEER}-heart"
PROJECT, PURPOSE = "heart", "diagnosis support"
CAP = 1.0  # every agreement's ε cap
ROUNDS = 3


# -- the consortium the node lives in --------------------------------------------------
def build_consortium(home: Path, exports: Path, *, plain_aggregation: bool, **terms: Any) -> None:
    """Two hospitals whose stewards signed ε ≤ 1 agreements (plain aggregation as given).

    `terms` changes the requests' other terms (job kinds, aggregate statistics, cohort).
    """
    consortium = init_consortium(home)
    add_member(consortium, "lab", "university")
    files = export_hospital_files(exports)
    for member in (MEMBER, PEER):
        add_member(consortium, member, "hospital")
        register_dataset(
            consortium,
            member=member,
            file=files[member],
            name=f"{member}-heart",
            target="num>0",
            missing={"chol": ("0",)},
            ignore=("id",),
        )
    propose_project(
        consortium,
        name=PROJECT,
        title="",
        purpose=PURPOSE,
        proposed_by="lab",
        members=(MEMBER, PEER),
    )
    approve_project(consortium, PROJECT, approved_by=MEMBER)
    for member in (MEMBER, PEER):
        request = request_data_use(
            consortium,
            project=PROJECT,
            dataset=f"{member}-heart",
            requested_by="lab",
            **{
                "job_kinds": "train,evaluate",
                "max_rounds": 10,
                "expires_at": utc_now() + timedelta(days=30),
                "epsilon_cap": CAP,
                "plain_aggregation": plain_aggregation,
                **terms,
            },
        )
        sign_request(consortium, request.id)


class Node:
    """One real node (its home, its ClientApp) and a coordinator that may lie to it."""

    def __init__(self, home: Path, *, plain_aggregation: bool) -> None:
        self.consortium = open_consortium(home)
        self.plain_aggregation = plain_aggregation
        # The node on this machine: its ClientApp and signatures come through the port;
        # only the cases that tamper with its files behind its back touch its home.
        self.port = LocalNode(self.consortium.member_home(MEMBER))
        self.home = self.port.home.root
        self.app = self.port.client_app(DATASET)
        self.key = self.consortium.coordinator_key()
        with transaction(self.consortium.sessions) as session:
            self.agreements = agreements_for_job(session, PROJECT)
            head = self.consortium.ledger.latest_head(session)
        assert head is not None
        self.head = head
        self.contexts: dict[int, Context] = {}
        self.attested: dict[str, str] = {}  # what an honest coordinator keeps from replies
        self.hostile_reply: Message | None = None
        self.spent_by_hostile = 0

    # -- documents -----------------------------------------------------------------------
    def settings(self, **changes: Any) -> TrainingSettings:
        values: dict[str, Any] = {
            "rounds": ROUNDS,
            "epsilon": CAP,
            "secure_aggregation": not self.plain_aggregation,
        }
        values.update(changes)
        return TrainingSettings(**values)

    def document(self, settings: TrainingSettings | None = None, **changes: Any) -> JobDocument:
        values: dict[str, Any] = {
            "job_id": "job-honest",
            "project": PROJECT,
            "purpose": PURPOSE,
            "kind": JobKind.TRAIN,
            "datasets": (DATASET, PEER_DATASET),
            "settings": settings or self.settings(),
            "agreements": {
                d: SignedAgreement.from_json(a).terms.agreement_id
                for d, a in self.agreements.items()
            },
            "issued_at": utc_now(),
        }
        values.update(changes)
        return JobDocument(**values)

    def job(self, settings: TrainingSettings | None = None, **changes: Any) -> SignedJob:
        return sign_job(self.document(settings, **changes), self.key)

    def config(self, job: SignedJob, **extra: Any) -> dict[str, Any]:
        return {
            protocol.JOB: job.to_json(),
            protocol.AGREEMENTS: json.dumps(self.agreements, sort_keys=True),
            protocol.HEAD: self.head.to_json(),
            protocol.ATTESTED: json.dumps(self.attested, sort_keys=True),
            **extra,
        }

    # -- sending -------------------------------------------------------------------------
    def send(self, message_type: str, records: RecordDict, run: int = 1) -> Message:
        """Deliver one message to the node's ClientApp, as its SuperNode would."""
        context = self.contexts.setdefault(
            run, Context(run_id=run, node_id=1, node_config={}, state=RecordDict(), run_config={})
        )
        metadata = Metadata(
            run_id=run,
            message_id=f"m{time.monotonic_ns()}",
            src_node_id=0,
            dst_node_id=1,
            reply_to_message_id="",
            group_id="1",
            created_at=time.time(),
            ttl=DEFAULT_TTL,
            message_type=message_type,
        )
        reply = self.app(Message(records, metadata=metadata), context)
        if not reply.has_error() and protocol.SPEND in reply.content:
            spend = reply.content[protocol.SPEND]
            self.attested[str(spend["dataset"])] = str(spend["attestation"])
        return reply

    def hostile(self, message_type: str, records: RecordDict, run: int = 1) -> Message:
        """The message under test: what the node answers and what ε it spent answering."""
        before = self.spends()
        reply = self.send(message_type, records, run)
        self.spent_by_hostile = self.spends() - before
        self.hostile_reply = reply
        return reply

    def spends(self) -> int:
        log = SpendLog(self.port.home, DATASET)
        if not log.log.is_file():
            return 0
        lines = log.log.read_text().splitlines()
        return sum(json.loads(line)["record"]["kind"] == SPEND for line in lines if line)

    # -- the honest coordinator ------------------------------------------------------------
    def admit(self, job: SignedJob, run: int = 1) -> FeaturePlan:
        reply = self.send(
            MessageType.QUERY, RecordDict({"config": ConfigRecord(self.config(job))}), run
        )
        honest(reply, "admission")
        summary = SiteSummary.from_json(str(reply.content["summary"]["summary"]))
        return merge_summaries({DATASET: summary})

    def train_records(
        self, job: SignedJob, plan: FeaturePlan, server_round: int, **extra: Any
    ) -> RecordDict:
        arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
        config = self.config(job, **{protocol.PLAN: plan.to_json(), protocol.ROUND: server_round})
        config.update(extra)
        return RecordDict({"arrays": ArrayRecord(arrays), "config": ConfigRecord(config)})

    def train(self, job: SignedJob, plan: FeaturePlan, server_round: int, run: int = 1) -> None:
        honest(
            self.send(MessageType.TRAIN, self.train_records(job, plan, server_round), run), "train"
        )

    def stage_records(self, stage: str, **values: Any) -> RecordDict:
        return RecordDict({RECORD_KEY_CONFIGS: ConfigRecord({SecAggKey.STAGE: stage, **values})})


def honest(reply: Message, what: str) -> None:
    if reply.has_error():
        raise RuntimeError(f"the honest {what} was refused: {reply.error.reason}")


@dataclass(frozen=True)
class Released:
    """A node's answer through its port to an analysis admission or release (no Flower
    message: an analysis is one call per node, docs/analytics.md)."""

    allowed: bool
    reason: str
    vector: list[int]


# -- analyses: the masking keys, ε and cohort a coordinator asks for -------------------------
ANALYSIS_JOB, OTHER_MEMBER = "job-analysis", "lab"  # lab: a member that owns no dataset
ANALYSIS_TERMS = (("job_kinds", "statistics"),)


def _analysis_job(node: Node, epsilon: float = CAP) -> str:
    """A secure count over both sites, signed by the coordinator (its JSON)."""
    analysis = make_analysis([Query("count")], epsilon)
    settings = TrainingSettings(
        rounds=1, epsilon=epsilon, secure_aggregation=True, analysis=analysis.to_json()
    )
    return node.job(settings, job_id=ANALYSIS_JOB, kind=JobKind.STATISTICS).to_json()


def _admit_analysis(node: Node, epsilon: float = CAP) -> Released:
    """The node's admission alone: where the coordinator asks for ε or a cohort it may not."""
    allowed, reason, _ = node.port.admit_analysis(DATASET, _analysis_job(node, epsilon))
    return Released(allowed, reason, [])


def release_with(peer_key: Callable[[Node, str], str | None]) -> Callable[[Node], Released]:
    """Both sites admit honestly; the node is then asked to release with the peer's masking
    key replaced by `peer_key(node, honest key)` (None: the peer dropped)."""

    def play(node: Node) -> Released:
        job = _analysis_job(node)
        pairs = ((MEMBER, DATASET), (PEER, PEER_DATASET))
        sites = {d: (node.consortium.node(m), m) for m, d in pairs}
        keys = {}
        for dataset, (port, _) in sites.items():
            allowed, reason, key = port.admit_analysis(dataset, job)
            if not allowed:
                raise RuntimeError(f"the honest admission was refused: {reason}")
            keys[dataset] = key
        evidence = evidence_for_nodes(node.consortium, sites)[DATASET]
        forged = peer_key(node, keys[PEER_DATASET])
        peers = {DATASET: keys[DATASET], **({PEER_DATASET: forged} if forged else {})}
        before = node.spends()
        released = Released(*node.port.release_analysis(DATASET, job, peers, evidence))
        node.spent_by_hostile = node.spends() - before
        return released

    return play


def _masking_key(node: Node, signer: str, job: str = ANALYSIS_JOB) -> str:
    """A fresh masking key for the peer's dataset, signed by `signer`'s own member key."""
    statement = MaskingKey(job, PEER_DATASET, PEER, public_key_b64(X25519PrivateKey.generate()))
    key = LocalNode(node.consortium.member_home(signer)).home.private_key()
    return sign_masking_key(statement, key).to_json()


def _unsigned(node: Node, honest_key: str) -> str:
    return SignedMaskingKey(SignedMaskingKey.from_json(honest_key).statement, "").to_json()


# -- the cases -------------------------------------------------------------------------
@dataclass(frozen=True)
class Attack:
    name: str
    expect: str  # a phrase the node's reason must contain
    play: Callable[[Node], Message | Released]
    plain_aggregation: bool = False  # the agreements allow plain aggregation
    terms: tuple[tuple[str, Any], ...] = ()  # other terms the stewards signed


def _changed_after_admission(**settings: Any) -> Callable[[Node], Message]:
    """Admit the honest job, train round 1, then send round 2 under a re-signed document."""

    def play(node: Node) -> Message:
        job = node.job()
        plan = node.admit(job)
        node.train(job, plan, 1)
        doc = job.document
        forged = sign_job(replace(doc, settings=replace(doc.settings, **settings)), node.key)
        return node.hostile(MessageType.TRAIN, node.train_records(forged, plan, 2))

    return play


def _plain_train_under_secure(node: Node) -> Message:
    job = node.job()
    plan = node.admit(job)
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 1))


def _plain_document_under_secure_agreement(node: Node) -> Message:
    job = node.job(node.settings(secure_aggregation=False))
    return node.hostile(MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))}))


def _stage_without_job(stage: str) -> Callable[[Node], Message]:
    def play(node: Node) -> Message:
        return node.hostile(MessageType.TRAIN, node.stage_records(stage))

    return play


def _setup_with_threshold_one(node: Node) -> Message:
    node.admit(node.job())
    records = node.stage_records(
        Stage.SETUP,
        **{SecAggKey.SAMPLE_NUMBER: 2, SecAggKey.SHARE_NUMBER: 2, SecAggKey.THRESHOLD: 1},
    )
    return node.hostile(MessageType.TRAIN, records)


def _replay_round(node: Node) -> Message:
    job = node.job()
    plan = node.admit(job)
    node.train(job, plan, 1)
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 1))


def _replay_into_another_run(node: Node) -> Message:
    job = node.job()
    plan = node.admit(job)
    node.train(job, plan, 1)
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 2), run=2)


def _another_jobs_message(node: Node) -> Message:
    job = node.job()
    plan = node.admit(job)
    other = node.job(job_id="job-other")
    return node.hostile(MessageType.TRAIN, node.train_records(other, plan, 1))


def _admit_with(**changes: Any) -> Callable[[Node], Message]:
    """Ask for admission of a validly signed document that differs from the agreement."""

    def play(node: Node) -> Message:
        job = node.job(**changes)
        records = RecordDict({"config": ConfigRecord(node.config(job))})
        return node.hostile(MessageType.QUERY, records)

    return play


def _admit_settings(**settings: Any) -> Callable[[Node], Message]:
    def play(node: Node) -> Message:
        job = node.job(node.settings(**settings))
        records = RecordDict({"config": ConfigRecord(node.config(job))})
        return node.hostile(MessageType.QUERY, records)

    return play


def _presented_agreement(
    change: Callable[[Node, SignedAgreement], SignedAgreement],
) -> Callable[[Node], Message]:
    """The coordinator presents its own version of the node's agreement."""

    def play(node: Node) -> Message:
        original = SignedAgreement.from_json(node.agreements[DATASET])
        node.agreements = {**node.agreements, DATASET: change(node, original).to_json()}
        job = node.job()
        return node.hostile(
            MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))})
        )

    return play


def _forged(_: Node, agreement: SignedAgreement) -> SignedAgreement:
    return sign_agreement(agreement.terms, keys.new_private_key())


def _modified(_: Node, agreement: SignedAgreement) -> SignedAgreement:
    return replace(agreement, terms=replace(agreement.terms, epsilon_cap=100.0, max_rounds=1000))


def _own_copy(
    change: Callable[[Node, SignedAgreement], SignedAgreement],
) -> Callable[[Node], Message]:
    """The node's own file is replaced (a tampered file); the coordinator presents the same."""

    def play(node: Node) -> Message:
        original = SignedAgreement.from_json(node.agreements[DATASET])
        bad = change(node, original)
        node.port.store_agreement(bad)
        node.agreements = {**node.agreements, DATASET: bad.to_json()}
        job = node.job()
        return node.hostile(
            MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))})
        )

    return play


def _expired(node: Node, agreement: SignedAgreement) -> SignedAgreement:
    """Signed by the node's real steward key, but its term is over."""
    terms = replace(
        agreement.terms,
        expires_at=utc_now() - timedelta(days=1),
        signed_at=utc_now() - timedelta(days=10),
    )
    return node.port.sign_agreement(terms)


def _revoked_mid_job(node: Node) -> Message:
    job = node.job()
    plan = node.admit(job)
    node.train(job, plan, 1)
    agreement_id = job.document.agreements[DATASET]
    revoke_agreement(node.consortium, agreement_id, "consent withdrawn mid-job")
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 2))


def _evaluation_job_trains(node: Node) -> Message:
    job = node.job(kind=JobKind.EVALUATE)
    plan = node.admit(job)
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 1))


def _statistics_job(node: Node) -> Message:
    job = node.job(kind=JobKind.STATISTICS)
    return node.hostile(MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))}))


def _head_case(rewrite: bool) -> Callable[[Node], Message]:
    """After witnessing the real head, the node is shown a fork or a rewritten history."""

    def play(node: Node) -> Message:
        node.admit(node.job())  # the node witnesses the real head
        size = node.head.size + (0 if rewrite else 3)
        fake = merkle.MerkleTree(merkle.leaf_hash(b"fork" + bytes([i])) for i in range(size))
        head = sign_head(TreeHead(size, fake.root().hex(), utc_now()), node.key)
        node.head = head
        consistency = protocol.encode_consistency(
            {MEMBER: (size - 3, fake.consistency_proof(size - 3, size))} if not rewrite else {}
        )
        job = node.job(job_id="job-after")
        config = node.config(job, **{protocol.CONSISTENCY: consistency})
        records = RecordDict({"config": ConfigRecord(config)})
        return node.hostile(MessageType.QUERY, records, run=2)

    return play


def _unpinned_coordinator(node: Node) -> Message:
    job = sign_job(node.document(), keys.new_private_key())
    return node.hostile(MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))}))


def _no_document(node: Node) -> Message:
    return node.hostile(MessageType.QUERY, RecordDict({"config": ConfigRecord({"lr": 0.1})}))


def _summaries_twice(node: Node) -> Message:
    job = node.job()
    node.admit(job)
    return node.hostile(MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))}))


def _path_in_job_id(node: Node) -> Message:
    job = node.job(job_id="../../key")
    return node.hostile(MessageType.QUERY, RecordDict({"config": ConfigRecord(node.config(job))}))


def _truncated_spend_log(node: Node) -> Message:
    """A job spent, then its lines vanished from the node's log (deleted, or an old backup)."""
    job = node.job()
    plan = node.admit(job)
    node.train(job, plan, 1)
    log = SpendLog(node.port.home, DATASET).log
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(line for line in lines if '"job":"job-honest"' not in line))
    after = node.job(job_id="job-after")
    records = RecordDict({"config": ConfigRecord(node.config(after))})
    return node.hostile(MessageType.QUERY, records, run=2)


def _forged_attestation(node: Node) -> Message:
    """The coordinator presents an attestation of the node's log signed by another key."""
    mark = attest(MEMBER, DATASET, ["x"] * 50)
    forged = signed_attestation(mark, keys.sign(keys.new_private_key(), mark.signed_bytes()))
    node.attested = {DATASET: forged}
    records = RecordDict({"config": ConfigRecord(node.config(node.job()))})
    return node.hostile(MessageType.QUERY, records)


def _round_beyond_document(node: Node) -> Message:
    job = node.job(node.settings(rounds=1))
    plan = node.admit(job)
    node.train(job, plan, 1)
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 2))


MESSAGE_ATTACKS: tuple[Attack, ...] = (  # crafted Flower messages
    # settings that differ from the admitted document, even re-signed by the coordinator
    Attack(
        "settings: no DP after admission",
        "settings.epsilon",
        _changed_after_admission(epsilon=None),
        True,
    ),
    Attack(
        "settings: smaller sigma",
        "settings.noise_multiplier",
        _changed_after_admission(epsilon=None, noise_multiplier=0.1),
        True,
    ),
    Attack(
        "settings: larger clipping norm",
        "settings.clipping_norm",
        _changed_after_admission(clipping_norm=50.0),
        True,
    ),
    Attack(
        "settings: more local steps",
        "settings.local_epochs",
        _changed_after_admission(local_epochs=20),
        True,
    ),
    Attack(
        "settings: another model family after admission",
        "settings.model",
        _changed_after_admission(model="mlp"),
        True,
    ),
    Attack(
        "settings: more rounds than admitted",
        "settings.rounds",
        _changed_after_admission(rounds=9),
        True,
    ),
    Attack(
        "settings: FedProx mu in the config differs",
        "settings.proximal_mu",
        lambda n: _config_value(n, "proximal-mu", 5.0),
        True,
    ),
    Attack(
        "settings: DP clipping norm in the config differs",
        "settings.clipping_norm",
        lambda n: _config_value(n, "clipping_norm", 50.0),
        True,
    ),
    # secure aggregation
    Attack(
        "plain TRAIN where the document promises SecAgg+",
        "plain (unmasked) update",
        _plain_train_under_secure,
    ),
    Attack(
        "plain aggregation under an agreement that requires SecAgg+",
        "requires secure aggregation",
        _plain_document_under_secure_agreement,
    ),
    Attack(
        "SecAgg+ setup without an admitted job",
        "no job was admitted in this run",
        _stage_without_job(Stage.SETUP),
    ),
    Attack(
        "SecAgg+ key sharing without an admitted job",
        "no job was admitted in this run",
        _stage_without_job(Stage.SHARE_KEYS),
    ),
    Attack(
        "SecAgg+ unmasking without an admitted job",
        "no job was admitted in this run",
        _stage_without_job(Stage.UNMASK),
    ),
    Attack(
        "SecAgg+ setup with a threshold of one",
        "threshold of at least 2",
        _setup_with_threshold_one,
    ),
    # replays
    Attack("replay of an earlier round", "trains each round once", _replay_round, True),
    Attack(
        "replay into another run", "never replayed into another run", _replay_into_another_run, True
    ),
    Attack("another job's message", "belongs to job job-honest", _another_jobs_message, True),
    Attack("summaries asked twice", "once per job", _summaries_twice),
    Attack(
        "a round beyond the document", "outside the job's 1 rounds", _round_beyond_document, True
    ),
    # what the job is for
    Attack(
        "another dataset",
        "holds none of its datasets",
        _admit_with(datasets=("someone-elses-data",)),
    ),
    Attack("another project", "covers project 'heart'", _admit_with(project="surveillance")),
    Attack("another purpose", "allows the purpose", _admit_with(purpose="marketing")),
    Attack("more rounds than the agreement", "allows at most 10", _admit_settings(rounds=11)),
    Attack(
        "no DP under an epsilon cap", "requires differential privacy", _admit_settings(epsilon=None)
    ),
    Attack("epsilon over the cap", "over agreement", _admit_settings(epsilon=5.0)),
    Attack(
        "an evaluation job that asks to train", "may not ask for 'train'", _evaluation_job_trains
    ),
    # agreements
    Attack(
        "presented agreement forged",
        "differs from the one this node's steward signed",
        _presented_agreement(_forged),
    ),
    Attack(
        "presented agreement modified",
        "differs from the one this node's steward signed",
        _presented_agreement(_modified),
    ),
    Attack("own copy modified on disk", "does not verify", _own_copy(_modified)),
    Attack("own copy signed by the wrong key", "does not verify", _own_copy(_forged)),
    Attack("agreement expired", "expired", _own_copy(_expired)),
    Attack("agreement revoked mid-job", "was revoked", _revoked_mid_job, True),
    # the coordinator's identity and log
    Attack(
        "job not signed by the pinned coordinator key",
        "not signed by the coordinator key",
        _unpinned_coordinator,
    ),
    Attack("forked tree head", "forked or rewrote", _head_case(rewrite=False)),
    Attack("rewritten tree head", "forked or rewrote", _head_case(rewrite=True)),
    Attack("no job document", "no kumiai job document", _no_document),
    # aggregate statistics
    Attack(
        "a statistics job where the agreement forbids statistics",
        "lets no aggregate statistics leave",
        _statistics_job,
        terms=(("aggregate_statistics", "forbidden"), ("job_kinds", "train,evaluate,statistics")),
    ),
    Attack(
        "dp statistics without public bounds",
        "needs public bounds",
        _admit_settings(),
        terms=(("aggregate_statistics", "dp"),),
    ),
    Attack(
        "a site below the agreement's minimum cohort",
        "only over at least 1000 rows",
        _admit_settings(),
        terms=(("min_cohort", 1000),),
    ),
    # the spend log
    Attack("spend log truncated on disk", "lines were removed", _truncated_spend_log, True),
    Attack("spend attestation forged", "this node did not sign", _forged_attestation),
    Attack("a job id that names a path", "is not a valid name", _path_in_job_id),
)
ANALYSIS_ATTACKS: tuple[Attack, ...] = (  # calls through the node port
    Attack(
        "analysis: a masking key not signed",
        f"is not signed by '{PEER}'",
        release_with(_unsigned),
        terms=ANALYSIS_TERMS,
    ),
    Attack(
        "analysis: a masking key signed by another member",
        f"is not signed by '{PEER}', the member that owns it",
        release_with(lambda node, _: _masking_key(node, OTHER_MEMBER)),
        terms=ANALYSIS_TERMS,
    ),
    Attack(
        "analysis: a masking key signed for another job",
        "was signed for job job-other",
        release_with(lambda node, _: _masking_key(node, PEER, "job-other")),
        terms=ANALYSIS_TERMS,
    ),
    Attack(
        "analysis: a dropped peer",
        "masks for exactly the sites the signed job document names",
        release_with(lambda node, _: None),
        terms=ANALYSIS_TERMS,
    ),
    Attack(
        "analysis: ε over the agreement's cap",
        "over agreement",
        lambda node: _admit_analysis(node, 5.0),
        terms=ANALYSIS_TERMS,
    ),
    Attack(
        "analysis: a site below the minimum cohort",
        "below the minimum cohort of 1000",
        _admit_analysis,
        terms=(*ANALYSIS_TERMS, ("min_cohort", 1000)),
    ),
)
ATTACKS = MESSAGE_ATTACKS + ANALYSIS_ATTACKS


def _config_value(node: Node, key: str, value: float) -> Message:
    job = node.job()
    plan = node.admit(job)
    return node.hostile(MessageType.TRAIN, node.train_records(job, plan, 1, **{key: value}))


# -- running ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    name: str
    refused: bool
    leaked: bool
    reason: str
    expected: bool  # the reason names what the case expects

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "refused": self.refused, "reason": self.reason}


class Templates:
    """One built consortium per kind of agreement, copied fresh for every case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[tuple[bool, tuple[tuple[str, Any], ...]], Path] = {}

    def node(
        self,
        case_dir: Path,
        plain_aggregation: bool = False,
        terms: tuple[tuple[str, Any], ...] = (),
    ) -> Node:
        key = (plain_aggregation, terms)
        if key not in self.built:
            home = self.root / f"template-{len(self.built)}"
            build_consortium(
                home, self.root / "exports", plain_aggregation=plain_aggregation, **dict(terms)
            )
            self.built[key] = home
        shutil.copytree(self.built[key], case_dir)
        return Node(case_dir, plain_aggregation=plain_aggregation)


def play(attack: Attack, templates: Templates, case_dir: Path) -> Outcome:
    node = templates.node(case_dir, attack.plain_aggregation, attack.terms)
    reply = attack.play(node)
    if isinstance(reply, Released):
        leaked = reply.allowed or bool(reply.vector) or node.spent_by_hostile > 0
        expected = attack.expect in reply.reason
        return Outcome(attack.name, not reply.allowed, leaked, reply.reason, expected)
    refused = reply.has_error() and reply.error.code == protocol.REFUSED
    _, reason = (
        protocol.parse_refusal(reply.error.reason or "") if reply.has_error() else (None, "")
    )
    leaked = not reply.has_error() or node.spent_by_hostile > 0
    return Outcome(attack.name, refused, leaked, reason, attack.expect in reason)


def run(log: Callable[[str], None] = lambda _: None, **_: Any) -> dict[str, Any]:
    """Every attack against a fresh copy of a real node; `{"attacks", "refused", "leaked", ...}`."""
    with tempfile.TemporaryDirectory(prefix="kumiai-attacks-") as folder:
        templates = Templates(Path(folder))
        outcomes = []
        for index, attack in enumerate(ATTACKS, 1):
            outcome = play(attack, templates, Path(folder) / f"case-{index}")
            verdict = "refused" if outcome.refused else "NOT REFUSED"
            log(f"[{index}/{len(ATTACKS)}] {attack.name}: {verdict}")
            outcomes.append(outcome)
    return {
        "attacks": len(outcomes),
        "refused": sum(o.refused for o in outcomes),
        "leaked": sum(o.leaked for o in outcomes),
        "reasons_as_expected": sum(o.expected for o in outcomes),
        "cases": [o.as_dict() for o in outcomes],
    }
