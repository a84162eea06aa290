"""The names kumiai uses inside Flower messages, shared by coordinator and node."""

import json
import re

import numpy as np
from flwr.app import ConfigRecord, Message, MetricRecord

from kumiai.domain.metrics import HISTOGRAM_BINS, SiteScore

JOB = "kumiai-job"  # the coordinator-signed job document (kumiai.domain.job.SignedJob)
AGREEMENTS = "kumiai-agreements"  # the coordinator's copies, compared with the node's own
PLAN = "kumiai-plan"
HEAD = "kumiai-head"  # the coordinator's latest signed tree head
CONSISTENCY = "kumiai-consistency"  # {member: [from_size, [hex proof...]]}
COSIGNATURE = "kumiai-cosignature"  # ConfigRecord a node adds to its reply
SPEND = "kumiai-spend"  # ConfigRecord a node adds to a reply: its signed spend attestation
ATTESTED = "kumiai-attested"  # {dataset: the latest attestation the coordinator holds}
STATE = "kumiai"  # ConfigRecord the guard leaves in Context.state for the handlers
# Records and keys of kumiai's own messages
CONFIG = "config"  # the ConfigRecord of a query, train or evaluate message
ARRAYS = "arrays"  # model parameters (Flower's Message-API convention)
METRICS = "metrics"  # a reply's MetricRecord
LEGACY_METRICS = "fitres.metrics"  # the same under SecAgg+ (Flower's legacy FitRes)
SUMMARY = "summary"  # ConfigRecord of a node's SiteSummary: {DATASET, SUMMARY}
PRIVACY = "privacy"  # ConfigRecord of a node's privacy plan at admission
DATASET = "dataset"
ATTESTATION = "attestation"
EXAMPLES = "num-examples"
TRAIN_LOSS = "train-loss"  # only without DP
EPSILON = "epsilon"  # cumulative ε of the job on the dataset, -1 when not private
CORRECT, LOSS_SUM, HIST_POS, HIST_NEG = "correct", "loss-sum", "hist-pos", "hist-neg"
WITNESS, SIZE, SIGNED_HEAD, SIGNATURE = "witness", "size", "head", "signature"  # COSIGNATURE
# A SuperNode's --node-config: which member home (and dataset) it serves
NODE_HOME, NODE_DATASET = "kumiai-home", "kumiai-dataset"
# Keys of the STATE record the guard leaves for the handlers
STATE_HOME, STATE_DATASET, STATE_JOB, STATE_CAP = "home", "dataset", "job", "epsilon-cap"
# ... and the agreement's terms on aggregate statistics (kumiai.domain.disclosure)
STATE_STATISTICS, STATE_COHORT = "aggregate-statistics", "min-cohort"
# A summary or score a node's agreement keeps at the node: why, in place of the numbers
WITHHELD = "withheld"
ROWS = "rows"  # a site's training rows, public (sent even when its summary is withheld)
# A train message that first evaluates the model it brings (the previous round's): the
# round evaluated, in its config; the scores come back in the reply under EVALUATION
EVALUATES, EVALUATION = "kumiai-evaluates", "kumiai-evaluation"
# Keys Flower's strategies put in a config (the node compares them with its document)
ROUND = "server-round"
FEDPROX_MU, LEGACY_FEDPROX_MU = "proximal-mu", "proximal_mu"

REFUSED = 4030  # Flower Error code of a node's refusal
FAILED = 5030  # Flower Error code of a node that could not do admitted work (bad data, ...)
LEGACY_PARAMETERS = "fitins.parameters"  # where SecAgg+ (legacy FitIns) carries the model

_REFUSAL = re.compile(r"^\[dataset (?P<dataset>[^\]]+)\] (?P<reason>.*)$", re.S)


def job_config(message: Message) -> ConfigRecord | None:
    """The ConfigRecord carrying a kumiai job document, whatever key the app stored it under."""
    for record in message.content.config_records.values():
        if JOB in record:
            return record
    return None


def agreements_of(config: ConfigRecord) -> dict[str, str]:
    raw = config.get(AGREEMENTS, "{}")
    try:
        value = json.loads(str(raw))
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def attested_of(config: ConfigRecord) -> dict[str, str]:
    """The spend attestations the coordinator presents, by dataset (empty if none)."""
    try:
        value = json.loads(str(config.get(ATTESTED, "{}")))
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def refusal_reason(dataset: str, reason: str) -> str:
    return f"[dataset {dataset}] {reason}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_refusal(text: str) -> tuple[str | None, str]:
    """(dataset, reason) of a kumiai refusal; (None, a one-line summary) for other errors.

    A node's crash arrives as a Ray/Flower traceback; the summary keeps its last message.
    """
    match = _REFUSAL.match(text or "")
    if match:
        return match[DATASET], match["reason"]
    clean = _ANSI.sub("", text or "unknown error")
    if "Message: " in clean:
        clean = clean.rsplit("Message: ", 1)[1]
    clean = " ".join(clean.split())
    return None, clean if len(clean) <= 300 else clean[:297] + "..."


def consistency_for(config: ConfigRecord, member: str) -> tuple[int, list[bytes]] | None:
    """The proof the coordinator sent this member, from the last head it cosigned."""
    try:
        value = json.loads(str(config.get(CONSISTENCY, "{}"))).get(member)
        if value is None:
            return None
        return int(value[0]), [bytes.fromhex(h) for h in value[1]]
    except (ValueError, TypeError, AttributeError, IndexError):
        return None


def encode_consistency(proofs: dict[str, tuple[int, list[bytes]]]) -> str:
    return json.dumps(
        {m: [size, [h.hex() for h in proof]] for m, (size, proof) in proofs.items()}, sort_keys=True
    )


def score_metrics(score: SiteScore) -> MetricRecord:
    return MetricRecord(
        {
            "num-examples": score.examples,
            "correct": score.correct,
            "loss-sum": score.loss_sum,
            "hist-pos": [int(v) for v in score.hist_pos.ravel()],
            "hist-neg": [int(v) for v in score.hist_neg.ravel()],
        }
    )


def withheld_metrics() -> MetricRecord:
    """An evaluation reply that keeps the scores at the node (the site stays in the job)."""
    return MetricRecord({EXAMPLES: 0, WITHHELD: 1})


def metrics_score(metrics: MetricRecord) -> SiteScore | None:
    """The site's scores, or None when its agreement kept them at the node."""
    if WITHHELD in metrics:
        return None
    pos = np.asarray(metrics[HIST_POS], dtype=np.int64)
    neg = np.asarray(metrics[HIST_NEG], dtype=np.int64)
    return SiteScore(
        examples=int(metrics[EXAMPLES]),  # type: ignore[arg-type]
        correct=int(metrics[CORRECT]),  # type: ignore[arg-type]
        loss_sum=float(metrics[LOSS_SUM]),  # type: ignore[arg-type]
        hist_pos=pos.reshape(-1, HISTOGRAM_BINS),
        hist_neg=neg.reshape(-1, HISTOGRAM_BINS),
    )
