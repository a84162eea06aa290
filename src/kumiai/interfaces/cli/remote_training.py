"""`kumiai train PROJECT --coordinator URL`: the coordinator runs the job, this command watches.

The job is posted to `POST /jobs` (signed like every remote command) and runs on the
SuperLink the coordinator supervises; `GET /jobs/{id}` is read every second and fed to the
same progress bar and site table as a local run. Ctrl-C stops watching only: the job goes
on at the coordinator, and `kumiai job ID` reads it later.
"""

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import typer

from kumiai.domain.errors import JobFailed

if TYPE_CHECKING:
    from kumiai.adapters.coordinator_client import CoordinatorClient
    from kumiai.domain.training import TrainingSettings
    from kumiai.services.recorder import RoundReport, TrainingProgress

POLL_SECONDS = 1.0
OVER = ("completed", "failed", "interrupted")


def train_at_coordinator(
    url: str,
    project: str,
    settings: "TrainingSettings",
    *,
    admission_timeout: float | None,
    round_timeout: float | None,
    poll: float | None = None,
) -> None:
    from kumiai.domain.training import NOT_TRAIN_OPTIONS
    from kumiai.interfaces.cli.context import console, errors
    from kumiai.interfaces.cli.progress import RichTrainingProgress
    from kumiai.interfaces.cli.remote import signed_client
    from kumiai.interfaces.cli.training import scores_table

    fields = json.loads(settings.to_json())
    body = {
        "project": project,
        "settings": {k: v for k, v in fields.items() if k not in NOT_TRAIN_OPTIONS},
        "admission_timeout": admission_timeout,
        "round_timeout": round_timeout,
    }
    with signed_client(url) as client:
        started = client.post("/jobs", body)
        job_id = started["job"]
        console.print(
            f"Job [bold]{job_id}[/] started at {url} (by {started['by'] or 'the proposer'}); "
            "watching it: Ctrl-C stops watching, the job goes on."
        )
        label = f"{project} · {settings.strategy} · at the coordinator"
        try:
            with RichTrainingProgress(console, settings.rounds, label) as progress:
                job = watch(client, job_id, progress, poll or POLL_SECONDS)
        except KeyboardInterrupt:
            errors.print(
                f"Stopped watching; job {job_id} goes on at the coordinator: "
                f"`kumiai --coordinator {url} job {job_id} --json` reads it."
            )
            raise typer.Exit(130) from None
        if job["status"] != "completed":
            raise JobFailed(f"job {job_id} {job['status']}: {job['error']}")
        model = next(
            (m["id"] for m in client.get("/models", project=project) if m["job_id"] == job_id),
            "no model",
        )
    last = job["rounds"][-1] if job["rounds"] else {"overall": {}, "sites": {}}
    title = f"{model} (job {job_id}, {job['completed_rounds']} rounds)"
    console.print(scores_table(title, last["overall"], last["sites"], refused_sites(job)))


def watch(
    client: "CoordinatorClient", job_id: str, progress: "TrainingProgress", poll: float
) -> dict[str, Any]:
    """Read the job every `poll` seconds, showing its admission and each new round, until it
    is over; returns its last record."""
    shown, admitted = 0, False
    while True:
        job: dict[str, Any] = client.get(f"/jobs/{quote(job_id, safe='')}")
        if not admitted and any(site["status"] != "pending" for site in job["sites"]):
            admitted = True
            joined = [s["dataset"] for s in job["sites"] if s["status"] == "participating"]
            progress.admitted(job_id, joined, refused_sites(job))
        for record in job["rounds"][shown:]:
            progress.round_done(round_report(record, job["planned_rounds"]))
        shown = len(job["rounds"])
        if job["status"] in OVER:
            return job
        time.sleep(poll)


def refused_sites(job: dict[str, Any]) -> dict[str, str]:
    return {s["dataset"]: s["reason"] or "" for s in job["sites"] if s["status"] == "refused"}


def round_report(record: dict[str, Any], rounds: int) -> "RoundReport":
    """A round as the job's record holds it, as the local run's progress bar is fed it."""
    from kumiai.services.recorder import RoundReport

    return RoundReport(
        round=record["round"],
        rounds=rounds,
        train_loss=record.get("train_loss"),
        overall=record["overall"],
        sites=record["sites"],
        seconds=record["seconds"],
        epsilons=record.get("epsilon") or {},
        member_epsilon=record.get("member_epsilon"),
    )
