"""Which SuperNode keys the SuperLink should admit: exactly the members' current node keys.

The coordinator keeps the SuperLink's registered keys equal to the keys its members hold
(`members.supernode_key`) while it runs, so a member that joins is admitted without a
restart, and a key the consortium no longer holds for a member is dropped. This module is
the decision only, pure: what the SuperLink says it admits × what the members hold ->
what to register and what to unregister.

The rules, each guarding against a way in:
- only a key some member holds is ever registered: what the SuperLink or a file says is
  never a reason to register anything;
- a registered node belongs to the member whose key it carries, never to the name it was
  registered under (a name on the SuperLink is anyone's to claim);
- any other registered node is unregistered: a member's old key, a removed member's key,
  a key someone registered behind the coordinator's back;
- a key two members both hold is admitted for neither: one node would otherwise answer
  for two members (and get two members' jobs).

Keys are compared as opaque text in one canonical form (the caller's job to normalise).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegisteredNode:
    """One node the SuperLink admits now (not unregistered)."""

    node_id: int
    name: str  # as registered; says nothing about whose node it is
    key: str  # canonical public key text


@dataclass(frozen=True)
class AdmissionPlan:
    """What to change so that the SuperLink admits exactly the members' current keys."""

    admitted: dict[str, int] = field(default_factory=dict)  # member -> node id, already right
    register: tuple[tuple[str, str], ...] = ()  # (member, key) to register
    unregister: tuple[RegisteredNode, ...] = ()  # nodes no member's current key is behind
    shared: tuple[str, ...] = ()  # members whose key another member also holds

    @property
    def changes(self) -> bool:
        return bool(self.register or self.unregister)


def plan_admission(held: Mapping[str, str], registered: Iterable[RegisteredNode]) -> AdmissionPlan:
    """`held`: member -> its node's current key; `registered`: the SuperLink's live nodes.

    >>> plan = plan_admission({"a": "K1", "b": "K2"}, [RegisteredNode(7, "a", "K0"),
    ...                                                RegisteredNode(8, "x", "K2")])
    >>> plan.admitted, plan.register, [n.node_id for n in plan.unregister]
    ({'b': 8}, (('a', 'K1'),), [7])
    """
    holders: dict[str, list[str]] = {}
    for member, key in held.items():
        holders.setdefault(key, []).append(member)
    owner = {key: members[0] for key, members in holders.items() if len(members) == 1}
    shared = sorted(m for members in holders.values() if len(members) > 1 for m in members)
    admitted: dict[str, int] = {}
    unregister = []
    for node in sorted(registered, key=lambda n: n.node_id):
        member = owner.get(node.key)
        if member is None or member in admitted:
            unregister.append(node)
        else:
            admitted[member] = node.node_id
    register = tuple(sorted((m, k) for k, m in owner.items() if m not in admitted))
    return AdmissionPlan(
        admitted=dict(sorted(admitted.items())),
        register=register,
        unregister=tuple(unregister),
        shared=tuple(shared),
    )
