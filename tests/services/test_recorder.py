"""What a job records about its sites: no site is left pending or silently missing."""

from pathlib import Path

from kumiai.domain.preprocessing import SiteSummary
from kumiai.domain.training import TrainingSettings
from kumiai.services.jobs import job_detail
from kumiai.services.recorder import JobRecorder
from kumiai.services.training import _start_job
from tests.services.helpers import heart_consortium


def test_a_site_whose_node_failed_namelessly_is_absent_with_the_nodes_words(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c")
    job, _, _ = _start_job(consortium, "heart", TrainingSettings(rounds=2), None)
    recorder = JobRecorder(consortium, job.ticket, None)
    admitted = {"cleveland-clinic-heart": SiteSummary(rows=10, schema={})}
    refused = {
        "hungarian-cardiology-heart": "hungarian-cardiology refused job: revoked",
        "node-42": "the node's check failed: OSError: disk full",
    }
    recorder.sites_decided(admitted, refused)
    sites = {s.dataset: s for s in job_detail(consortium, job.ticket.job_id).sites}
    assert sites["cleveland-clinic-heart"].status == "participating"
    assert sites["hungarian-cardiology-heart"].status == "refused"
    absent = sites["va-long-beach-heart"]
    assert absent.status == "absent" and "disk full" in (absent.reason or "")
    # The model's lineage lists every site that did not train, with its reason.
    assert set(recorder.refused) == {"hungarian-cardiology-heart", "va-long-beach-heart"}
    assert all(s.status != "pending" for s in sites.values())
