"""SecAgg+ after key sharing: only the nodes that shared their keys take part in unmasking."""

from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState

from kumiai.adapters.flower.secure import only_those_who_shared_keys


def test_a_node_lost_before_key_sharing_is_neither_a_dropout_nor_a_neighbour() -> None:
    state = WorkflowState()
    everyone = {1, 2, 3, 4, 5}
    state.sampled_node_ids = everyone
    state.nid_to_neighbours = {n: set(everyone) for n in everyone}
    state.active_node_ids = {1, 2, 3, 5}  # 4 answered setup, then died before sharing keys
    flowers = state.nid_to_neighbours[1]
    only_those_who_shared_keys(state)
    # Flower would unmask 4 as a dropout (dead = sampled - active) and remove pairwise masks
    # with it from a sum it never masked: neither happens now.
    assert state.sampled_node_ids == {1, 2, 3, 5}
    assert state.nid_to_neighbours == {n: {1, 2, 3, 5} for n in (1, 2, 3, 5)}
    # a node lost later (say 5, while training) is still the dropout to unmask
    state.active_node_ids = {1, 2, 3}
    assert state.sampled_node_ids - state.active_node_ids == {5}
    assert flowers == {1, 2, 3, 4, 5}  # the sets Flower built are not changed in place
