"""Small consortia built through the public services, as a user would build them."""

import json
from datetime import timedelta
from pathlib import Path

from kumiai.domain.clock import utc_now
from kumiai.domain.disclosure import PublicDomain
from kumiai.domain.schema import ColumnType
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.services.agreements import request_data_use, sign_request
from kumiai.services.consortium import Consortium, init_consortium
from kumiai.services.datasets import register_dataset
from kumiai.services.demo import export_hospital_files
from kumiai.services.members import add_member
from kumiai.services.projects import approve_project, propose_project

HOSPITALS = ("cleveland-clinic", "hungarian-cardiology", "va-long-beach")
PURPOSE = "diagnosis support"


def heart_consortium(
    home: Path,
    hospitals: tuple[str, ...] = HOSPITALS,
    sign: tuple[str, ...] = HOSPITALS,
    max_rounds: int = 20,
    kinds: str = "train,evaluate",
    plain_aggregation: bool = False,
    statistics: dict[str, str] | None = None,
    min_cohort: int = 0,
    epsilon_cap: float | None = None,
    contribution_analysis: bool = False,
) -> tuple[Consortium, dict[str, str]]:
    """Hospitals with heart data, one active project, requests signed by `sign`.

    `statistics` sets a hospital's aggregate_statistics term (default: allowed).

    Returns the consortium and each hospital's request id.
    """
    consortium = init_consortium(home)
    add_member(consortium, "lab", "university")
    files = export_hospital_files(home.parent / "exports")
    for member in hospitals:
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
        consortium, name="heart", title="", purpose=PURPOSE, proposed_by="lab", members=hospitals
    )
    approve_project(consortium, "heart", approved_by=hospitals[0])
    requests = {}
    for member in hospitals:
        request = request_data_use(
            consortium,
            project="heart",
            dataset=f"{member}-heart",
            requested_by="lab",
            job_kinds=kinds,
            max_rounds=max_rounds,
            expires_at=utc_now() + timedelta(days=30),
            plain_aggregation=plain_aggregation,
            aggregate_statistics=(statistics or {}).get(member, "allowed"),
            min_cohort=min_cohort,
            epsilon_cap=epsilon_cap,
            contribution_analysis=contribution_analysis,
        )
        requests[member] = request.id
        if member in sign:
            sign_request(consortium, request.id)
    return consortium, requests


def log_records(log: SpendLog) -> list[dict]:
    """A spend log's records, oldest first."""
    if not log.log.is_file():
        return []
    return [json.loads(line)["record"] for line in log.log.read_text().splitlines()]


def spend_records(consortium: Consortium, member: str) -> list[dict]:
    """The records of a hospital's spend log for its heart dataset."""
    return log_records(SpendLog(NodeHome(consortium.member_home(member)), f"{member}-heart"))


# Public knowledge about the columns (a codebook), never read from any site's rows.
BOUNDS = {
    "age": (0.0, 120.0),
    "trestbps": (0.0, 250.0),
    "chol": (0.0, 700.0),
    "thalch": (40.0, 250.0),
    "oldpeak": (-5.0, 10.0),
    "ca": (0.0, 4.0),
}
CODEBOOK = {
    "sex": ("Female", "Male"),
    "dataset": ("Cleveland", "Hungary", "Switzerland", "VA Long Beach"),
    "cp": ("asymptomatic", "atypical angina", "non-anginal", "typical angina"),
    "fbs": ("False", "True"),
    "restecg": ("lv hypertrophy", "normal", "st-t abnormality"),
    "exang": ("False", "True"),
    "slope": ("downsloping", "flat", "upsloping"),
    "thal": ("fixed defect", "normal", "reversable defect"),
}


def heart_public_domain(home: Path) -> str:
    """The public domain of the heart data, as a researcher would declare it (JSON)."""
    schema = NodeHome(home).dataset(f"{home.name}-heart").schema
    bounds = {c: BOUNDS[c] for c, kind in schema.items() if kind is ColumnType.NUMERIC}
    levels = {c: CODEBOOK[c] for c, kind in schema.items() if kind is not ColumnType.NUMERIC}
    return PublicDomain(bounds, levels, ("0", "1")).to_json()
