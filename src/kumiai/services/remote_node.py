"""The port to a member's node when the coordinator serves members on other machines.

The coordinator can no longer sign for a member. Inside a served act, `SubmittedNode`
answers `sign_entry` and `sign_agreement` only with a signature that member's node
submitted over exactly those canonical bytes, checked against its key. Anything else is
refused with `Unsigned`, which carries the document the node must sign: the API hands it to
the node (`202`, "sign this"), the node checks it says what its steward meant, signs it and
submits the act again with the signature. The service function is the same one the
one-directory mode calls; a refused round rolls its transaction back, so nothing is written
until every signature is there.
"""

from collections.abc import Sequence
from typing import Any

from kumiai.domain import keys
from kumiai.domain.agreement import AgreementTerms, SignedAgreement
from kumiai.domain.canonical import canonical_json
from kumiai.domain.errors import StateError
from kumiai.domain.ledger import Entry, SignedEntry
from kumiai.node.port import NodePort

ENTRY, AGREEMENT = "entry", "agreement"


class Unsigned(StateError):
    """A member's signature the coordinator does not hold: `what` and the `document` to sign."""

    def __init__(self, member: str, what: str, document: dict[str, Any]) -> None:
        self.member, self.what, self.document = member, what, document
        super().__init__(
            f"the coordinator cannot sign for {member!r}: its node signs its own acts, and "
            f"it has not signed this {what} ({_about(what, document)}); nothing was written. "
            f"Act from the member's node: kumiai node … --home NODE_HOME"
        )


def _about(what: str, document: dict[str, Any]) -> str:
    if what == ENTRY:
        return f"{document.get('kind')} at seq {document.get('seq')}"
    return f"agreement {document.get('agreement_id')} on {document.get('dataset')}"


class SubmittedNode:
    """A node on another machine, as one served act sees it: its public key and the
    signatures it submitted. Operations that do not sign go to `inner`, the node's home on
    this machine when there is one (the one-directory demo served over HTTPS), else refused.
    """

    def __init__(
        self,
        member: str,
        public_key: str | None,
        signatures: Sequence[str] = (),
        inner: NodePort | None = None,
        next_public_key: str | None = None,
    ) -> None:
        self.member = member
        self._public = public_key
        self._signatures = tuple(signatures)
        self._inner = inner
        self._next = next_public_key

    def __getattr__(self, operation: str) -> Any:
        if self._inner is None:
            raise StateError(
                f"the node of {self.member!r} is on its own machine; the coordinator cannot "
                f"ask it to {operation.replace('_', ' ')} here"
            )
        return getattr(self._inner, operation)

    @property
    def address(self) -> str:
        return self._inner.address if self._inner is not None else f"node:{self.member}"

    def _signature(self, message: bytes) -> str | None:
        if self._public is None:
            return None
        return next((s for s in self._signatures if keys.verify(self._public, message, s)), None)

    # -- what the node did itself, before it asked -----------------------------------------
    def join(self, name: str, kind: str, coordinator_key: str) -> str:
        if self._public is None or name != self.member:
            raise StateError(f"the node of {name!r} makes its own key; none was submitted")
        return self._public

    def public_key(self) -> str:
        if self._public is None:
            raise StateError(f"no key of {self.member!r} was submitted")
        return self._public

    def next_key(self) -> str:
        """The key the node made and keeps waiting, submitted with a key rotation."""
        if self._next is None:
            return self.__getattr__("next_key")()  # type: ignore[no-any-return]
        return self._next

    def rotate_key(self) -> str:
        """The node puts its new key in place itself, once the rotation is recorded."""
        if self._next is None:
            return self.__getattr__("rotate_key")()  # type: ignore[no-any-return]
        return self._next

    def store_agreement(self, agreement: SignedAgreement) -> None:
        """The node keeps the agreement it signed; the coordinator keeps only its mirror."""
        self._require_acting("store the agreement")

    def revoke(self, agreement_id: str, revoked_at: str, reason: str) -> None:
        """The node wrote the revocation in its home before it submitted the act."""
        self._require_acting("revoke the agreement")

    def set_budget(self, dataset: str, epsilon: float) -> None:
        """The node set the budget in its own home (its guard enforces it) before it asked
        the coordinator to mirror it."""
        self._require_acting("set the privacy budget")

    def _require_acting(self, what: str) -> None:
        if self._public is None:
            raise StateError(
                f"the coordinator cannot {what} for {self.member!r}; its node does that "
                "itself: kumiai node … --home NODE_HOME"
            )

    # -- signatures: only the node's own, over exactly these bytes ------------------------
    def sign_entry(self, entry: Entry) -> SignedEntry:
        message = canonical_json(entry.document())
        signature = self._signature(message)
        if signature is None or entry.actor != self.member:
            raise Unsigned(entry.actor, ENTRY, entry.document())
        assert self._public is not None
        return SignedEntry(entry, signature, keys.fingerprint(self._public), message)

    def sign_agreement(self, terms: AgreementTerms) -> SignedAgreement:
        signature = self._signature(canonical_json(terms.payload()))
        if signature is None or terms.steward != self.member:
            raise Unsigned(terms.steward, AGREEMENT, terms.payload())
        assert self._public is not None
        return SignedAgreement(terms, signature, keys.fingerprint(self._public))
