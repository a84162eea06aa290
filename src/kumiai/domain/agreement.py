"""Data-use agreements: canonical JSON (RFC 8785) terms signed with the steward's Ed25519 key."""

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json, load_json, require_version
from kumiai.domain.clock import parse_iso, to_iso
from kumiai.domain.disclosure import ALLOWED, statistics_terms
from kumiai.domain.errors import InvalidInput, UnsupportedVersion
from kumiai.domain.job import JobKind

AGREEMENT_TYPE = "kumiai.agreement"
AGREEMENT_VERSION = 2  # 2: signed as RFC 8785 canonical JSON


@dataclass(frozen=True)
class AgreementTerms:
    """What the steward consents to: one project, one dataset, one purpose, bounded use."""

    agreement_id: str
    request_id: str
    project: str
    dataset: str
    steward: str  # the member whose steward signs; owner of the dataset
    purpose: str
    job_kinds: tuple[JobKind, ...]
    max_rounds: int
    expires_at: datetime
    signed_at: datetime
    # Most ε the project may spend on the dataset; None: differential privacy not required.
    epsilon_cap: float | None = None
    # May the coordinator see this node's individual updates (no secure aggregation)?
    plain_aggregation: bool = False
    # What summaries and evaluation aggregates may leave: allowed | dp | forbidden
    # (kumiai.domain.disclosure), and over how few rows none may.
    aggregate_statistics: str = ALLOWED
    min_cohort: int = 0
    # May the board compute this dataset's share of a model's value (docs/contribution.md)?
    # Retraining the coalition of this site alone reveals what secure aggregation hides.
    contribution_analysis: bool = False

    def payload(self) -> dict[str, object]:
        consent = {"contribution_analysis": True} if self.contribution_analysis else {}
        return {
            **consent,
            "type": AGREEMENT_TYPE,
            "version": AGREEMENT_VERSION,
            "agreement_id": self.agreement_id,
            "request_id": self.request_id,
            "project": self.project,
            "dataset": self.dataset,
            "steward": self.steward,
            "purpose": self.purpose,
            "job_kinds": [k.value for k in self.job_kinds],
            "max_rounds": self.max_rounds,
            "expires_at": to_iso(self.expires_at),
            "signed_at": to_iso(self.signed_at),
            "epsilon_cap": self.epsilon_cap,
            "plain_aggregation": self.plain_aggregation,
            "aggregate_statistics": self.aggregate_statistics,
            "min_cohort": self.min_cohort,
        }
        # The term is written only when granted: an agreement signed before the term existed
        # keeps its exact signed bytes, and its absence means no consent.

    @classmethod
    def from_payload(cls, doc: dict[str, object]) -> "AgreementTerms":
        require_version(
            doc,
            AGREEMENT_TYPE,
            AGREEMENT_VERSION,
            what=f"agreement {doc.get('agreement_id', '?')}",
            fix="Make the request again and have the steward sign it with this kumiai.",
        )
        kinds = doc["job_kinds"]
        if not isinstance(kinds, list):
            raise ValueError("job_kinds must be a list")
        statistics, min_cohort = statistics_terms(doc)
        return cls(
            agreement_id=str(doc["agreement_id"]),
            request_id=str(doc["request_id"]),
            project=str(doc["project"]),
            dataset=str(doc["dataset"]),
            steward=str(doc["steward"]),
            purpose=str(doc["purpose"]),
            job_kinds=tuple(JobKind(k) for k in kinds),
            max_rounds=int(str(doc["max_rounds"])),
            expires_at=parse_iso(str(doc["expires_at"])),
            signed_at=parse_iso(str(doc["signed_at"])),
            epsilon_cap=None if doc.get("epsilon_cap") is None else float(str(doc["epsilon_cap"])),
            plain_aggregation=bool(doc.get("plain_aggregation", False)),
            aggregate_statistics=statistics,
            min_cohort=min_cohort,
            contribution_analysis=_flag(doc, "contribution_analysis"),
        )


def _flag(doc: dict[str, object], name: str) -> bool:
    value = doc.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


@dataclass(frozen=True)
class SignedAgreement:
    """Terms plus the steward's signature over their canonical bytes."""

    terms: AgreementTerms
    signature: str  # base64 Ed25519 over canonical_json(terms.payload())
    key_fingerprint: str

    def to_json(self) -> str:
        return self._canonical[1]

    def signed_bytes(self) -> bytes:
        """The bytes the steward signed: canonical_json(terms.payload())."""
        return self._canonical[0]

    @cached_property
    def _canonical(self) -> tuple[bytes, str]:
        """Computed once (the agreement is frozen): a node compares it on every message."""
        payload = self.terms.payload()
        whole = {
            "payload": payload,
            "signature": self.signature,
            "key_fingerprint": self.key_fingerprint,
        }
        return canonical_json(payload), canonical_json(whole).decode("utf-8")

    @classmethod
    def from_json(cls, text: str) -> "SignedAgreement":
        """Parsed once per distinct text: a node reads its own copy on every message."""
        return _parse_signed_agreement(text)


@lru_cache(maxsize=64)
def _parse_signed_agreement(text: str) -> SignedAgreement:
    try:
        doc = load_json(text)
        return SignedAgreement(
            terms=AgreementTerms.from_payload(doc["payload"]),
            signature=str(doc.get("signature") or ""),
            key_fingerprint=str(doc.get("key_fingerprint") or ""),
        )
    except UnsupportedVersion:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
        raise InvalidInput(
            f"agreement document is malformed ({exc}); re-export it from the steward's node"
        ) from None


def sign_agreement(terms: AgreementTerms, key: Ed25519PrivateKey) -> SignedAgreement:
    public = keys.public_key_b64(key)
    return SignedAgreement(
        terms=terms,
        signature=keys.sign(key, canonical_json(terms.payload())),
        key_fingerprint=keys.fingerprint(public),
    )


def signature_is_valid(agreement: SignedAgreement, steward_public_b64: str) -> bool:
    return bool(agreement.signature) and keys.verify(
        steward_public_b64, agreement.signed_bytes(), agreement.signature
    )


def standing_refusal(
    agreement: SignedAgreement | None,
    *,
    project: str,
    dataset: str,
    steward: str,
    steward_keys: tuple[str, ...],
    revoked: frozenset[str],
    now: datetime,
    missing: str = "",
) -> str | None:
    """Why the node's own newest agreement cannot stand for a use now, or None.

    Present, signed with the steward's key, not revoked, not expired: what every use the node
    allows outside a job (a contribution charge, a personalisation) checks first. `missing`
    is appended to the refusal when there is no agreement, to say how to get one.
    """
    if agreement is None:
        return f"no signed agreement for project {project!r} on dataset {dataset!r}{missing}"
    terms = agreement.terms
    if terms.steward != steward or not any(signature_is_valid(agreement, k) for k in steward_keys):
        return f"agreement {terms.agreement_id} is not signed with {steward}'s key"
    if terms.agreement_id in revoked:
        return f"agreement {terms.agreement_id} was revoked; ask the steward for a new one"
    if now >= terms.expires_at:
        return (
            f"agreement {terms.agreement_id} expired at {to_iso(terms.expires_at)}; ask the "
            "steward to sign a renewed request"
        )
    return None
