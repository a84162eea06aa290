"""The coordinator's rule for a cosignature a witness publishes over the network.

The signature is the authentication: it must be by a registered member's key on record, over
a head the coordinator itself signed and recorded. Anything else would let a stranger put
words in a member's mouth, or let a forged head look witnessed.
"""

from kumiai.domain import keys
from kumiai.domain.ledger import TreeHead, cosignature_valid


def refusal(
    witness: str,
    key_on_record: str | None,
    head: TreeHead,
    recorded: TreeHead | None,
    signature: str,
) -> str | None:
    """Why the coordinator refuses to record this cosignature; None when it may."""
    if key_on_record is None:
        return (
            f"{witness!r} is not a member: only a registered member's node witnesses the log; "
            "see `kumiai member list`"
        )
    if recorded is None or recorded != head:
        return (
            f"the coordinator never signed this tree head (size {head.size}, root "
            f"{head.root[:16]}…): cosign the head fetched from GET /ledger/head"
        )
    if not cosignature_valid(head, witness, signature, key_on_record):
        return (
            f"the cosignature does not verify with {witness}'s key on record "
            f"({keys.fingerprint(key_on_record)}): sign with the member's current key"
        )
    return None
