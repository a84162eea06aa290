"""Model cards on a DP model trained federatedly: the audit's bound stays within the accounted ε."""

import json
from pathlib import Path

import pytest

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow
from kumiai.domain.errors import InvalidInput
from kumiai.domain.model_card import card_markdown
from kumiai.domain.training import TrainingSettings
from kumiai.services.agreements import list_agreements, revoke_agreement
from kumiai.services.members import add_member
from kumiai.services.model_audit import audit_model
from kumiai.services.model_cards import model_card
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.interfaces.test_cli import assert_user_error, kumiai
from tests.services.helpers import PURPOSE, heart_consortium

pytestmark = pytest.mark.simulation


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("cards") / "c"
    consortium, _ = heart_consortium(home, epsilon_cap=3.0)
    outcome = train(consortium, "heart", TrainingSettings(rounds=3, epsilon=1.0))
    return consortium, outcome.model_id, home


def _entries(consortium) -> int:  # type: ignore[no-untyped-def]
    with transaction(consortium.sessions) as session:
        return session.query(LedgerEntryRow).count()


def test_a_card_before_any_audit_says_how_to_get_one(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    card = model_card(consortium, model)
    assert card["audit"] is None
    assert f"kumiai model audit {model}" in card["audit_missing"]
    assert card["intended_use"]["purpose"] == PURPOSE
    assert card["training"]["privacy"] == "record-level, ε = 1 per dataset"
    # ε spent and by whom: every site, its member, what its spend record says
    assert [(p["dataset"], p["member"]) for p in card["privacy"]] == [
        ("cleveland-clinic-heart", "cleveland-clinic"),
        ("hungarian-cardiology-heart", "hungarian-cardiology"),
        ("va-long-beach-heart", "va-long-beach"),
    ]
    assert all(0 < p["epsilon"] <= 1.0 + 1e-9 for p in card["privacy"])
    assert {s["epsilon_cap"] for s in card["data"]} == {3.0}
    assert card["privacy_charged_after"] == []  # no contribution analysis was paid for


def test_refused_audits_contact_no_node_and_record_nothing(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    before = _entries(consortium)
    with pytest.raises(InvalidInput, match=r"no categorical column 'age'.*sex"):
        audit_model(consortium, model, attribute="age")
    assert _entries(consortium) == before
    add_member(consortium, "outsider", "company")
    before = _entries(consortium)
    with pytest.raises(InvalidInput, match="'outsider' is not a member of project"):
        audit_model(consortium, model, by="outsider")
    assert _entries(consortium) == before


def test_the_bound_on_a_dp_model_never_exceeds_its_accounted_epsilon(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    done = audit_model(consortium, model, attribute="sex")
    [entry] = [e for e in show_entries(consortium, kind="model.audited")][-1:]
    assert entry.seq == done.entry and entry.payload["model"] == model
    card = model_card(consortium, model)
    membership = card["audit"]["membership"]
    assert sorted(membership) == sorted(p["dataset"] for p in card["privacy"])
    spent = {p["dataset"]: p["epsilon"] for p in card["privacy"]}
    for dataset, m in membership.items():
        assert m["accounted_epsilon"] == spent[dataset]
        assert 0 <= m["epsilon_lower_bound"] <= m["accounted_epsilon"]
        assert m["verdict"] == "holds"
        assert 0.0 <= m["auc"] <= 1.0
    # calibration summed over every site's test rows
    table = card["audit"]["calibration"]["table"]
    assert sum(r["rows"] for r in table) == card["metrics"]["overall"]["examples"]
    # sex: VA Long Beach has too few women among its test rows, so it keeps its breakdown
    fairness = card["audit"]["fairness"]
    assert fairness["attribute"] == "sex"
    assert sorted(fairness["levels"]) == ["Female", "Male"]
    assert "fewer than 10 test rows" in fairness["withheld"]["va-long-beach-heart"]
    importance = card["audit"]["importance"]
    assert importance["method"].startswith("standardised logistic coefficients")
    assert {n for n, _ in importance["values"]} >= {"age", "oldpeak", "sex=Male"}
    text = card_markdown(card)
    for heading in ("## Calibration", "## Across sex", "## Privacy audit", "ε spent and by whom"):
        assert heading in text


def test_a_revoked_agreement_shows_on_the_next_read(trained) -> None:  # type: ignore[no-untyped-def]
    consortium, model, _ = trained
    agreement = next(a.id for a in list_agreements(consortium) if a.steward == "va-long-beach")
    revoke_agreement(consortium, agreement, "withdrawn")
    [site] = [s for s in model_card(consortium, model)["data"] if s["agreement"] == agreement]
    assert site["revoked"] is True
    # and its node no longer audits the model
    done = audit_model(consortium, model)
    assert "was revoked" in done.payload["refused"]["va-long-beach-heart"]
    assert "va-long-beach-heart" not in done.payload["sites"]


def test_the_card_through_the_cli(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, model, home = trained
    shown = kumiai(home, "model", "card", model, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["model"] == model
    text = kumiai(home, "model", "card", model)
    assert text.stdout.startswith(f"# Model card: {model}")
    assert kumiai(home, "model", model, "--json").returncode == 0  # `model NAME` still shows
    assert_user_error(kumiai(home, "model", "card", model, "--format", "pdf"), "use md or json")
    assert_user_error(kumiai(home, "model", "card", "nope-v9"), "nope-v9")
