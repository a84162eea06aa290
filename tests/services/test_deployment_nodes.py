"""`train --superlink` picks its nodes by the ids the coordinator registered, not by name."""

from pathlib import Path

from kumiai.adapters.flower.superlink import NODES_FILE, write_registered
from kumiai.services.consortium import init_consortium
from kumiai.services.deployment import SUPERLINK_FOLDER, registered_ids
from kumiai.services.members import add_member
from kumiai.services.training import nodes_of


def test_the_jobs_nodes_are_the_ids_the_coordinator_registered(home: Path) -> None:
    consortium = init_consortium(home)
    for member in ("st-mary", "lab"):
        add_member(consortium, member, "hospital")
    nodes = ["st-mary", "lab"]
    assert nodes_of(nodes, consortium) == []  # no SuperLink started: no node at all
    folder = home / SUPERLINK_FOLDER
    folder.mkdir()
    write_registered(folder / NODES_FILE, {"st-mary": 11, "lab": 22, "other": 33})
    assert registered_ids(consortium) == {"lab": 22, "other": 33, "st-mary": 11}
    assert nodes_of(nodes, consortium) == [22, 11]  # only the job's members, by our ids
    assert nodes_of(nodes[:1], consortium) == [11]
