"""A hostile coordinator against a real node: every crafted message refused, nothing leaks.

The cases live in `benchmarks.attacks` so that `kumiai bench attacks` runs the very same
ones. Each runs against a fresh copy of a real consortium: kumiai's own ClientApp with its
guard, a real node home, agreements its steward signed, the real coordinator key.
"""

import re
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, MessageType, RecordDict

from kumiai.adapters.flower import protocol
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.benchmarks.attacks import (
    ANALYSIS_ATTACKS,
    ANALYSIS_TERMS,
    ATTACKS,
    DATASET,
    ROUNDS,
    Attack,
    Node,
    Templates,
    play,
    release_with,
)
from tests.services.helpers import heart_public_domain

DOCS = Path(__file__).resolve().parents[2] / "docs" / "trust-model.md"


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_the_node_refuses_and_nothing_leaks(
    attack: Attack, templates: Templates, tmp_path: Path
) -> None:
    outcome = play(attack, templates, tmp_path / "case")
    assert outcome.refused, outcome.reason
    assert not outcome.leaked
    assert attack.expect in outcome.reason, outcome.reason


def _honest_job(node: Node) -> None:
    """The honest coordinator's whole job: admission, every round trained and evaluated."""
    job = node.job()
    plan = node.admit(job)
    arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
    for server_round in range(1, ROUNDS + 1):
        reply = node.send(MessageType.TRAIN, node.train_records(job, plan, server_round))
        assert not reply.has_error(), reply.error.reason
        metrics = reply.content["metrics"]
        assert "train-loss" not in metrics  # under DP the exact loss would leak, uncounted
        assert float(metrics["epsilon"]) > 0
        arrays = reply.content["arrays"].to_numpy_ndarrays()
        evaluate = node.train_records(job, plan, server_round)
        evaluate["arrays"] = reply.content["arrays"]
        scored = node.send(MessageType.EVALUATE, evaluate)
        assert not scored.has_error(), scored.error.reason
    assert len(arrays) == 2
    assert node.spends() == ROUNDS


def test_the_honest_coordinator_is_served_in_full(templates: Templates, tmp_path: Path) -> None:
    """The harness is not a node that refuses everything: the honest job runs to the end."""
    node = templates.node(tmp_path / "case", True)
    _honest_job(node)


def test_the_honest_analysis_release_is_served(templates: Templates, tmp_path: Path) -> None:
    """The analysis cases are not a node that refuses everything: with the peer's own key,
    the node releases its masked vector and spends its ε once."""
    node = templates.node(tmp_path / "case", False, ANALYSIS_TERMS)
    released = release_with(lambda _, honest_key: honest_key)(node)
    assert released.allowed, released.reason
    assert released.vector and node.spent_by_hostile == 1
    assert {a.name for a in ANALYSIS_ATTACKS} <= {a.name for a in ATTACKS}


def test_a_settings_record_beside_the_document_is_never_obeyed(
    templates: Templates, tmp_path: Path
) -> None:
    """The old two-document hole: a 'no DP' settings record is ignored; the node still pays."""
    node = templates.node(tmp_path / "case", True)
    job = node.job()
    plan = node.admit(job)
    node.train(job, plan, 1)
    records = node.train_records(
        job, plan, 2, **{"kumiai-settings": node.settings(epsilon=None).to_json()}
    )
    reply = node.hostile(MessageType.TRAIN, records)
    assert not reply.has_error()
    assert node.spent_by_hostile == 1  # trained under DP as admitted, and counted
    assert "train-loss" not in reply.content["metrics"]


def test_a_node_that_failed_mid_round_says_why_in_one_line(
    templates: Templates, tmp_path: Path
) -> None:
    """A changed data file: the node's answer names the dataset and cause, no traceback."""
    node = templates.node(tmp_path / "case", True)
    job = node.job()
    plan = node.admit(job)
    data = Path(node.consortium.node("cleveland-clinic").dataset(DATASET).file)
    original = data.read_bytes()
    try:
        data.write_bytes(original + b"\n")
        reply = node.send(MessageType.TRAIN, node.train_records(job, plan, 1))
    finally:
        data.write_bytes(original)
    assert reply.has_error() and reply.error.code == protocol.FAILED
    dataset, reason = protocol.parse_refusal(reply.error.reason or "")
    assert dataset == DATASET and "changed since registration" in reason
    assert "Traceback" not in reason and "\n" not in reason


def test_a_refused_message_moves_no_counter(templates: Templates, tmp_path: Path) -> None:
    """After a refused replay the honest next round still goes through."""
    node = templates.node(tmp_path / "case", True)
    job = node.job()
    plan = node.admit(job)
    node.train(job, plan, 1)
    assert node.hostile(MessageType.TRAIN, node.train_records(job, plan, 1)).has_error()
    node.train(job, plan, 2)
    assert node.spends() == 2


def test_stage_messages_of_an_admitted_secure_job_reach_secagg(
    templates: Templates, tmp_path: Path
) -> None:
    """A real SecAgg+ setup for the admitted job passes the guard (Flower answers it)."""
    node = templates.node(tmp_path / "case", False)
    node.admit(node.job())
    from flwr.common.secure_aggregation.secaggplus_constants import Key, Stage

    setup = node.stage_records(
        Stage.SETUP,
        **{
            Key.SAMPLE_NUMBER: 2,
            Key.SHARE_NUMBER: 2,
            Key.THRESHOLD: 2,
            Key.CLIPPING_RANGE: 8.0,
            Key.TARGET_RANGE: 1 << 22,
            Key.MOD_RANGE: 1 << 32,
            Key.MAX_WEIGHT: 1000.0,
        },
    )
    reply = node.send(MessageType.TRAIN, setup)
    assert not reply.has_error(), reply.error.reason
    assert "secaggplus_configs" in reply.content.config_records


def test_every_attack_is_named_in_the_trust_model() -> None:
    """docs/trust-model.md lists the attacks; the list and the suite never drift apart."""
    text = DOCS.read_text()
    table = re.findall(r"^\| (.+?) \| refused: ", text, flags=re.M)
    assert sorted(table) == sorted(a.name for a in ATTACKS)


def test_an_unknown_message_without_a_document_never_reaches_a_handler(
    templates: Templates, tmp_path: Path
) -> None:
    node = templates.node(tmp_path / "case", False)
    reply = node.send(MessageType.EVALUATE, RecordDict({"config": ConfigRecord({})}))
    assert reply.has_error() and reply.error.code == protocol.REFUSED


def test_dp_scores_leave_once_for_the_final_model_and_are_paid_for(
    templates: Templates, tmp_path: Path
) -> None:
    """Under `aggregate_statistics: dp` a coordinator cannot collect a score every round."""
    node = templates.node(tmp_path / "case", True, (("aggregate_statistics", "dp"),))
    settings = node.settings(
        epsilon=0.5, statistics_epsilon=0.4, public_domain=heart_public_domain(node.home)
    )  # training and statistics together within the agreement's cap of 1
    job = node.job(settings)
    plan = node.admit(job)
    assert node.spends() == 1  # the summary was paid for before it left
    for server_round in range(1, ROUNDS + 1):
        node.train(job, plan, server_round)
        evaluate = node.train_records(job, plan, server_round)
        before = node.spends()
        scored = node.send(MessageType.EVALUATE, evaluate)
        assert not scored.has_error(), scored.error.reason
        metrics = scored.content["metrics"]
        if server_round < ROUNDS:  # withheld: nothing but the marker, nothing spent
            assert protocol.WITHHELD in metrics and int(metrics["num-examples"]) == 0
            assert node.spends() == before
        else:
            assert protocol.WITHHELD not in metrics and int(metrics["num-examples"]) > 0
            assert node.spends() == before + 1
            assert float(metrics["epsilon"]) > 0
    again = node.hostile(MessageType.EVALUATE, node.train_records(job, plan, ROUNDS))
    assert again.has_error() and "already evaluated" in (again.error.reason or "")
    assert node.spent_by_hostile == 0
