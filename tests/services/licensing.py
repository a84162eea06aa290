"""A small association with a released model and recorded contributions, built fast.

The consortium, datasets, charter and votes go through the real services; the trained
model is stood in for by its rows and its two ledger entries (`model.released`, then the
coordinator's `model.contributions` with chosen shares), so that royalty tests need no
federated training. tests/interfaces/test_contributions_cli.py covers the real path.
"""

import json
from pathlib import Path

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, ModelVersionRow
from kumiai.domain.charter import Fraction
from kumiai.domain.clock import utc_now
from kumiai.domain.ledger import COORDINATOR
from kumiai.services import charter, members, motions
from kumiai.services.consortium import Consortium, init_consortium
from kumiai.services.datasets import register_dataset
from kumiai.services.demo import export_hospital_files
from kumiai.services.ledger import Act
from kumiai.services.projects import approve_project, propose_project

HOSPITALS = ("cleveland-clinic", "hungarian-cardiology", "va-long-beach")
BOARD = ("lab", "kokoro-corp", *HOSPITALS)
MODEL = "heart-v1"
# Per dataset, as model.contributions records them: va-long-beach's data hurt the model.
SHARES = {
    "cleveland-clinic-heart": 0.05,
    "hungarian-cardiology-heart": 0.03,
    "va-long-beach-heart": -0.02,
}


def association(home: Path, association_share: str | None = None) -> Consortium:
    """Members, their heart datasets, project `heart`, an adopted charter, model `heart-v1`."""
    consortium = init_consortium(home)
    members.add_member(consortium, "lab", "university")
    members.add_member(consortium, "kokoro-corp", "company")
    files = export_hospital_files(home.parent / f"{home.name}-exports")
    for hospital in HOSPITALS:
        members.add_member(consortium, hospital, "hospital")
        register_dataset(
            consortium,
            member=hospital,
            file=files[hospital],
            name=f"{hospital}-heart",
            target="num>0",
            missing={"chol": ("0",)},
            ignore=("id",),
        )
    propose_project(
        consortium,
        name="heart",
        title="",
        purpose="diagnosis",
        proposed_by="lab",
        members=HOSPITALS,
    )
    approve_project(consortium, "heart", approved_by=HOSPITALS[0])
    share = Fraction.parse(association_share, "share", zero=True) if association_share else None
    charter.propose_charter(consortium, proposed_by="lab", association_share=share)
    for member in BOARD:
        charter.sign_charter(consortium, member)
    release(consortium, MODEL)
    record_shares(consortium, MODEL, SHARES)
    return consortium


def release(consortium: Consortium, model: str, project: str = "heart") -> None:
    """A released model version's rows and its model.released entry, as training writes them."""
    now = utc_now()
    job = f"job-{model}"
    with transaction(consortium.sessions) as session:
        session.add(
            JobRow(
                id=job,
                project=project,
                kind="train",
                status="completed",
                spec_json="{}",
                planned_rounds=1,
                completed_rounds=1,
                created_at=now,
                started_at=now,
                finished_at=now,
            )
        )
        session.flush()
        lineage = {"datasets": sorted(SHARES), "settings": {}}
        session.add(
            ModelVersionRow(
                id=model,
                project=project,
                version=int(model.rsplit("-v", 1)[1]),
                job_id=job,
                strategy="fedavg",
                feature_plan_json="{}",
                parameters=b"",
                metrics_json=json.dumps({"overall": {"auc": 0.9}, "sites": {}}),
                lineage_json=json.dumps(lineage),
                created_at=now,
            )
        )
        session.flush()
        payload = {"model": model, "job": job, "lineage": lineage, "metrics": {"auc": 0.9}}
        consortium.ledger.append(
            session, Act("lab", "model.released", payload, member="lab", project=project)
        )


def record_shares(consortium: Consortium, model: str, shares: dict[str, float]) -> None:
    """The coordinator's model.contributions entry, in the shape services.contribution writes."""
    payload = {
        "model": model,
        "metric": "auc",
        "released_metric": 0.9,
        "method": "exact",
        "shares": shares,
        "standard_errors": dict.fromkeys(shares, 0.0),
        "v_empty": 0.5,
        "v_all": 0.5 + sum(shares.values()),
        "evaluations": 2 ** len(shares),
        "permutations": 0,
        "extra_epsilon": 0.0,
    }
    with transaction(consortium.sessions) as session:
        consortium.ledger.append(
            session, Act(COORDINATOR, "model.contributions", payload, project="heart")
        )


def pass_motion(consortium: Consortium, motion: str) -> motions.MotionInfo:
    """Every eligible seat votes yes, then the motion is closed."""
    info = motions.show_motion(consortium, motion)
    for seat in info.eligible:
        motions.cast_vote(consortium, motion, seat, "yes")
    return motions.close_motion(consortium, motion)
