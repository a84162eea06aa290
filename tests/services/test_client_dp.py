"""Client-level DP (DP-FedAvg) end to end: nodes reserve and spend per row, clip their own
updates at the norm they reserved for, and the coordinator adds noise with Flower's wrappers
and accounts with Flower's accountant, with and without SecAgg+."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)
from flwr.clientapp.typing import ClientAppCallable
from flwr.supercore.privacy_accounting import GaussianPrivacyEvent
from flwr.supercore.task_identity import TaskIdentity

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.central_dp import flower_accountant
from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.domain.admission import Admitted
from kumiai.domain.budget import SPEND
from kumiai.domain.errors import JobFailed
from kumiai.domain.job import sign_job
from kumiai.domain.training import TrainingSettings
from kumiai.node.clipping import client_dp_mod
from kumiai.node.home import NodeHome
from kumiai.node.worker import NodeWorker
from kumiai.services.jobs import job_detail
from kumiai.services.models import list_models
from kumiai.services.privacy import budgets, plan_privacy, resolve_settings
from kumiai.services.training import train
from tests.conftest import COORDINATOR_KEY, make_job
from tests.services.helpers import HOSPITALS, heart_consortium, spend_records

CLIP = 0.05  # small enough that every real update is clipped
CLIENT = TrainingSettings(rounds=3, epsilon=8.0, dp_level="client", clipping_norm=CLIP)


def update_probe(path: Path) -> Callable[[Message, Context, ClientAppCallable], Message]:
    """A node mod outside the clipping: writes each update's norm as it leaves the node."""

    def probe(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(message, context)
        if message.metadata.message_type == MessageType.TRAIN and "arrays" in reply.content:
            sent = message.content["arrays"].to_numpy_ndarrays()  # type: ignore[union-attr]
            back = reply.content["arrays"].to_numpy_ndarrays()  # type: ignore[union-attr]
            norm = float(
                np.sqrt(sum(np.sum((b - s) ** 2) for b, s in zip(back, sent, strict=True)))
            )
            weight = reply.content["metrics"]["num-examples"]
            with path.open("a") as out:
                out.write(f"{norm} {weight}\n")
        return reply

    return probe


@pytest.mark.simulation
def test_a_client_level_job_clips_at_the_node_and_spends_per_row(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", plain_aggregation=True)
    settings = TrainingSettings(**{**CLIENT.__dict__, "secure_aggregation": False})
    planned = plan_privacy(consortium, "heart", settings)
    norms = tmp_path / "norms.txt"
    outcome = train(consortium, "heart", settings, node_mods=[update_probe(norms)])

    # Every update left its node clipped to C (and every real one needed it), weighted 1.
    rows = [line.split() for line in norms.read_text().splitlines()]
    assert len(rows) == 3 * 3
    assert all(float(norm) <= CLIP * (1 + 1e-9) for norm, _ in rows)
    assert min(float(norm) for norm, _ in rows) == pytest.approx(CLIP, rel=1e-6)
    assert {weight for _, weight in rows} == {"1"}

    # Each node spent, round by round, exactly what it planned per row, in its own log.
    sigma = resolve_settings(consortium, "heart", settings).noise_multiplier
    for member in HOSPITALS:
        dataset = f"{member}-heart"
        spends = [r for r in spend_records(consortium, member) if r["kind"] == SPEND]
        assert [r["round"] for r in spends] == [1, 2, 3]
        assert spends[-1]["epsilon"] == pytest.approx(planned[dataset].epsilon, rel=1e-9)
        assert outcome.epsilons[dataset] == pytest.approx(planned[dataset].epsilon, rel=1e-9)
        assert planned[dataset].epsilon <= 8.0 and planned[dataset].noise_multiplier == sigma
    lines = {b.dataset: b for b in budgets(consortium)}
    assert lines["cleveland-clinic-heart"].by_level == {
        "client": pytest.approx(planned["cleveland-clinic-heart"].epsilon)
    }

    # The coordinator's member-level ε is Flower's accountant's, at the smallest node δ.
    job = job_detail(consortium, outcome.job_id)
    delta = min(p.delta for p in planned.values())
    expected = flower_accountant(delta, 3)
    for r in job.rounds:
        expected.compose(GaussianPrivacyEvent(sigma, 3, 3))
        assert r["member_epsilon"] == pytest.approx(expected.get_privacy_spent().epsilon)
    assert outcome.member_epsilon == pytest.approx(job.rounds[-1]["member_epsilon"])


@pytest.mark.simulation
def test_client_level_dp_under_secure_aggregation_and_a_member_leaving(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    replies: list[Message] = []
    outcome = train(consortium, "heart", CLIENT, reply_hook=replies.append)
    training = [r for r in replies if r.metadata.message_type == MessageType.TRAIN]
    assert training and sum(len(a) for r in training for a in r.content.array_records.values()) == 0
    assert outcome.member_epsilon is not None and len(outcome.epsilons) == 3
    for member in HOSPITALS:
        spends = [r for r in spend_records(consortium, member) if r["kind"] == SPEND]
        assert len(spends) == 3

    # A member that leaves mid-job stops it: the noise was calibrated to all three.
    def crash_in_round_two(message: Message, context: Context, call_next: ClientAppCallable):  # type: ignore[no-untyped-def]
        config = protocol.job_config(message)
        if (
            message.metadata.message_type == MessageType.TRAIN
            and config is not None
            and int(config.get("server-round", 0)) == 2  # type: ignore[arg-type]
            and int(context.node_config["partition-id"]) == 0
        ):
            raise RuntimeError("node lost power")
        return call_next(message, context)

    models_before = len(list_models(consortium))
    with pytest.raises(JobFailed) as failure:
        train(consortium, "heart", CLIENT, node_mods=[crash_in_round_two])
    message = str(failure.value)
    assert "fewer than the 3 client-level DP calibrated its noise to" in message
    assert "no model was released" in message and "Traceback" not in message
    assert len(list_models(consortium)) == models_before


def test_a_node_refuses_to_clip_at_a_norm_it_did_not_reserve_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flower's mods log with the identity of the run they serve, as a node process sets it.
    for name in ("_task_id", "_run_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)
    member = "cleveland-clinic"
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=(member,))
    dataset, home = f"{member}-heart", consortium.member_home(member)
    worker = NodeWorker(home)
    settings = resolve_settings(consortium, "heart", CLIENT)
    ticket = make_job(datasets=(dataset,), settings=settings)
    allowed, reason, numbers = worker.admit(dataset, settings, ticket, None)
    assert allowed, reason
    assert 0 < numbers["member_epsilon"] < numbers["epsilon"] <= 8.0

    arrays = LogisticRegression(4, 2).arrays
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    signed = sign_job(ticket, COORDINATOR_KEY)
    NodeHome(home).save_admission("job-1", Admitted(signed, dataset, run=1).to_doc())
    state = {"dataset": dataset, "home": str(home), "job": "job-1"}
    context.state[protocol.STATE] = ConfigRecord(state)

    def message(clipping: float) -> Message:
        config = {protocol.JOB: signed.to_json(), "clipping_norm": clipping}
        content = RecordDict({"arrays": ArrayRecord(arrays), "config": ConfigRecord(config)})
        return Message(content, dst_node_id=1, message_type=MessageType.TRAIN)

    def far_away(msg: Message, ctx: Context) -> Message:
        moved = [a + 1.0 for a in arrays]
        return Message(RecordDict({"arrays": ArrayRecord(moved)}), reply_to=msg)

    refused = client_dp_mod(message(CLIP * 10), context, far_away)
    assert refused.has_error() and refused.error.code == protocol.REFUSED
    assert f"reserved its budget for a clipping norm of {CLIP}" in refused.error.reason

    clipped = client_dp_mod(message(CLIP), context, far_away)
    back = clipped.content["arrays"].to_numpy_ndarrays()  # type: ignore[union-attr]
    norm = np.sqrt(sum(np.sum((b - a) ** 2) for b, a in zip(back, arrays, strict=True)))
    assert norm == pytest.approx(CLIP)


def test_an_agreement_cap_below_the_plan_refuses_a_client_level_job(tmp_path: Path) -> None:
    member = "cleveland-clinic"
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=(member,))
    dataset = f"{member}-heart"
    worker = NodeWorker(consortium.member_home(member))
    settings = resolve_settings(consortium, "heart", CLIENT)
    allowed, reason, _ = worker.admit(dataset, settings, make_job(datasets=(dataset,)), 2.0)
    assert not allowed and "caps project 'heart' at ε=2" in reason
    assert [r["kind"] for r in spend_records(consortium, member)] == []
