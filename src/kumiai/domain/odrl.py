"""Agreements as ODRL 2.2 policies (JSON-LD), and back, failing closed on anything unknown.

Data spaces (Eclipse Dataspace Components, Catena-X, Ouranos) exchange usage policies in
ODRL. A kumiai agreement maps onto one `Agreement` policy: the steward is the assigner, the
project the assignee, the dataset the target, and one permission to `use` it under
constraints. ODRL's own left operands carry purpose, expiry (`dateTime`) and rounds
(`count`); kumiai's other terms are left operands of the kumiai profile (docs/odrl.md).

Reading a policy back is strict where data-space connectors are lenient: a constraint,
operator, action, duty, prohibition or JSON-LD term this module does not know is refused by
name, with what kumiai supports, never dropped. A constraint dropped would widen what the
steward allowed. The steward's signature travels with the policy, over the canonical
(RFC 8785) bytes of the kumiai terms, so the reader can check that what it parsed is what
was signed.

Only JSON-LD's compact form is read, as written here: the two `@context` IRIs are
identifiers, compared as strings and never fetched.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, SignedAgreement, signature_is_valid
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import parse_iso, to_iso
from kumiai.domain.disclosure import STATISTICS_MODES, check_min_cohort, check_statistics_mode
from kumiai.domain.errors import InvalidInput
from kumiai.domain.job import parse_job_kinds
from kumiai.domain.privacy import check_epsilon_cap

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
ODRL_NS = "http://www.w3.org/ns/odrl/2/"
KUMIAI_CONTEXT = "https://kumiai.example/ns/odrl/v1.jsonld"
KUMIAI_NS = "https://kumiai.example/ns/odrl/v1#"
KUMIAI_PROFILE = "https://kumiai.example/ns/odrl/v1"
URN = "urn:kumiai:"
XSD_DATETIME = "xsd:dateTime"
SIGNATURE_ALGORITHM = "Ed25519"
CANONICALIZATION = "RFC 8785"

# Left operand -> (the one operator kumiai enforces it with, what it means). ODRL's own
# operands first, then the kumiai profile's. The order is the export's order.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "purpose": ("eq", "the project's stated purpose"),
    "dateTime": ("lt", "the expiry, an xsd:dateTime in UTC"),
    "count": ("lteq", "the most federated rounds per job"),
    "kumiai:jobKind": ("isAnyOf", "the job kinds allowed: train, evaluate, statistics"),
    "kumiai:epsilonCap": ("lteq", "the most ε the project may spend; absent: DP not required"),
    "kumiai:plainAggregation": ("eq", "may the coordinator see individual updates"),
    "kumiai:aggregateStatistics": ("eq", "allowed | dp | forbidden"),
    "kumiai:minCohort": ("gteq", "the fewest rows any released aggregate covers"),
    "kumiai:contributionAnalysis": ("eq", "consent to Shapley shares; absent: no consent"),
}
OPTIONAL = frozenset({"kumiai:epsilonCap", "kumiai:contributionAnalysis"})
ACTIONS = ("use",)
POLICY_KEYS = (
    "@context",
    "@type",
    "uid",
    "profile",
    "assigner",
    "assignee",
    "target",
    "permission",
    "kumiai:request",
    "kumiai:signedAt",
    "kumiai:signature",
)
PERMISSION_KEYS = ("@type", "action", "constraint", "target", "assigner", "assignee")
CONSTRAINT_KEYS = ("@type", "leftOperand", "operator", "rightOperand")
SIGNATURE_KEYS = (
    "kumiai:algorithm",
    "kumiai:canonicalization",
    "kumiai:keyFingerprint",
    "kumiai:signatureValue",
    "kumiai:signedTermsSha256",
)
# What ODRL allows that kumiai cannot enforce at the node: named in the refusal.
_UNENFORCEABLE = {
    "prohibition": "a prohibition",
    "obligation": "an obligation",
    "duty": "a duty",
    "remedy": "a remedy",
    "consequence": "a consequence",
    "refinement": "an action refinement",
    "and": "a logical constraint (and)",
    "or": "a logical constraint (or)",
    "xone": "a logical constraint (xone)",
    "andSequence": "a logical constraint (andSequence)",
    "inheritFrom": "policy inheritance (inheritFrom)",
    "conflict": "a conflict strategy",
}


def terms_sha256(terms: AgreementTerms) -> str:
    """Hex SHA-256 of the canonical bytes the steward signs."""
    return hashlib.sha256(canonical_json(terms.payload())).hexdigest()


def to_policy(agreement: SignedAgreement) -> dict[str, Any]:
    """The agreement as an ODRL 2.2 `Agreement` policy, with the steward's signature."""
    t = agreement.terms
    constraints: list[dict[str, Any]] = [
        _constraint("purpose", t.purpose),
        _constraint("dateTime", {"@value": to_iso(t.expires_at), "@type": XSD_DATETIME}),
        _constraint("count", t.max_rounds),
        _constraint("kumiai:jobKind", [k.value for k in t.job_kinds]),
    ]
    if t.epsilon_cap is not None:
        constraints.append(_constraint("kumiai:epsilonCap", t.epsilon_cap))
    constraints += [
        _constraint("kumiai:plainAggregation", t.plain_aggregation),
        _constraint("kumiai:aggregateStatistics", t.aggregate_statistics),
        _constraint("kumiai:minCohort", t.min_cohort),
    ]
    if t.contribution_analysis:
        constraints.append(_constraint("kumiai:contributionAnalysis", True))
    policy: dict[str, Any] = {
        "@context": [ODRL_CONTEXT, KUMIAI_CONTEXT],
        "@type": "Agreement",
        "uid": f"{URN}agreement:{t.agreement_id}",
        "profile": KUMIAI_PROFILE,
        "assigner": f"{URN}member:{t.steward}",
        "assignee": f"{URN}project:{t.project}",
        "target": f"{URN}dataset:{t.dataset}",
        "permission": [{"action": "use", "constraint": constraints}],
        "kumiai:request": f"{URN}request:{t.request_id}",
        "kumiai:signedAt": {"@value": to_iso(t.signed_at), "@type": XSD_DATETIME},
    }
    if agreement.signature:
        policy["kumiai:signature"] = {
            "kumiai:algorithm": SIGNATURE_ALGORITHM,
            "kumiai:canonicalization": CANONICALIZATION,
            "kumiai:keyFingerprint": agreement.key_fingerprint,
            "kumiai:signatureValue": agreement.signature,
            "kumiai:signedTermsSha256": terms_sha256(t),
        }
    return policy


def _constraint(left: str, right: object) -> dict[str, Any]:
    return {"leftOperand": left, "operator": CONSTRAINTS[left][0], "rightOperand": right}


@dataclass(frozen=True)
class ImportedPolicy:
    """Terms read from a policy, and the signature it carries, not yet checked."""

    terms: AgreementTerms
    signature: str  # "" when the policy carries none
    key_fingerprint: str
    signed_terms_sha256: str

    @property
    def agreement(self) -> SignedAgreement:
        return SignedAgreement(self.terms, self.signature, self.key_fingerprint)


def from_policy(doc: object) -> ImportedPolicy:
    """Read an ODRL policy written by `to_policy`; InvalidInput names what kumiai refuses."""
    policy = _object(doc, "the policy")
    _check_context(policy.get("@context"))
    _known_keys(policy, POLICY_KEYS, "the policy")
    if _term(policy.get("@type")) != "Agreement":
        raise InvalidInput(
            f"the policy's @type is {policy.get('@type')!r}; kumiai reads only an ODRL "
            "Agreement (an Offer or Set has no steward's consent to carry)"
        )
    if policy.get("profile") != KUMIAI_PROFILE:
        raise InvalidInput(
            f"the policy's profile is {policy.get('profile')!r}; kumiai reads policies of "
            f"its own profile {KUMIAI_PROFILE} only (docs/odrl.md)"
        )
    agreement_id = _urn(policy.get("uid"), "agreement", "uid")
    steward = _urn(policy.get("assigner"), "member", "assigner")
    project = _urn(policy.get("assignee"), "project", "assignee")
    dataset = _urn(policy.get("target"), "dataset", "target")
    request_id = _urn(policy.get("kumiai:request"), "request", "kumiai:request")
    signed_at = _datetime(policy.get("kumiai:signedAt"), "kumiai:signedAt")
    permissions = policy.get("permission")
    if not isinstance(permissions, list) or len(permissions) != 1:
        raise InvalidInput(
            "the policy must hold exactly one permission (to use the target); kumiai "
            "enforces one permission per agreement"
        )
    permission = _object(permissions[0], "the permission")
    _known_keys(permission, PERMISSION_KEYS, "the permission")
    _typed(permission, "Permission", "the permission")
    for key, expected in (("target", dataset), ("assigner", steward), ("assignee", project)):
        if key in permission and permission[key] != policy[key]:
            raise InvalidInput(
                f"the permission's {key} {permission[key]!r} differs from the policy's; "
                f"kumiai reads one {key} per agreement ({expected!r})"
            )
    action = _term(permission.get("action"))
    if action not in ACTIONS:
        raise InvalidInput(
            f"the action {permission.get('action')!r} is not one kumiai enforces; it "
            "supports only: " + ", ".join(ACTIONS)
        )
    values = _constraints(permission.get("constraint"))
    terms = _terms(
        values,
        agreement_id=agreement_id,
        request_id=request_id,
        project=project,
        dataset=dataset,
        steward=steward,
        signed_at=signed_at,
    )
    signature, fingerprint, digest = _signature(policy.get("kumiai:signature"))
    return ImportedPolicy(terms, signature, fingerprint, digest)


def signature_refusal(imported: ImportedPolicy, steward_keys: tuple[str, ...]) -> str | None:
    """Why the policy's terms are not the steward's signed terms, or None when they are.

    An unsigned policy is refused too: its terms are a proposal, never an agreement.
    """
    t = imported.terms
    if not imported.signature:
        return (
            f"the policy for {t.agreement_id} carries no steward's signature; its terms are "
            "a proposal, not an agreement — a steward makes one with `kumiai agreement sign`"
        )
    digest = terms_sha256(t)
    if imported.signed_terms_sha256 != digest:
        return (
            f"the policy's terms hash to {digest}, not to the signed "
            f"{imported.signed_terms_sha256}: they were changed after {t.steward} signed"
        )
    if not any(signature_is_valid(imported.agreement, k) for k in steward_keys):
        return (
            f"the signature on {t.agreement_id} is not valid for any key {t.steward} has "
            "held: the terms or the signature were altered, or another key signed"
        )
    if imported.key_fingerprint not in {keys.fingerprint(k) for k in steward_keys}:
        return f"the policy names key {imported.key_fingerprint}, which {t.steward} never held"
    return None


def _check_context(context: object) -> None:
    expected = [ODRL_CONTEXT, KUMIAI_CONTEXT]
    if context == expected:
        return
    items = context if isinstance(context, list) else [context]
    unknown = [c for c in items if c not in expected]
    named = ", ".join(repr(c) for c in unknown) or repr(context)
    raise InvalidInput(
        f"the policy's @context holds {named}, which kumiai does not read: it supports "
        f"exactly [{ODRL_CONTEXT!r}, {KUMIAI_CONTEXT!r}] (a term defined elsewhere could "
        "change what a constraint means)"
    )


def _known_keys(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key in known:
            continue
        what = _UNENFORCEABLE.get(_term(key) or "")
        if what:
            raise InvalidInput(
                f"{where} holds {what} ({key!r}), which a kumiai node cannot enforce; kumiai "
                "enforces only the constraints of one permission: " + _supported()
            )
        raise InvalidInput(
            f"{where} holds the term {key!r}, which kumiai does not know; {where} may hold "
            "only: " + ", ".join(known)
        )


def _constraints(raw: object) -> dict[str, object]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("the permission has no constraints; kumiai needs: " + _supported())
    values: dict[str, object] = {}
    for item in raw:
        constraint = _object(item, "a constraint")
        for key in constraint:
            if key not in CONSTRAINT_KEYS:
                what = _UNENFORCEABLE.get(_term(key) or "")
                raise InvalidInput(
                    f"a constraint holds {what or 'the term'} {key!r}, which kumiai does not "
                    "enforce; a constraint holds only leftOperand, operator and rightOperand"
                )
        _typed(constraint, "Constraint", "a constraint")
        left, operator = _term(constraint.get("leftOperand")), _term(constraint.get("operator"))
        if left not in CONSTRAINTS:
            raise InvalidInput(
                f"the left operand {constraint.get('leftOperand')!r} is not one kumiai "
                "enforces; it supports: " + _supported()
            )
        if operator != CONSTRAINTS[left][0]:
            raise InvalidInput(
                f"the operator {constraint.get('operator')!r} on {left} is not one kumiai "
                f"enforces; {left} takes only {CONSTRAINTS[left][0]}"
            )
        if left in values:
            raise InvalidInput(f"the constraint {left} appears twice; give it once")
        if "rightOperand" not in constraint:
            raise InvalidInput(f"the constraint {left} has no rightOperand")
        values[left] = constraint["rightOperand"]
    missing = [k for k in CONSTRAINTS if k not in values and k not in OPTIONAL]
    if missing:
        raise InvalidInput(
            "the permission lacks the constraint(s) " + ", ".join(missing) + "; every kumiai "
            "agreement states them (docs/odrl.md)"
        )
    return values


def _terms(values: dict[str, object], **ids: Any) -> AgreementTerms:
    purpose = values["purpose"]
    if not isinstance(purpose, str) or not purpose.strip():
        raise InvalidInput("the purpose constraint must be a non-empty string")
    kinds = values["kumiai:jobKind"]
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise InvalidInput('kumiai:jobKind must be a list of job kinds, e.g. ["train"]')
    cap = values.get("kumiai:epsilonCap")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int | float)):
        raise InvalidInput(f"kumiai:epsilonCap must be a number, not {cap!r}")
    statistics = values["kumiai:aggregateStatistics"]
    if not isinstance(statistics, str):
        raise InvalidInput(
            "kumiai:aggregateStatistics must be one of: " + ", ".join(STATISTICS_MODES)
        )
    return AgreementTerms(
        purpose=purpose,
        job_kinds=parse_job_kinds(kinds),
        max_rounds=_whole(values["count"], "count", least=1),
        expires_at=_datetime(values["dateTime"], "dateTime"),
        epsilon_cap=None if cap is None else check_epsilon_cap(float(cap)),
        plain_aggregation=_bool(values["kumiai:plainAggregation"], "kumiai:plainAggregation"),
        aggregate_statistics=check_statistics_mode(statistics),
        min_cohort=check_min_cohort(_whole(values["kumiai:minCohort"], "kumiai:minCohort")),
        contribution_analysis=_bool(
            values.get("kumiai:contributionAnalysis", False), "kumiai:contributionAnalysis"
        ),
        **ids,
    )


def _signature(raw: object) -> tuple[str, str, str]:
    if raw is None:
        return "", "", ""
    block = _object(raw, "kumiai:signature")
    _known_keys(block, SIGNATURE_KEYS, "kumiai:signature")
    if block.get("kumiai:algorithm") != SIGNATURE_ALGORITHM:
        raise InvalidInput(
            f"kumiai:signature uses {block.get('kumiai:algorithm')!r}; kumiai checks only "
            f"{SIGNATURE_ALGORITHM}"
        )
    if block.get("kumiai:canonicalization") != CANONICALIZATION:
        raise InvalidInput(
            f"kumiai:signature is over {block.get('kumiai:canonicalization')!r} bytes; kumiai "
            f"signs {CANONICALIZATION} canonical JSON only"
        )
    parts = [block.get(k) for k in SIGNATURE_KEYS[2:]]
    if not all(isinstance(p, str) and p for p in parts):
        raise InvalidInput(
            "kumiai:signature needs kumiai:keyFingerprint, kumiai:signatureValue and "
            "kumiai:signedTermsSha256, each a non-empty string"
        )
    fingerprint, signature, digest = (str(p) for p in parts)
    return signature, fingerprint, digest


def _supported() -> str:
    return "; ".join(f"{k} {op} ({meaning})" for k, (op, meaning) in CONSTRAINTS.items())


def _term(value: object) -> str | None:
    """A compact ODRL or kumiai term, whether written bare, prefixed or as a full IRI."""
    if isinstance(value, dict) and set(value) == {"@id"}:
        value = value["@id"]
    if not isinstance(value, str):
        return None
    for prefix in ("odrl:", ODRL_NS):
        if value.startswith(prefix):
            return value[len(prefix) :]
    if value.startswith(KUMIAI_NS):
        return "kumiai:" + value[len(KUMIAI_NS) :]
    return value


def _typed(obj: dict[str, Any], expected: str, where: str) -> None:
    """An explicit @type (as EDC writes one) must be the one ODRL gives that place."""
    if "@type" in obj and _term(obj["@type"]) != expected:
        raise InvalidInput(
            f"{where} has @type {obj['@type']!r}; kumiai reads only {expected} there (a "
            "LogicalConstraint or another rule type is not one a node enforces)"
        )


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def _urn(value: object, kind: str, where: str) -> str:
    prefix = f"{URN}{kind}:"
    if not isinstance(value, str) or not value.startswith(prefix) or value == prefix:
        raise InvalidInput(f"{where} must be an IRI {prefix}NAME, not {value!r}")
    return value[len(prefix) :]


def _datetime(value: object, where: str) -> datetime:
    if isinstance(value, dict):
        if set(value) != {"@value", "@type"} or value["@type"] != XSD_DATETIME:
            raise InvalidInput(f"{where} must be {{'@value': TIME, '@type': 'xsd:dateTime'}}")
        value = value["@value"]
    if not isinstance(value, str) or not value.endswith("Z"):
        raise InvalidInput(f"{where} must be a UTC time such as 2027-06-30T12:00:00Z")
    moment = parse_iso(value, where)
    if to_iso(moment) != value:
        raise InvalidInput(f"{where} {value!r} must be to the second: YYYY-MM-DDTHH:MM:SSZ")
    return moment


def _whole(value: object, where: str, least: int = 0) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise InvalidInput(f"{where} must be a whole number, not {value!r}")
    if value < least:
        raise InvalidInput(f"{where} must be at least {least}, not {value!r}")
    return int(value)


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} must be true or false, not {value!r}")
    return value
