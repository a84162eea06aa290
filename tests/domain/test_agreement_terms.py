"""The contribution-analysis term: signed when granted, absent (and refused) otherwise."""

import json

import pytest

from kumiai.domain import keys
from kumiai.domain.agreement import SignedAgreement, signature_is_valid
from kumiai.domain.contribution_rules import SiteTerms, plan_contribution
from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import TrainingSettings
from tests.conftest import signed


def test_an_agreement_without_the_term_keeps_the_bytes_it_was_signed_with(steward_key) -> None:  # type: ignore[no-untyped-def]
    agreement = signed(steward_key)
    assert "contribution_analysis" not in agreement.terms.payload()
    again = SignedAgreement.from_json(agreement.to_json())
    assert again.terms.contribution_analysis is False
    assert signature_is_valid(again, keys.public_key_b64(steward_key))


def test_the_granted_term_is_covered_by_the_stewards_signature(steward_key) -> None:  # type: ignore[no-untyped-def]
    public = keys.public_key_b64(steward_key)
    agreement = signed(steward_key, contribution_analysis=True)
    document = json.loads(agreement.to_json())
    assert document["payload"]["contribution_analysis"] is True
    assert SignedAgreement.from_json(agreement.to_json()).terms.contribution_analysis is True
    # A coordinator that adds the term to an agreement signed without it breaks the signature.
    plain = json.loads(signed(steward_key).to_json())
    plain["payload"]["contribution_analysis"] = True
    forged = SignedAgreement.from_json(json.dumps(plain))
    assert forged.terms.contribution_analysis is True
    assert not signature_is_valid(forged, public)


@pytest.mark.parametrize("value", ["yes", 1, None, []])
def test_a_term_that_is_not_true_or_false_is_malformed(steward_key, value: object) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(signed(steward_key, contribution_analysis=True).to_json())
    document["payload"]["contribution_analysis"] = value
    with pytest.raises(InvalidInput, match="contribution_analysis must be true or false"):
        SignedAgreement.from_json(json.dumps(document))


def test_plain_aggregation_alone_no_longer_stands_for_consent() -> None:
    settings = TrainingSettings(secure_aggregation=False)
    plan = plan_contribution("m-v1", settings, {"a": SiteTerms("a", consents=False)})
    assert plan.refusal is not None
    assert "a do not consent" in plan.refusal
    assert "--allow-contribution-analysis" in plan.refusal
