"""A user's own Flower app behind kumiai's guard, run in Flower's simulation engine."""

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.simulation import PartitionLocator, run_simulation
from kumiai.adapters.storage.database import transaction
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.job import JobDocument, JobKind, sign_job
from kumiai.domain.training import TrainingSettings
from kumiai.node.guard import make_guard_mod
from kumiai.services.agreements import agreements_for_job
from tests.services.helpers import PURPOSE, heart_consortium

pytestmark = pytest.mark.simulation


def test_the_guard_protects_a_plain_flower_app(tmp_path: Path) -> None:
    hospitals = ("cleveland-clinic", "va-long-beach")
    consortium, _ = heart_consortium(
        tmp_path / "c", hospitals=hospitals, sign=hospitals[:1], plain_aggregation=True
    )
    datasets = tuple(f"{h}-heart" for h in hospitals)
    with transaction(consortium.sessions) as session:
        agreements = agreements_for_job(session, "heart")
        head = consortium.ledger.latest_head(session)
    assert head is not None
    document = JobDocument(
        job_id="job-own",
        project="heart",
        purpose=PURPOSE,
        kind=JobKind.TRAIN,
        datasets=datasets,
        settings=TrainingSettings(rounds=1, secure_aggregation=False),
        agreements={
            d: SignedAgreement.from_json(a).terms.agreement_id for d, a in agreements.items()
        },
        issued_at=utc_now(),
    )
    job = sign_job(document, consortium.coordinator_key())
    sites = [(str(consortium.member_home(h)), d) for h, d in zip(hospitals, datasets, strict=True)]

    client = ClientApp(mods=[make_guard_mod(PartitionLocator(sites))])

    @client.train()
    def train(message: Message, context: Context) -> Message:  # the user's own code
        arrays = message.content["arrays"].to_numpy_ndarrays()
        dataset = str(context.state[protocol.STATE]["dataset"])
        return Message(
            RecordDict(
                {
                    "arrays": ArrayRecord([a + 1 for a in arrays]),
                    "metrics": MetricRecord({"num-examples": len(dataset)}),
                }
            ),
            reply_to=message,
        )

    seen: dict[str, list[Message]] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        nodes = list(grid.get_node_ids())
        while len(nodes) < 2:
            nodes = list(grid.get_node_ids())

        def send(config: ConfigRecord) -> list[Message]:
            content = RecordDict({"arrays": ArrayRecord([np.zeros(2)]), "config": config})
            messages = [
                Message(content, dst_node_id=n, message_type=MessageType.TRAIN) for n in nodes
            ]
            return list(grid.send_and_receive(messages, timeout=60))

        seen["with-ticket"] = send(
            ConfigRecord(
                {
                    protocol.JOB: job.to_json(),
                    protocol.AGREEMENTS: json.dumps(agreements),
                    protocol.HEAD: head.to_json(),
                    "server-round": 1,
                }
            )
        )
        seen["without-ticket"] = send(ConfigRecord({"server-round": 1}))

    run_simulation(server, client, 2, consortium.home)

    replies = seen["with-ticket"]
    accepted = [r for r in replies if not r.has_error()]
    refused = [r for r in replies if r.has_error()]
    assert len(accepted) == 1 and len(refused) == 1
    np.testing.assert_array_equal(accepted[0].content["arrays"].to_numpy_ndarrays()[0], [1, 1])
    dataset, reason = protocol.parse_refusal(refused[0].error.reason or "")
    assert dataset == "va-long-beach-heart" and "no signed agreement" in reason
    assert all(r.has_error() for r in seen["without-ticket"])
    assert all("no kumiai job document" in (r.error.reason or "") for r in seen["without-ticket"])
