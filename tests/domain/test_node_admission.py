"""The SuperLink admits exactly the members' current node keys: the pure decision."""

from kumiai.domain.node_admission import AdmissionPlan, RegisteredNode, plan_admission


def node(node_id: int, name: str, key: str) -> RegisteredNode:
    return RegisteredNode(node_id, name, key)


def test_nothing_registered_yet_registers_every_members_key() -> None:
    plan = plan_admission({"st-mary": "K1", "lab": "K2"}, [])
    assert plan == AdmissionPlan(register=(("lab", "K2"), ("st-mary", "K1")))
    assert plan.changes


def test_a_member_that_joins_is_registered_and_the_others_are_left_alone() -> None:
    live = [node(11, "st-mary", "K1")]
    plan = plan_admission({"st-mary": "K1", "kyoto": "K3"}, live)
    assert plan.admitted == {"st-mary": 11}
    assert plan.register == (("kyoto", "K3"),)
    assert plan.unregister == ()


def test_in_step_means_no_change() -> None:
    plan = plan_admission({"st-mary": "K1"}, [node(11, "st-mary", "K1")])
    assert plan == AdmissionPlan(admitted={"st-mary": 11})
    assert not plan.changes


def test_a_rotated_key_registers_the_new_one_and_drops_the_old_one() -> None:
    old = node(11, "st-mary", "K1")
    plan = plan_admission({"st-mary": "K1-new"}, [old])
    assert plan.admitted == {}
    assert plan.register == (("st-mary", "K1-new"),)
    assert plan.unregister == (old,)


def test_a_key_no_member_holds_is_unregistered_whatever_its_name() -> None:
    """Registered behind the coordinator's back under a member's own name: dropped."""
    stranger = node(99, "st-mary", "K-stranger")
    plan = plan_admission({"st-mary": "K1"}, [stranger])
    assert plan.unregister == (stranger,)
    assert plan.register == (("st-mary", "K1"),)
    assert plan.admitted == {}


def test_a_node_belongs_to_the_member_whose_key_it_carries_not_to_its_name() -> None:
    plan = plan_admission({"st-mary": "K1", "lab": "K2"}, [node(5, "lab", "K1")])
    assert plan.admitted == {"st-mary": 5}
    assert plan.register == (("lab", "K2"),)


def test_a_removed_members_key_is_unregistered() -> None:
    gone = node(22, "lab", "K2")
    plan = plan_admission({"st-mary": "K1"}, [node(11, "st-mary", "K1"), gone])
    assert plan.admitted == {"st-mary": 11}
    assert plan.unregister == (gone,)
    assert plan.register == ()


def test_a_key_two_members_hold_is_admitted_for_neither() -> None:
    """A member that submitted another's public SuperNode key would otherwise get the other
    member's node answering (and counting) for it."""
    registered = node(11, "st-mary", "K1")
    plan = plan_admission({"st-mary": "K1", "copycat": "K1", "lab": "K2"}, [registered])
    assert plan.shared == ("copycat", "st-mary")
    assert plan.admitted == {}
    assert plan.unregister == (registered,)
    assert plan.register == (("lab", "K2"),)


def test_the_plan_never_registers_a_key_that_only_the_superlink_knows() -> None:
    held = {"st-mary": "K1"}
    live = [node(1, "a", "X1"), node(2, "b", "X2"), node(3, "st-mary", "X3")]
    plan = plan_admission(held, live)
    assert {key for _, key in plan.register} <= set(held.values())
    assert [n.node_id for n in plan.unregister] == [1, 2, 3]


def test_no_member_no_node() -> None:
    live = [node(1, "a", "X1")]
    assert plan_admission({}, live) == AdmissionPlan(unregister=tuple(live))
    assert plan_admission({}, []) == AdmissionPlan()
