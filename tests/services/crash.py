"""A coordinator that dies between a node's spend and its own record (the crash window).

It does what a running job does, through the same services and the same node code, minus
Flower: it starts the job, has each node admit it and train round after round, and records
each round. In the last round the nodes log their spend (before their update would leave)
and the coordinator dies before recording it: `main` kills itself with SIGKILL there.
"""

import os
import signal
import sys
from pathlib import Path

from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.domain.preprocessing import merge_summaries
from kumiai.domain.training import TrainingSettings
from kumiai.node.worker import NodeWorker
from kumiai.services.consortium import Consortium, open_consortium
from kumiai.services.recorder import JobRecorder
from kumiai.services.training import _start_job

SETTINGS = TrainingSettings(rounds=5, epsilon=1.0)


def run_until_the_window(
    consortium: Consortium, recorded: int, logged: int, settings: TrainingSettings = SETTINGS
) -> str:
    """Run a job whose rounds 1..`recorded` are recorded and 1..`logged` spent at the nodes.

    Returns the job id; the job stays `running`, as a killed coordinator leaves it.
    """
    job, sites, _ = _start_job(consortium, "heart", settings, None)
    ticket = job.ticket
    recorder = JobRecorder(consortium, ticket, None)
    workers = {dataset: NodeWorker(Path(node.address)) for node, dataset in sites}
    for dataset, worker in workers.items():
        allowed, reason, numbers = worker.admit(dataset, settings, ticket, None)
        assert allowed, reason
        recorder.privacy_planned(dataset, numbers)
    recorder.sites_decided(list(workers), {})
    plan = merge_summaries({d: w.summary(d, settings) for d, w in workers.items()})
    arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
    for server_round in range(1, logged + 1):
        epsilons = {}
        for dataset, worker in workers.items():  # the node logs, then its update leaves
            *_, epsilon = worker.train(dataset, settings, plan, arrays, server_round, ticket.job_id)
            assert epsilon is not None
            epsilons[dataset] = epsilon
        if server_round <= recorded:
            recorder.round_done(server_round, None, {}, 0.1, epsilons)
    return ticket.job_id


def main() -> None:
    """python -m tests.services.crash HOME RECORDED LOGGED JOB_ID_FILE: dies with SIGKILL."""
    home, recorded, logged, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    job_id = run_until_the_window(open_consortium(Path(home)), recorded, logged)
    Path(out).write_text(job_id)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9, between the nodes' spend and the record


if __name__ == "__main__":
    main()
