"""Personalisation at the nodes: only scores leave, other sites are untouched, refusals change
nothing."""

import hashlib
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from kumiai.adapters.storage.arrays import arrays_from_bytes
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow, ModelVersionRow
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.metrics import HISTOGRAM_BINS, SiteScore
from kumiai.domain.preprocessing import FeaturePlan
from kumiai.domain.training import TrainingSettings
from kumiai.interfaces.cli.main import app
from kumiai.services.agreements import list_agreements, revoke_agreement
from kumiai.services.consortium import Consortium
from kumiai.services.models import load_model
from kumiai.services.personalise import personalise
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.services.helpers import HOSPITALS, heart_consortium

pytestmark = pytest.mark.simulation

SETTINGS = TrainingSettings(strategy="fedavg", rounds=3, learning_rate=0.05)


def _entries(consortium: Consortium) -> int:
    with transaction(consortium.sessions) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0


def _files(root: Path) -> dict[str, str]:
    """Every file under a node home and its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[Consortium, str]:
    """One released model for the module; the revocation test runs last."""
    consortium, _ = heart_consortium(tmp_path_factory.mktemp("personalise") / "c")
    return consortium, train(consortium, "heart", SETTINGS).model_id


def test_each_node_fine_tunes_in_its_home_and_only_scores_leave(released) -> None:  # type: ignore[no-untyped-def]
    consortium, model = released
    before = {h: _files(consortium.member_home(h)) for h in HOSPITALS}
    entries = _entries(consortium)
    result = personalise(consortium, model, epochs=5)

    assert sorted(result.scores) == sorted(f"{h}-heart" for h in HOSPITALS)
    assert result.refused == {}
    _, federated = load_model(consortium, model)
    for hospital in HOSPITALS:
        dataset = f"{hospital}-heart"
        node = consortium.node(hospital)
        part = node.split(dataset, SETTINGS)
        # Only aggregates: counts and 1000-bin histograms, no row, no parameter.
        score = result.scores[dataset]
        assert type(score) is SiteScore
        assert [f.name for f in fields(score)] == [
            "examples",
            "correct",
            "loss_sum",
            "hist_pos",
            "hist_neg",
        ]
        assert score.examples == len(part.test_labels)
        assert score.hist_pos.shape == score.hist_neg.shape == (1, HISTOGRAM_BINS)
        assert int(score.hist_pos.sum() + score.hist_neg.sum()) == len(part.test_labels)
        # The personalised model stays at its node, the only new file there; nothing else
        # in any node home changed.
        after = _files(consortium.member_home(hospital))
        kept = f"personalised/{model}/{dataset}.npz"
        assert set(after) - set(before[hospital]) == {kept}
        assert {k: v for k, v in after.items() if k != kept} == before[hospital]
        # It differs from the released model: it was fine-tuned on this site's rows.
        mine = arrays_from_bytes((consortium.member_home(hospital) / kept).read_bytes())
        assert not all(np.array_equal(a, b) for a, b in zip(mine, federated.arrays, strict=True))

    # One signed entry records the scores; the same fine-tuning gives the same scores.
    assert _entries(consortium) == entries + 1
    [entry] = show_entries(consortium, kind="model.personalised")
    assert entry.payload["model"] == model and entry.payload["epochs"] == 5
    assert entry.payload["sites"]["va-long-beach-heart"]["examples"] == len(
        consortium.node("va-long-beach").split("va-long-beach-heart", SETTINGS).test_labels
    )
    again = personalise(consortium, model, epochs=5)
    for dataset, score in result.scores.items():
        assert again.scores[dataset].correct == score.correct
        np.testing.assert_array_equal(again.scores[dataset].hist_pos, score.hist_pos)


def test_kumiai_personalise_prints_each_sites_scores_as_json(released) -> None:  # type: ignore[no-untyped-def]
    consortium, model = released
    result = CliRunner().invoke(
        app,
        ["personalise", model, "--epochs", "3", "--json"],
        env={"KUMIAI_HOME": str(consortium.home)},
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["model"] == model and document["epochs"] == 3
    assert document["refused"] == {}
    assert sorted(document["sites"]) == sorted(f"{h}-heart" for h in HOSPITALS)
    assert set(document["sites"]["cleveland-clinic-heart"]) == {
        "examples",
        "accuracy",
        "auc",
        "loss",
    }


def test_a_proximal_fit_reaches_each_sites_own_optimum_pulled_back(released) -> None:  # type: ignore[no-untyped-def]
    consortium, model = released
    entries = _entries(consortium)
    result = personalise(consortium, model, proximal_mu=0.01)
    assert result.refused == {} and result.proximal_mu == 0.01
    assert sorted(result.scores) == sorted(f"{h}-heart" for h in HOSPITALS)
    [*_, entry] = show_entries(consortium, kind="model.personalised")
    assert entry.payload["proximal_mu"] == 0.01
    assert _entries(consortium) == entries + 1
    # Private models are refused it before any node is asked (tests/domain covers why).
    with pytest.raises(InvalidInput, match=r"the proximal pull \(--proximal-mu\) must be"):
        personalise(consortium, model, proximal_mu=-1.0)
    assert _entries(consortium) == entries + 1


@pytest.mark.parametrize("epochs", [0, 21])
def test_a_refused_request_contacts_no_node_and_changes_nothing(released, epochs: int) -> None:  # type: ignore[no-untyped-def]
    consortium, model = released
    before = {h: _files(consortium.member_home(h)) for h in HOSPITALS}
    entries = _entries(consortium)
    refusal = f"personalisation runs 1 to 20 local epochs, not {epochs}"
    with pytest.raises(InvalidInput, match=refusal):
        personalise(consortium, model, epochs=epochs)
    assert _entries(consortium) == entries
    assert {h: _files(consortium.member_home(h)) for h in HOSPITALS} == before


def test_the_node_itself_refuses_a_client_level_model_and_a_dataset_not_its_own(released) -> None:  # type: ignore[no-untyped-def]
    """A coordinator that skips its own check meets the node's: same rule, nothing kept."""
    consortium, model = released
    with transaction(consortium.sessions) as session:
        row = session.get(ModelVersionRow, model)
        assert row is not None
        plan, parameters = FeaturePlan.from_json(row.feature_plan_json), row.parameters
    node = consortium.node("va-long-beach")
    before = _files(consortium.member_home("va-long-beach"))
    asked = {"project": "heart", "model": model, "plan": plan, "parameters": parameters}
    allowed, reason, score = node.personalise(
        "va-long-beach-heart",
        settings=TrainingSettings(epsilon=1.0, dp_level="client"),
        epochs=5,
        **asked,
    )
    assert (allowed, score) == (False, None)
    assert reason.startswith(f"model {model} was trained under client-level differential")
    with pytest.raises(NotFound, match="dataset 'cleveland-clinic-heart' is not registered"):
        node.personalise("cleveland-clinic-heart", settings=SETTINGS, epochs=5, **asked)
    assert _files(consortium.member_home("va-long-beach")) == before


def test_only_project_members_personalise(released) -> None:  # type: ignore[no-untyped-def]
    consortium, model = released
    entries = _entries(consortium)
    with pytest.raises(InvalidInput, match="'nobody' is not a member of project 'heart'"):
        personalise(consortium, model, by="nobody")
    assert _entries(consortium) == entries


def test_a_node_whose_agreement_is_revoked_refuses_and_keeps_nothing(released) -> None:  # type: ignore[no-untyped-def]
    consortium, model = released
    cleveland = next(a for a in list_agreements(consortium) if a.steward == "cleveland-clinic")
    revoke_agreement(consortium, cleveland.id, "consent withdrawn")
    before = _files(consortium.member_home("cleveland-clinic"))
    result = personalise(consortium, model)
    assert result.refused == {
        "cleveland-clinic-heart": f"agreement {cleveland.id} was revoked; ask the steward for "
        "a new one"
    }
    assert sorted(result.scores) == ["hungarian-cardiology-heart", "va-long-beach-heart"]
    assert _files(consortium.member_home("cleveland-clinic")) == before
