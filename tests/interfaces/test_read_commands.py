"""The commands that only read: they never load the training machinery (nor Alembic,
pandas or NumPy), `--help` loads neither the database nor the services, and `--json` prints
one parseable document with real values, without Rich.

Each command runs in a fresh interpreter, as a user runs it, against one small consortium
with a finished job (trained once for the module, hence the simulation mark). Start-up
time is measured by `kumiai bench startup`, never asserted here.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.training import TrainingSettings
from kumiai.services.agreements import list_agreements
from kumiai.services.charter import propose_charter, sign_charter
from kumiai.services.funds import receive_funds
from kumiai.services.members import list_members
from kumiai.services.milestones import add_evidence, add_milestone
from kumiai.services.motions import propose_motion
from kumiai.services.privacy import set_budget
from kumiai.services.spend import record_spend
from kumiai.services.themes import add_theme
from kumiai.services.training import TrainingOutcome, train
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation

TRAINING_MACHINERY = {"flwr", "ray", "dp_accounting", "sklearn"}
# What reading does not need: migrations (the database is at head), data files, arrays.
NOT_FOR_READING = {"alembic", "pandas", "numpy", "scipy", "pyarrow", "opendp"}
# What `--help` does not need: the database and the keys.
NOT_FOR_HELP = {"sqlalchemy", "cryptography"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SIGNING = HOSPITALS[:2]  # va-long-beach's request stays unsigned: its node refuses
UNSIGNED = f"{HOSPITALS[2]}-heart"

# Runs `kumiai ARGS` in this interpreter, then reports the modules it loaded.
PROBE = """
import runpy, sys
sys.argv = ["kumiai", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("kumiai", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
sys.stderr.write("LOADED " + " ".join(sorted(sys.modules)) + "\\n")
raise SystemExit(code)
"""


@dataclass(frozen=True)
class Consortium:
    home: Path
    outcome: TrainingOutcome
    agreement: str
    fingerprints: dict[str, str]
    export: Path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    home = tmp_path_factory.mktemp("read") / "c"
    consortium, _ = heart_consortium(home, sign=SIGNING)
    set_budget(consortium, "cleveland-clinic-heart", 3.0)
    outcome = train(consortium, "heart", TrainingSettings(rounds=2, epsilon=1.0))
    agreement = next(a.id for a in list_agreements(consortium) if a.steward == HOSPITALS[0])
    propose_charter(consortium, proposed_by="lab")
    for member in sorted(["lab", *HOSPITALS]):
        sign_charter(consortium, member)
    add_theme(consortium, name="heart", title="Heart disease", by="lab")
    propose_motion(
        consortium, decision="set-priorities", payload={"ranking": ["heart"]}, proposer="lab"
    )
    receive_funds(consortium, source="nedo-grant", kind="grant", payer="NEDO", amount=1000)
    record_spend(
        consortium, project="heart", category="compute", amount=300, description="GPU", by="lab"
    )
    add_milestone(
        consortium,
        project="heart",
        name="first-model",
        title="A model",
        due="2026-01-31",
        by="lab",
    )
    add_evidence(consortium, project="heart", name="first-model", models=(outcome.model_id,))
    fingerprints = {m.name: m.key_fingerprint for m in list_members(consortium)}
    export = home.parent / "ledger.jsonl"
    return Consortium(home, outcome, agreement, fingerprints, export)


def run(home: Path, *args: str, probe: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "KUMIAI_HOME": str(home)}
    prefix = ["-c", PROBE] if probe else ["-m", "kumiai"]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def read_only(small: Consortium) -> dict[str, list[str]]:
    job, model = small.outcome.job_id, small.outcome.model_id
    return {
        "--help": ["--help"],
        "member list": ["member", "list"],
        "dataset list": ["dataset", "list"],
        "dataset show": ["dataset", "show", "cleveland-clinic-heart"],
        "project list": ["project", "list"],
        "project show": ["project", "show", "heart"],
        "requests": ["requests"],
        "agreement list": ["agreement", "list"],
        "agreement show": ["agreement", "show", small.agreement],
        "jobs": ["jobs"],
        "job": ["job", job],
        "models": ["models"],
        "model": ["model", model],
        "budget": ["budget"],
        "budget show": ["budget", "show"],
        "ledger show": ["ledger", "show"],
        "ledger prove": ["ledger", "prove", "3"],
        "ledger export": ["ledger", "export", str(small.export)],
        "ledger verify": ["ledger", "verify"],
        "charter show": ["charter", "show"],
        "motion list": ["motion", "list"],
        "motion show": ["motion", "show", "motion-1"],
        "spinout list": ["spinout", "list"],
        "licence list": ["licence", "list"],
        "royalties statement": ["royalties", "statement"],
        "theme list": ["theme", "list"],
        "theme show": ["theme", "show", "heart"],
        "funds": ["funds"],
        "funds list": ["funds", "list"],
        "spend": ["spend", "heart"],
        "spend show": ["spend", "show", "heart"],
        "project budget": ["project", "budget", "heart"],
        "milestone list": ["milestone", "list"],
        "milestone show": ["milestone", "show", "heart", "first-model"],
        "report": ["report", "--for", "board"],
        "model show": ["model", "show", model],
        "model card": ["model", "card", model],
        "agreement export": ["agreement", "export", small.agreement, "--odrl"],
    }


COMMANDS = [
    "--help",
    "member list",
    "dataset list",
    "dataset show",
    "project list",
    "project show",
    "requests",
    "agreement list",
    "agreement show",
    "jobs",
    "job",
    "models",
    "model",
    "budget",
    "budget show",
    "ledger show",
    "ledger prove",
    "ledger export",
    "ledger verify",
    "charter show",
    "motion list",
    "motion show",
    "spinout list",
    "licence list",
    "royalties statement",
    "theme list",
    "theme show",
    "funds",
    "funds list",
    "spend",
    "spend show",
    "project budget",
    "milestone list",
    "milestone show",
    "report",
    "model show",
    "model card",
    "agreement export",
]


def loaded_by(home: Path, *args: str) -> set[str]:
    """The modules `kumiai ARGS` loaded, run in a fresh interpreter."""
    result = run(home, *args, probe=True)
    assert result.returncode == 0, result.stderr
    [report] = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    modules = set(report.split()[1:])
    assert "kumiai.interfaces.cli.main" in modules and "typer" in modules  # the probe saw it run
    return modules


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_command_never_loads_the_training_machinery(
    small: Consortium, command: str
) -> None:
    loaded = packages(loaded_by(small.home, *read_only(small)[command]))
    assert loaded & TRAINING_MACHINERY == set()
    assert loaded & NOT_FOR_READING == set()


def test_help_loads_neither_the_database_nor_the_services(small: Consortium) -> None:
    modules = loaded_by(small.home, "--help")
    assert packages(modules) & (TRAINING_MACHINERY | NOT_FOR_READING | NOT_FOR_HELP) == set()
    assert not any(name.startswith("kumiai.services") for name in modules)


NO_JSON = {"--help", "ledger prove", "ledger export"}  # prove prints JSON only; export a file
NO_JSON |= {"agreement export"}  # prints the ODRL policy, JSON-LD, only


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in NO_JSON])
def test_json_output_loads_no_rich(small: Consortium, command: str) -> None:
    loaded = packages(loaded_by(small.home, *read_only(small)[command], "--json"))
    assert "sqlalchemy" in loaded  # it did read the database
    assert "rich" not in loaded


def test_the_probe_sees_the_training_machinery_when_it_is_loaded() -> None:
    """The check above must be able to fail: with the training service loaded, it does."""
    result = subprocess.run(
        [sys.executable, "-c", "import kumiai.services.training\n" + PROBE, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    [report] = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    assert "flwr" in report.split()[1:]


def as_json(small: Consortium, *args: str) -> Any:
    result = run(small.home, *args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)  # one document and nothing else, or this raises


def test_member_list_json(small: Consortium) -> None:
    members = as_json(small, "member", "list")
    assert [m["name"] for m in members] == sorted(["lab", *HOSPITALS])
    for m in members:
        assert m["key_fingerprint"] == small.fingerprints[m["name"]]
        assert m["home"] == str(small.home.resolve() / "members" / m["name"])


def test_dataset_list_and_show_json(small: Consortium) -> None:
    listing = {d["name"]: d for d in as_json(small, "dataset", "list")}
    assert sorted(listing) == sorted(f"{h}-heart" for h in HOSPITALS)
    cleveland = listing["cleveland-clinic-heart"]
    assert cleveland["rows"] == 304 and cleveland["target"] == "num>0"
    assert cleveland["member"] == "cleveland-clinic" and len(cleveland["sha256"]) == 64
    assert cleveland["schema"]["age"] == "numeric" and "id" not in cleveland["schema"]

    shown = as_json(small, "dataset", "show", "cleveland-clinic-heart")
    assert shown["dataset"] == cleveland
    assert shown["lifetime_epsilon"] == 3.0
    assert ISO_UTC.match(shown["registered_at"])
    [request] = shown["requests"]
    assert request["status"] == "signed" and request["project"] == "heart"
    assert request["job_kinds"] == ["train", "evaluate"] and request["max_rounds"] == 20


def test_project_list_and_show_json(small: Consortium) -> None:
    [project] = as_json(small, "project", "list")
    assert project["name"] == "heart" and project["status"] == "active"
    assert project["members"] == sorted(["lab", *HOSPITALS])
    assert project["approved_by"] == HOSPITALS[0] and ISO_UTC.match(project["created_at"])

    shown = as_json(small, "project", "show", "heart")
    assert shown["project"] == project
    assert ISO_UTC.match(shown["approved_at"]) and shown["closed_at"] is None
    assert [j["id"] for j in shown["jobs"]] == [small.outcome.job_id]
    assert shown["jobs"] == as_json(small, "jobs")  # the same document as `kumiai jobs`
    assert [m["id"] for m in shown["models"]] == [small.outcome.model_id]
    assert sorted(a["steward"] for a in shown["agreements"]) == sorted(SIGNING)
    assert len(shown["requests"]) == len(HOSPITALS)


def test_requests_and_agreements_json(small: Consortium) -> None:
    requests = as_json(small, "requests", "heart")
    status = {r["dataset"]: r["status"] for r in requests}
    assert status == {**{f"{h}-heart": "signed" for h in SIGNING}, UNSIGNED: "pending"}
    assert all(ISO_UTC.match(r["expires_at"]) and r["epsilon_cap"] is None for r in requests)

    agreements = as_json(small, "agreement", "list")
    assert sorted(a["dataset"] for a in agreements) == sorted(f"{h}-heart" for h in SIGNING)
    assert all(a["revoked_at"] is None and ISO_UTC.match(a["signed_at"]) for a in agreements)

    shown = as_json(small, "agreement", "show", small.agreement)
    assert shown["agreement"]["id"] == small.agreement
    assert shown["key_fingerprint"] == small.fingerprints[HOSPITALS[0]]
    terms = shown["terms"]
    assert terms["project"] == "heart" and terms["dataset"] == "cleveland-clinic-heart"
    assert terms["max_rounds"] == 20 and terms["job_kinds"] == ["train", "evaluate"]


def test_jobs_and_job_json(small: Consortium) -> None:
    outcome = small.outcome
    [job] = as_json(small, "jobs")
    assert job["id"] == outcome.job_id and job["status"] == "completed"
    assert job["completed_rounds"] == job["planned_rounds"] == 2
    assert "rounds" not in job  # a listing does not read them
    assert job["settings"]["epsilon"] == 1.0 and ISO_UTC.match(job["finished_at"])
    sites = {s["dataset"]: s for s in job["sites"]}
    assert (
        sites[UNSIGNED]["status"] == "refused"
        and "no signed agreement" in (sites[UNSIGNED]["reason"])
    )

    detail = as_json(small, "job", outcome.job_id)
    assert [r["round"] for r in detail["rounds"]] == [1, 2]
    last = detail["rounds"][-1]
    assert last["overall"]["accuracy"] == pytest.approx(outcome.overall["accuracy"])
    assert last["epsilon"] == pytest.approx(outcome.epsilons)
    assert isinstance(last["seconds"], float) and last["seconds"] > 0


def test_models_and_model_json(small: Consortium) -> None:
    outcome = small.outcome
    [model] = as_json(small, "models")
    assert model["id"] == outcome.model_id and model["job_id"] == outcome.job_id
    assert model["version"] == 1 and ISO_UTC.match(model["created_at"])
    assert model["metrics"]["overall"]["accuracy"] == pytest.approx(outcome.overall["accuracy"])
    assert sorted(model["lineage"]["agreements"]) == sorted(f"{h}-heart" for h in SIGNING)
    assert UNSIGNED in model["lineage"]["refused"]
    assert as_json(small, "model", outcome.model_id) == model


def test_budget_json(small: Consortium) -> None:
    spent = small.outcome.epsilons["cleveland-clinic-heart"]
    for args in (["budget"], ["budget", "show"]):
        lines = {b["dataset"]: b for b in as_json(small, *args)}
        cleveland = lines["cleveland-clinic-heart"]
        assert cleveland["lifetime"] == 3.0 and cleveland["committed"] == 0.0
        assert cleveland["spent"] == pytest.approx(spent) and 0 < spent <= 1.0
        assert cleveland["left"] == pytest.approx(3.0 - spent)
        assert cleveland["by_project"] == {"heart": pytest.approx(spent)}
        assert lines[UNSIGNED]["spent"] == 0.0 and lines[UNSIGNED]["lifetime"] is None


def test_ledger_show_json(small: Consortium) -> None:
    entries = as_json(small, "ledger", "show", "--type", "job.")
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "job.started" and "job.refused" in kinds
    refusal = next(e for e in entries if e["kind"] == "job.refused")
    assert refusal["actor"] == HOSPITALS[2] and refusal["payload"]["dataset"] == UNSIGNED
    assert all(e["payload"]["job"] == small.outcome.job_id for e in entries)
    assert all(isinstance(e["seq"], int) and ISO_UTC.match(e["time"]) for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)


def test_themes_funds_budget_and_milestones_json(small: Consortium) -> None:
    [theme] = as_json(small, "theme", "list")
    assert (theme["name"], theme["rank"], theme["projects"]) == ("heart", None, [])
    assert as_json(small, "theme", "show", "heart") == theme
    books = as_json(small, "funds")
    assert books == as_json(small, "funds", "list")
    assert (books["received_yen"], books["allocated_yen"], books["unallocated_yen"]) == (
        1000,
        0,
        1000,
    )
    budget = as_json(small, "spend", "heart")
    assert budget == as_json(small, "project", "budget", "heart")
    assert (budget["allocated_yen"], budget["total_spent_yen"], budget["left_yen"]) == (
        0,
        300,
        -300,
    )
    assert budget["overspent"] is True and budget["spent_yen"]["compute"] == 300
    assert budget["compute"] == {"site_rounds": None, "used": 2 * len(SIGNING), "left": None}
    [milestone] = as_json(small, "milestone", "list")
    assert (milestone["name"], milestone["status"], milestone["late"]) == (
        "first-model",
        "open",
        True,
    )
    assert milestone["evidence"][0] | {"added_at": None} == {
        "kind": "model",
        "ref": small.outcome.model_id,
        "name": None,
        "added_at": None,
    }
    assert as_json(small, "milestone", "show", "heart", "first-model") == milestone


def test_report_json(small: Consortium) -> None:
    """The board's report, from the verified ledger: the job's ε, its model, the open motion."""
    doc = as_json(small, "report", "--for", "board")
    kinds = {a["seq"]: a["kind"] for a in doc["appendix"]}
    spent = {e["dataset"]: e["epsilon"] for e in doc["epsilon"]}
    assert sorted(spent) == sorted(f"{h}-heart" for h in SIGNING)
    cleveland = spent["cleveland-clinic-heart"]
    assert cleveland["value"] == pytest.approx(small.outcome.epsilons["cleveland-clinic-heart"])
    assert [kinds[s] for s in cleveland["cites"]] == ["round.completed"]
    themes = {t["theme"]: t for t in doc["themes"]}
    assert list(themes) == ["heart", "unthemed"]  # the theme is not ranked, the project unthemed
    [project] = themes["unthemed"]["projects"]
    assert doc["funds"]["received"]["value"] == 1000
    assert [kinds[s] for s in doc["funds"]["received"]["cites"]] == ["funds.received"]
    compute = project["budget"]["by_category"]["compute"]
    assert compute["value"] == 300 and [kinds[s] for s in compute["cites"]] == ["spend.recorded"]
    [milestone] = project["milestones"]
    assert (milestone["milestone"], milestone["due"]) == ("first-model", "2026-01-31")
    assert milestone["status"] == "late"  # due before today, not accepted
    assert project["milestone_counts"]["late"]["value"] == 1
    assert project["compute"]["used_site_rounds"]["value"] == 2 * len(SIGNING)  # 2 rounds
    [model] = project["models"]
    assert model["model"] == small.outcome.model_id
    assert [kinds[s] for s in model["cites"]] == ["model.released"]
    assert doc["board"]["open"] == 1 and doc["board"]["motions"][0]["status"] == "open"
    assert doc["ledger"]["root"] == as_json(small, "ledger", "verify")["root"]


def test_the_api_returns_the_cli_json_for_a_trained_job(small: Consortium) -> None:
    """`kumiai coordinator serve`'s routes over a consortium with a finished job and model."""
    from fastapi.testclient import TestClient

    from kumiai.adapters.coordinator_client import RequestSigner
    from kumiai.interfaces.api.app import create_app

    job, model = small.outcome.job_id, small.outcome.model_id
    same = {
        "/jobs": ["jobs"],
        f"/jobs/{job}": ["job", job],
        "/models": ["models"],
        f"/models/{model}": ["model", model],
        f"/models/{model}/contributions": ["contributions", model, "--plan"],
        f"/models/{model}/card": ["model", "card", model],
        "/projects/heart": ["project", "show", "heart"],
        "/budget": ["budget", "show"],
        "/milestones/heart/first-model": ["milestone", "show", "heart", "first-model"],
    }
    app = create_app(small.home)
    with TestClient(app) as client:
        # Records need a signed request: the operator's (the coordinator's own key).
        client.auth = RequestSigner(app.state.consortium.coordinator_key())
        for route, args in same.items():
            response = client.get(route)
            assert response.status_code == 200, (route, response.text)
            assert response.json() == as_json(small, *args), route
        assert client.get(f"/jobs/{job}").json()["rounds"][1]["round"] == 2
        assert client.get(f"/models/{model}").json()["job_id"] == job
        policy = client.get(f"/agreements/{small.agreement}/odrl").json()
        assert policy["uid"] == f"urn:kumiai:agreement:{small.agreement}"
