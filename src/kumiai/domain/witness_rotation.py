"""The rule a witness applies when the coordinator lists a new key for another witness.

A witness pins the key it first saw for each other witness (`witness-peers.json`) and never
takes the coordinator's word for a new one. It follows a key change only along
`member.key-rotated` entries that it can check itself:

1. each entry is proven (inclusion proof) to be in `head`, a head this node has itself just
   checked for consistency with its own history: a proof against any other head fails;
2. each link is `{member, previous_key, public_key}` with `previous_key` the key the node
   holds at that point, and the entry is signed by that previous key (the old key vouches
   for the new one): an entry signed by any other key is no link;
3. links are followed in log order, so two rotations are followed one after the other;
4. a rotation back to a key the member held before is refused: an honest node always makes
   a fresh key, and a retired key may be the very one that leaked;
5. the chain must end at exactly the key the coordinator lists.

Example: this node pins st-mary's key K1; the log holds entry 40 (K1 -> K2, signed by K1)
and entry 57 (K2 -> K3, signed by K2); the coordinator lists K3. The node follows both and
pins K3, keeping K1 (until 41) and K2 (until 58) on record: a head of at most 40 entries
was current while K1 was st-mary's key, so a cosignature on it verifies with K1.

Pure: the node passes in its checked head, its pins and what the coordinator sent.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from kumiai.domain import keys
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import TreeHead, entry_signature_valid
from kumiai.domain.peer_trust import LoggedEntry, included


@dataclass(frozen=True)
class Link:
    """One key a member held, and the size of the first head that no longer had it current
    (the rotation entry's seq + 1); None for the key it holds now."""

    public_key: str
    until: int | None = None


@dataclass(frozen=True)
class Followed:
    accepted: bool
    reason: str
    chain: tuple[Link, ...] = ()  # pinned key first, listed key last, when accepted


def key_at(chain: Iterable[Link], size: int) -> str:
    """The key current for a head of `size` entries: the first one not retired by then."""
    links = list(chain)
    for link in links:
        if link.until is None or size < link.until:
            return link.public_key
    return links[-1].public_key


def follow(
    member: str,
    pinned: str,
    listed: str,
    head: TreeHead,
    entries: Iterable[LoggedEntry],
    retired: Iterable[str] = (),
) -> Followed:
    """Whether `member`'s key may move from `pinned` to `listed`, and the chain that shows it.

    `head`: the head this node checked and cosigned this round. `entries`: what the
    coordinator sent as `member`'s rotation entries, with inclusion proofs under `head`.
    `retired`: keys this node already keeps on record as `member`'s earlier ones.
    """
    try:
        proven = sorted((included(e, head) for e in entries), key=lambda s: s.entry.seq)
    except InvalidInput as exc:
        return Followed(False, f"{member}'s rotation evidence: {exc}")
    chain = [Link(pinned)]
    used = {pinned, *retired}
    for signed in proven:
        entry, payload = signed.entry, signed.entry.payload
        if entry.kind != "member.key-rotated" or entry.actor != member:
            continue
        if payload.get("member") != member or payload.get("previous_key") != chain[-1].public_key:
            continue
        if not entry_signature_valid(signed, chain[-1].public_key):
            continue  # not vouched for by the key this node holds: no link
        new = str(payload.get("public_key", ""))
        if new in used:
            return Followed(
                False,
                f"ledger entry {entry.seq} rotates {member}'s key back to "
                f"{keys.fingerprint(new)}, a key it held before: this node does not trust a "
                f"retired key again; check with {member} directly",
            )
        chain[-1] = Link(chain[-1].public_key, entry.seq + 1)
        chain.append(Link(new))
        used.add(new)
    if chain[-1].public_key != listed:
        return Followed(
            False,
            f"{member}'s key changed: this node keeps {keys.fingerprint(pinned)}, the "
            f"coordinator now lists {keys.fingerprint(listed)}, and no member.key-rotated "
            f"entry signed by the key this node keeps leads there in the log of {head.size} "
            "entries it checked",
        )
    steps = len(chain) - 1
    return Followed(
        True,
        f"{member} rotated its key {steps} time(s), each entry signed by the key before: "
        f"{keys.fingerprint(pinned)} -> {keys.fingerprint(listed)}",
        tuple(chain),
    )
