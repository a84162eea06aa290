"""Agreements as ODRL 2.2 policies: a lossless round trip, and every unknown refused by name."""

import copy
import itertools
import json
from typing import Any

import pytest

from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json, load_json
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import JobKind
from kumiai.domain.odrl import (
    KUMIAI_CONTEXT,
    ODRL_CONTEXT,
    from_policy,
    signature_refusal,
    terms_sha256,
    to_policy,
)
from tests.conftest import signed

KINDS = [
    (JobKind.TRAIN,),
    (JobKind.TRAIN, JobKind.EVALUATE),
    (JobKind.STATISTICS, JobKind.TRAIN, JobKind.EVALUATE),
]
COMBINATIONS = list(
    itertools.product(
        [None, 0.5, 1.0, 3],  # ε cap (None: DP not required)
        [False, True],  # plain aggregation
        ["allowed", "dp", "forbidden"],  # aggregate statistics
        [0, 30],  # min cohort
        [False, True],  # contribution analysis
        KINDS,
    )
)


def _through_a_file(policy: dict[str, Any]) -> object:
    return load_json(json.dumps(policy, indent=2))


def _policy(key, **changes: object) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return to_policy(signed(key, **changes))


def _constraints(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return policy["permission"][0]["constraint"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("cap", "plain", "statistics", "cohort", "consent", "kinds"), COMBINATIONS)
def test_import_of_export_is_the_agreement_byte_for_byte(  # type: ignore[no-untyped-def]
    steward_key, cap, plain, statistics, cohort, consent, kinds
) -> None:
    agreement = signed(
        steward_key,
        epsilon_cap=cap,
        plain_aggregation=plain,
        aggregate_statistics=statistics,
        min_cohort=cohort,
        contribution_analysis=consent,
        job_kinds=kinds,
    )
    imported = from_policy(_through_a_file(to_policy(agreement)))
    assert canonical_json(imported.terms.payload()) == canonical_json(agreement.terms.payload())
    assert imported.terms == agreement.terms
    assert imported.signature == agreement.signature
    assert imported.key_fingerprint == agreement.key_fingerprint
    assert signature_refusal(imported, (keys.public_key_b64(steward_key),)) is None


def test_the_policy_says_what_the_agreement_says_in_odrl(steward_key) -> None:  # type: ignore[no-untyped-def]
    agreement = signed(steward_key, epsilon_cap=1.0, aggregate_statistics="dp", min_cohort=30)
    policy = to_policy(agreement)
    assert policy["@context"] == [ODRL_CONTEXT, KUMIAI_CONTEXT]
    assert policy["@type"] == "Agreement"
    assert policy["uid"] == "urn:kumiai:agreement:agr-1"
    assert policy["assigner"] == "urn:kumiai:member:cleveland"
    assert policy["assignee"] == "urn:kumiai:project:heart"
    assert policy["target"] == "urn:kumiai:dataset:cleveland-heart"
    assert policy["permission"][0]["action"] == "use"
    assert [(c["leftOperand"], c["operator"], c["rightOperand"]) for c in _constraints(policy)] == [
        ("purpose", "eq", "diagnosis support"),
        ("dateTime", "lt", {"@value": "2026-12-27T12:00:00Z", "@type": "xsd:dateTime"}),
        ("count", "lteq", 10),
        ("kumiai:jobKind", "isAnyOf", ["train", "evaluate"]),
        ("kumiai:epsilonCap", "lteq", 1.0),
        ("kumiai:plainAggregation", "eq", False),
        ("kumiai:aggregateStatistics", "eq", "dp"),
        ("kumiai:minCohort", "gteq", 30),
    ]
    proof = policy["kumiai:signature"]
    assert proof["kumiai:signatureValue"] == agreement.signature
    assert proof["kumiai:signedTermsSha256"] == terms_sha256(agreement.terms)
    assert len(proof["kumiai:signedTermsSha256"]) == 64


def test_prefixed_and_full_iris_mean_the_same_terms(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key, epsilon_cap=2.0)
    policy["@type"] = "odrl:Agreement"
    policy["permission"][0]["action"] = {"@id": "http://www.w3.org/ns/odrl/2/use"}
    _constraints(policy)[2]["operator"] = "odrl:lteq"
    _constraints(policy)[4]["leftOperand"] = "https://kumiai.example/ns/odrl/v1#epsilonCap"
    assert from_policy(policy).terms.epsilon_cap == 2.0


def _refused(policy: object, *fragments: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        from_policy(policy)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_an_unknown_left_operand_is_refused_by_name_with_what_kumiai_supports(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    _constraints(policy).append(
        {
            "leftOperand": "spatial",
            "operator": "eq",
            "rightOperand": "https://www.wikidata.org/wiki/Q17",
        }
    )
    _refused(policy, "'spatial'", "not one kumiai enforces", "purpose eq", "kumiai:epsilonCap lteq")


def test_an_unknown_kumiai_extension_is_refused_too(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    _constraints(policy).append(
        {"leftOperand": "kumiai:deltaCap", "operator": "lteq", "rightOperand": 1e-5}
    )
    _refused(policy, "'kumiai:deltaCap'", "not one kumiai enforces")


@pytest.mark.parametrize(
    ("index", "operator"), [(0, "neq"), (1, "gt"), (2, "gteq"), (3, "isAllOf")]
)
def test_an_operator_kumiai_does_not_enforce_is_refused_by_name(
    steward_key, index, operator
) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    constraint = _constraints(policy)[index]
    constraint["operator"] = operator
    _refused(policy, f"operator {operator!r}", f"on {constraint['leftOperand']}", "takes only")


def test_the_cap_cannot_be_turned_into_a_floor(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key, epsilon_cap=1.0)
    _constraints(policy)[4]["operator"] = "gteq"
    _refused(policy, "operator 'gteq' on kumiai:epsilonCap", "takes only lteq")


@pytest.mark.parametrize("action", ["distribute", "odrl:sell", "read", {"@id": "modify"}])
def test_an_action_other_than_use_is_refused_by_name(steward_key, action) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    policy["permission"][0]["action"] = action
    _refused(policy, f"action {action!r}", "supports only: use")


@pytest.mark.parametrize(
    ("where", "key", "named"),
    [
        ("policy", "prohibition", "a prohibition ('prohibition')"),
        ("policy", "obligation", "an obligation ('obligation')"),
        ("permission", "duty", "a duty ('duty')"),
        ("permission", "odrl:duty", "a duty ('odrl:duty')"),
    ],
)
def test_a_rule_the_node_cannot_enforce_is_refused_by_name(steward_key, where, key, named) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    rule = [{"action": "compensate", "constraint": []}]
    (policy if where == "policy" else policy["permission"][0])[key] = rule
    _refused(policy, named, "cannot enforce", "purpose eq")


def test_a_logical_constraint_is_refused_by_name(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    _constraints(policy).append({"or": [{"@list": []}]})
    _refused(policy, "a logical constraint (or)", "'or'")


@pytest.mark.parametrize(
    "context",
    [
        ODRL_CONTEXT,
        [ODRL_CONTEXT, KUMIAI_CONTEXT, "https://w3id.org/catenax/policy/v1.0.0"],
        [ODRL_CONTEXT, {"purpose": "https://example.org/my-purpose"}],
    ],
)
def test_an_unknown_context_is_refused_by_name(steward_key, context) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    policy["@context"] = context
    _refused(policy, "@context", "kumiai does not read", "supports exactly")


def test_an_unknown_policy_term_is_refused_by_name(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    policy["cx-policy:FrameworkAgreement"] = "traceability:1.0"
    _refused(policy, "'cx-policy:FrameworkAgreement'", "does not know", "may hold only")


def test_a_missing_constraint_is_refused_not_defaulted(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    del _constraints(policy)[2]
    _refused(policy, "lacks the constraint(s) count")


def test_a_repeated_constraint_is_refused(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    _constraints(policy).append(copy.deepcopy(_constraints(policy)[0]))
    _refused(policy, "purpose appears twice")


@pytest.mark.parametrize(
    ("index", "value", "fragment"),
    [
        (2, 0, "count must be at least 1"),
        (2, 2.5, "count must be a whole number"),
        (3, ["train", "exfiltrate"], "job kind 'exfiltrate' is not known"),
        (4, -1, "epsilon_cap"),
        (4, "lots", "kumiai:epsilonCap must be a number"),
        (5, "no", "kumiai:plainAggregation must be true or false"),
        (6, "public", "aggregate statistics 'public' is not known"),
        (7, -3, "kumiai:minCohort must be at least 0"),
    ],
)
def test_a_right_operand_out_of_range_is_refused(steward_key, index, value, fragment) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key, epsilon_cap=1.0)
    _constraints(policy)[index]["rightOperand"] = value
    _refused(policy, fragment)


def test_a_policy_with_a_raised_epsilon_cap_fails_the_signature_check(steward_key) -> None:  # type: ignore[no-untyped-def]
    steward = (keys.public_key_b64(steward_key),)
    policy = _policy(steward_key, epsilon_cap=1.0)
    _constraints(policy)[4]["rightOperand"] = 8.0
    tampered = from_policy(_through_a_file(policy))
    assert tampered.terms.epsilon_cap == 8.0  # it parses: only the signature catches it
    refusal = signature_refusal(tampered, steward)
    assert refusal is not None
    assert "changed after cleveland signed" in refusal
    # The tamperer also fixes the hash: the Ed25519 signature still refuses.
    policy["kumiai:signature"]["kumiai:signedTermsSha256"] = terms_sha256(tampered.terms)
    refusal = signature_refusal(from_policy(policy), steward)
    assert refusal is not None
    assert "not valid for any key cleveland has held" in refusal


def test_a_policy_signed_by_another_key_is_refused(steward_key) -> None:  # type: ignore[no-untyped-def]
    forged = from_policy(_policy(keys.new_private_key()))
    refusal = signature_refusal(forged, (keys.public_key_b64(steward_key),))
    assert refusal is not None
    assert "not valid for any key" in refusal


def test_unsigned_terms_are_a_proposal_never_an_agreement(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    del policy["kumiai:signature"]
    imported = from_policy(policy)
    refusal = signature_refusal(imported, (keys.public_key_b64(steward_key),))
    assert refusal is not None
    assert "carries no steward's signature" in refusal


def test_an_offer_is_not_an_agreement(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    policy["@type"] = "Offer"
    _refused(policy, "'Offer'", "only an ODRL Agreement")


def test_an_explicit_type_is_read_when_it_is_odrls_own(steward_key) -> None:  # type: ignore[no-untyped-def]
    policy = _policy(steward_key)
    policy["permission"][0]["@type"] = "odrl:Permission"
    for constraint in _constraints(policy):
        constraint["@type"] = "Constraint"
    assert from_policy(policy).terms == signed(steward_key).terms
    _constraints(policy)[0]["@type"] = "LogicalConstraint"
    _refused(policy, "@type 'LogicalConstraint'", "reads only Constraint")
