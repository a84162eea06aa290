"""A node's masking key for one secure sum, signed by its member.

Under secure aggregation each node masks its noisy vector with the other sites' X25519
masking keys, which the coordinator relays. A coordinator that could invent those keys could
unmask one node's share, so every node signs its own masking key with its member's Ed25519
key, bound to the job, the dataset and the member: the signature cannot be moved to another
job (a replay), another dataset or another member.
"""

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kumiai.domain import keys
from kumiai.domain.canonical import canonical_json, load_json, require_version
from kumiai.domain.errors import InvalidInput

MASKING_KEY_TYPE = "kumiai.masking-key"
VERSION = 1
_FIELDS = frozenset({"type", "version", "job", "dataset", "member", "masking_key"})


@dataclass(frozen=True)
class MaskingKey:
    """'For job `job`, the node of `member` masks `dataset`'s release with `masking_key`.'"""

    job: str
    dataset: str
    member: str
    masking_key: str  # X25519 public key, base64

    def document(self) -> dict[str, Any]:
        return {
            "type": MASKING_KEY_TYPE,
            "version": VERSION,
            "job": self.job,
            "dataset": self.dataset,
            "member": self.member,
            "masking_key": self.masking_key,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.document())


@dataclass(frozen=True)
class SignedMaskingKey:
    statement: MaskingKey
    signature: str  # Ed25519 by the member, base64

    def to_json(self) -> str:
        doc = {"statement": self.statement.document(), "signature": self.signature}
        return canonical_json(doc).decode()

    @classmethod
    def from_json(cls, text: str) -> "SignedMaskingKey":
        """Parse strictly: exactly the signed fields, all strings."""
        try:
            doc = load_json(text)
            if not isinstance(doc, dict) or doc.keys() != {"statement", "signature"}:
                raise ValueError("expected exactly the fields signature and statement")
            body = doc["statement"]
            require_version(
                body,
                MASKING_KEY_TYPE,
                VERSION,
                what="this masking key",
                fix="Run the job again with nodes of the same kumiai release.",
            )
            if body.keys() != _FIELDS:
                raise ValueError(f"a statement holds exactly {', '.join(sorted(_FIELDS))}")
            values = [body[f] for f in ("job", "dataset", "member", "masking_key")]
            if not all(isinstance(v, str) for v in [*values, doc["signature"]]):
                raise ValueError("every field is a string")
            return cls(MaskingKey(*values), doc["signature"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"a signed masking key is malformed ({exc})") from None


def sign_masking_key(statement: MaskingKey, key: Ed25519PrivateKey) -> SignedMaskingKey:
    return SignedMaskingKey(statement, keys.sign(key, statement.signed_bytes()))


def signed_by(signed: SignedMaskingKey, public_keys: tuple[str, ...]) -> bool:
    """Whether one of `public_keys` (Ed25519, base64) made the signature."""
    message = signed.statement.signed_bytes()
    return any(keys.verify(k, message, signed.signature) for k in public_keys)
