"""The node audits a model on its own rows: an overfit model is caught, refusals change nothing."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.adapters.models.families import model_for
from kumiai.adapters.storage.arrays import arrays_to_bytes
from kumiai.domain.model_audit import epsilon_lower_bound
from kumiai.domain.preprocessing import FeaturePlan, merge_summaries, summarise
from kumiai.domain.privacy import default_delta
from kumiai.domain.training import TrainingSettings
from tests.services.helpers import heart_consortium

SITE, DATASET = "cleveland-clinic", "cleveland-clinic-heart"
OVERFIT = TrainingSettings(model="mlp", hidden_units=128, l2=0.0)


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    made, _ = heart_consortium(
        tmp_path_factory.mktemp("audit") / "c",
        hospitals=("cleveland-clinic", "va-long-beach"),
        statistics={"va-long-beach": "dp"},
    )
    return made


def _overfit(consortium) -> tuple[FeaturePlan, bytes]:  # type: ignore[no-untyped-def]
    """A wide network fitted for 300 epochs, without DP or penalty, on the site's training rows."""
    part = consortium.node(SITE).split(DATASET, OVERFIT)
    plan = merge_summaries({DATASET: summarise(part.train, part.schema, part.train_labels)})
    X, y = plan.transform(part.train), plan.encode_labels(part.train_labels, DATASET)
    model = model_for(OVERFIT, X.shape[1], len(plan.classes))
    model.sgd(X, y, epochs=300, lr=0.3, batch_size=16, rng=np.random.default_rng(0))
    return plan, arrays_to_bytes(model.arrays)


def test_a_deliberately_overfit_model_fails_the_audit(consortium) -> None:  # type: ignore[no-untyped-def]
    plan, parameters = _overfit(consortium)
    allowed, reason, figures = consortium.node(SITE).audit_model(
        DATASET, project="heart", settings=OVERFIT, plan=plan, parameters=parameters,
        attribute="sex",
    )  # fmt: skip
    assert allowed, reason
    assert figures is not None
    attack = figures["membership"]
    assert (attack["members"], attack["non_members"]) == (
        figures["train_rows"],
        figures["test_rows"],
    )
    bound = epsilon_lower_bound(attack, default_delta(figures["train_rows"]))
    assert bound.epsilon > 1.0  # the model remembers its rows: a positive lower bound
    # Only aggregates: counts in ten bins, per level of sex, and per-column loss rises.
    assert (
        sum(figures["histograms"]["positives"] + figures["histograms"]["negatives"])
        == (figures["test_rows"])
    )
    assert sorted(figures["groups"]) == ["Female", "Male"]
    assert set(figures["permutation_importance"]) == set(plan.schema)
    assert not any(isinstance(v, list) and len(v) > 10 for v in _leaves(figures))


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_a_dp_statistics_site_refuses_and_spends_nothing(consortium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan, parameters = _overfit(consortium)
    node = consortium.node("va-long-beach")
    before = node.budget("va-long-beach-heart")
    allowed, reason, figures = node.audit_model(
        "va-long-beach-heart", project="heart", settings=OVERFIT, plan=plan,
        parameters=parameters, attribute=None,
    )  # fmt: skip
    assert (allowed, figures) == (False, None)
    assert "only as 'dp'" in reason and "stay at the node" in reason
    assert node.budget("va-long-beach-heart") == before


def test_an_attribute_the_site_lacks_is_refused(consortium) -> None:  # type: ignore[no-untyped-def]
    plan, parameters = _overfit(consortium)
    allowed, reason, _ = consortium.node(SITE).audit_model(
        DATASET, project="heart", settings=OVERFIT, plan=plan, parameters=parameters,
        attribute="age",
    )  # fmt: skip
    assert not allowed
    assert "no categorical column 'age'" in reason
