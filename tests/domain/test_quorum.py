"""A node offline for a whole job: enough others go on without it, too few fail by name."""

from kumiai.domain.quorum import (
    minimum_nodes,
    offline_reason,
    quorum_failure,
    unanswered,
)
from kumiai.domain.training import TrainingSettings

SITES = ("a-heart", "b-heart", "c-heart", "d-heart")


def test_secure_aggregation_needs_two_nodes_a_plain_job_one() -> None:
    assert minimum_nodes(TrainingSettings(secure_aggregation=True)) == 2
    assert minimum_nodes(TrainingSettings(secure_aggregation=False)) == 1


def test_three_of_four_go_on() -> None:
    assert quorum_failure(3, 4, 2, ["d"], 15) is None
    assert quorum_failure(4, 4, 2, [], 15) is None


def test_below_the_minimum_fails_naming_the_missing_members() -> None:
    failure = quorum_failure(1, 4, 2, ["d", "b", "c"], 15)
    assert failure == (
        "only 1 of 4 nodes connected within 15 s, fewer than the 2 this job needs; "
        "missing: b, c, d. Ask them to start their node (kumiai node serve), or give the "
        "job longer with --admission-timeout"
    )
    assert "missing: unknown" in str(quorum_failure(0, 4, 1, [], 15))


def test_no_node_at_all_fails_even_a_one_dataset_job() -> None:
    assert quorum_failure(0, 1, 1, ["a"], 5) is not None
    # a one-dataset secure job is not failed here: the ServerApp names its own reason
    assert quorum_failure(1, 1, 2, [], 5) is None


def test_each_silent_dataset_is_offline_with_the_wait() -> None:
    assert unanswered(SITES, {"a-heart", "b-heart"}, 15) == {
        "c-heart": "offline: its node did not connect within 15 s",
        "d-heart": "offline: its node did not connect within 15 s",
    }
    assert offline_reason(7) == "offline: its node did not connect within 7 s"
    assert unanswered(SITES, set(SITES), 7) == {}
