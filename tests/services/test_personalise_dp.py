"""DP personalisation: a DP-SGD model fine-tuned with DP-SGD, its extra ε charged first in
each node's own spend log, within the agreement's cap and the dataset's budget; every
refusal leaves the node's home as it was.

Tests run in file order on one consortium: each refusal changes nothing, and the lifetime
and revocation tests come last.
"""

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow, ModelVersionRow
from kumiai.domain.contribution_charge import ReleasedRun
from kumiai.domain.errors import InvalidInput
from kumiai.domain.personalisation import PERSONALISATION, charge_for
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.training import TrainingSettings
from kumiai.services.agreements import list_agreements, revoke_agreement
from kumiai.services.consortium import Consortium
from kumiai.services.personalise import personalise
from kumiai.services.privacy import budgets, set_budget
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation

CAP = 1.6
SLICED = TrainingSettings(rounds=2, epsilon=0.5, learning_rate=0.1, personalisation_epochs=2)
UNSLICED = TrainingSettings(rounds=2, epsilon=1.0, learning_rate=0.1)


def _entries(consortium: Consortium) -> int:
    with transaction(consortium.sessions) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def _homes(consortium: Consortium) -> dict[str, dict[str, str]]:
    return {h: _files(consortium.member_home(h)) for h in HOSPITALS}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Consortium, str, str]:
    """A model that reserved a slice (ε=0.5 in all) and one that did not (ε=1), cap 1.6."""
    consortium, _ = heart_consortium(
        tmp_path_factory.mktemp("personalise-dp") / "c", epsilon_cap=CAP
    )
    sliced = train(consortium, "heart", SLICED).model_id
    unsliced = train(consortium, "heart", UNSLICED).model_id
    return consortium, sliced, unsliced


def _job(consortium: Consortium, model: str) -> str:
    with transaction(consortium.sessions) as session:
        row = session.get(ModelVersionRow, model)
        assert row is not None
        return row.job_id


def test_each_node_charges_its_slice_then_fine_tunes_with_dp(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    released = _job(consortium, model)
    entries = _entries(consortium)
    result = personalise(consortium, model)  # the slice: 2 epochs

    assert result.epochs == 2 and result.refused == {}
    assert (
        sorted(result.scores) == sorted(result.charged) == sorted(f"{h}-heart" for h in HOSPITALS)
    )
    assert result.job is not None
    for hospital in HOSPITALS:
        dataset = f"{hospital}-heart"
        view = consortium.node(hospital).budget(dataset)
        job, charge = view.jobs[released], view.jobs[result.job]
        # The node computed the charge from its own log: the job's σ, q, steps.
        run = ReleasedRun.from_reservation(job.details, job.rounds)
        expected = charge_for(run, 2)
        assert charge.details["kind"] == PERSONALISATION
        assert charge.details["released_job"] == released
        assert charge.spent == pytest.approx(expected.extra, abs=1e-12)
        assert result.charged[dataset] == charge.spent > 0
        # Within the slice: training and fine-tuning together spend the job's target.
        assert job.spent + charge.spent <= SLICED.epsilon + 1e-9  # type: ignore[operator]
        assert job.spent + charge.spent == pytest.approx(job.reserved, abs=1e-9)
        assert charge.released  # the coordinator closed the charge's job
        personalised = consortium.member_home(hospital) / "personalised" / model
        assert (personalised / f"{dataset}.npz").is_file()
    assert _entries(consortium) == entries + 1
    entry = show_entries(consortium, kind="model.personalised")[-1]
    assert entry.payload["job"] == result.job
    assert entry.payload["charged"] == result.charged
    # kumiai budget mirrors each node's charge.
    spent = {line.dataset: line.spent for line in budgets(consortium)}
    for dataset, epsilon in result.charged.items():
        assert spent[dataset] >= epsilon


def test_a_charge_over_the_agreements_cap_is_refused_and_changes_nothing(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, _, model = trained
    homes = _homes(consortium)
    result = personalise(consortium, model, epochs=20)
    assert result.scores == {} and result.charged == {}
    for hospital in HOSPITALS:
        reason = result.refused[f"{hospital}-heart"]
        assert reason.startswith(f"the personalisation of {model}: the job plans ε=")
        assert f"the agreement caps project 'heart' at ε={CAP:g}" in reason
    assert _homes(consortium) == homes  # no charge, no personalised model


def _ask(consortium: Consortium, model: str, **changes: object) -> dict[str, object]:
    with transaction(consortium.sessions) as session:
        row = session.get(ModelVersionRow, model)
        assert row is not None
        asked: dict[str, object] = {
            "project": "heart",
            "model": model,
            "settings": TrainingSettings(**json.loads(row.lineage_json)["settings"]),
            "plan": FeaturePlan.from_json(row.feature_plan_json),
            "parameters": row.parameters,
            "epochs": 1,
            "job": row.job_id,
            "charge_id": "job-lying",
        }
    asked.update(changes)
    return asked


def test_the_node_refuses_a_lying_coordinator_and_keeps_nothing(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, sliced, unsliced = trained
    node = consortium.node("va-long-beach")
    dataset = "va-long-beach-heart"
    before = _files(consortium.member_home("va-long-beach"))
    cases = {
        # A job that never trained here.
        "job-nowhere": "job job-nowhere of project 'heart' never trained on "
        "'va-long-beach-heart' (this node's spend log holds no round of it)",
        # Another job of the project, trained under other settings.
        _job(consortium, unsliced): f"job {_job(consortium, unsliced)} did not train model "
        f"{sliced} on 'va-long-beach-heart'",
        # An earlier charge passed off as the job: no round of training under it.
        personalise_job(consortium, dataset): f"job {personalise_job(consortium, dataset)} "
        "of project 'heart' never trained on 'va-long-beach-heart'",
    }
    for job, reason in cases.items():
        allowed, said, score = node.personalise(dataset, **_ask(consortium, sliced, job=job))  # type: ignore[arg-type]
        assert (allowed, score) == (False, None)
        assert reason in said
    # Another project's name for the same job.
    allowed, said, _ = node.personalise(dataset, **_ask(consortium, sliced, project="other"))  # type: ignore[arg-type]
    assert not allowed and said == "no signed agreement for project 'other' on dataset " + repr(
        dataset
    )
    # A charge id already in the log, and none at all.
    for charge_id, reason in (
        (personalise_job(consortium, dataset), "already names another use of"),
        ("", "needs a charge id"),
    ):
        allowed, said, _ = node.personalise(
            dataset, **_ask(consortium, sliced, charge_id=charge_id)
        )  # type: ignore[arg-type]
        assert not allowed and reason in said
    assert _files(consortium.member_home("va-long-beach")) == before


def personalise_job(consortium: Consortium, dataset: str) -> str:
    """The first personalisation charge in a node's log."""
    member = dataset.removesuffix("-heart")
    view = consortium.node(member).budget(dataset)
    return next(j for j, s in view.jobs.items() if s.details.get("kind") == PERSONALISATION)


def test_a_client_level_model_is_refused_before_any_node_is_contacted(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, sliced, _ = trained
    node = consortium.node("cleveland-clinic")
    asked = _ask(
        consortium, sliced, settings=TrainingSettings(rounds=2, epsilon=1.0, dp_level="client")
    )
    allowed, said, _ = node.personalise("cleveland-clinic-heart", **asked)  # type: ignore[arg-type]
    assert not allowed and "client-level differential privacy" in said


def test_a_charge_over_the_lifetime_budget_is_refused_and_changes_nothing(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    dataset = "hungarian-cardiology-heart"
    view = consortium.node("hungarian-cardiology").budget(dataset)
    set_budget(consortium, dataset, view.spent)  # nothing left
    homes = _homes(consortium)
    entries = _entries(consortium)
    result = personalise(consortium, model, epochs=1)
    reason = result.refused[dataset]
    assert "of the dataset's lifetime budget" in reason and "only 0.000" in reason
    assert dataset not in result.charged
    assert _homes(consortium)["hungarian-cardiology"] == homes["hungarian-cardiology"]
    assert _entries(consortium) == entries + 1  # the other sites' scores and this refusal


def test_a_revoked_agreement_is_refused_and_changes_nothing(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    agreement = next(a for a in list_agreements(consortium) if a.steward == "cleveland-clinic")
    revoke_agreement(consortium, agreement.id, "consent withdrawn")
    before = _files(consortium.member_home("cleveland-clinic"))
    result = personalise(consortium, model, epochs=1)
    assert result.refused["cleveland-clinic-heart"] == (
        f"agreement {agreement.id} was revoked; ask the steward for a new one"
    )
    assert _files(consortium.member_home("cleveland-clinic")) == before


def test_the_coordinator_refuses_bad_epochs_with_no_state_change(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    homes, entries = _homes(consortium), _entries(consortium)
    with pytest.raises(InvalidInput, match="personalisation runs 1 to 20 local epochs, not 21"):
        personalise(consortium, model, epochs=21)
    assert (_homes(consortium), _entries(consortium)) == (homes, entries)
