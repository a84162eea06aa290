"""Agreements out to and in from ODRL 2.2 policies (docs/odrl.md). Reads only; writes nothing.

Import never makes an agreement: agreements come into being only when a steward signs a
request at its own node, which the ledger records. Import reads a policy, refuses what
kumiai cannot enforce, checks the steward's signature over the terms it read, and compares
them with the agreement the consortium holds under the same id.
"""

from dataclasses import dataclass
from typing import Any

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import AgreementRow, MemberRow
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.canonical import canonical_json, load_json
from kumiai.domain.errors import InvalidInput
from kumiai.domain.odrl import ImportedPolicy, from_policy, signature_refusal, to_policy
from kumiai.services.consortium import Consortium
from kumiai.services.lookup import get

IDENTICAL, DIFFERENT, NOT_HELD = "identical", "different", "not held here"


@dataclass(frozen=True)
class ImportedAgreement:
    """A policy read back: its terms, verified as the steward's, and how they compare."""

    terms: dict[str, Any]  # the terms as the node would check them (the signed payload)
    steward: str
    key_fingerprint: str
    signature: str  # "valid": checked against every key the steward has held
    stored: str  # identical | different | not held here
    differences: tuple[str, ...]  # the terms that differ from the stored agreement
    revoked: bool  # the stored agreement of that id was revoked


def export_odrl(consortium: Consortium, agreement_id: str) -> dict[str, Any]:
    """The stored agreement, with its steward's signature, as an ODRL policy."""
    with transaction(consortium.sessions) as session:
        document = get(session, AgreementRow, agreement_id).document
    return to_policy(SignedAgreement.from_json(document))


def import_odrl(consortium: Consortium, text: str | bytes) -> ImportedAgreement:
    """Read a policy; InvalidInput names what is refused, including a signature that fails."""
    try:
        doc = load_json(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the policy is not JSON ({exc}); export it again") from None
    return _verify(consortium, from_policy(doc))


def _verify(consortium: Consortium, imported: ImportedPolicy) -> ImportedAgreement:
    terms = imported.terms
    with transaction(consortium.sessions) as session:
        get(session, MemberRow, terms.steward)  # NotFound: not a member, no key to check
        stored_row = session.get(AgreementRow, terms.agreement_id)
        stored = None if stored_row is None else SignedAgreement.from_json(stored_row.document)
        revoked = stored_row is not None and stored_row.revoked_at is not None
    refusal = signature_refusal(imported, consortium.node(terms.steward).steward_keys())
    if refusal:
        raise InvalidInput(f"policy refused: {refusal}")
    payload = terms.payload()
    if stored is None:
        state, differences = NOT_HELD, ()
    else:
        held = stored.terms.payload()
        same = canonical_json(held) == canonical_json(payload)
        state = IDENTICAL if same else DIFFERENT
        differences = tuple(
            k for k in sorted(held.keys() | payload.keys()) if held.get(k) != payload.get(k)
        )
    return ImportedAgreement(
        terms=payload,
        steward=terms.steward,
        key_fingerprint=imported.key_fingerprint,
        signature="valid",
        stored=state,
        differences=differences,
        revoked=revoked,
    )
