"""Whether a member's node home is on the coordinator's machine: a member record, not a folder."""

from pathlib import Path

from kumiai.services.consortium import init_consortium
from kumiai.services.members import add_member


def test_a_node_home_is_here_only_with_its_member_record(tmp_path: Path) -> None:
    consortium = init_consortium(tmp_path / "c")
    add_member(consortium, "cleveland-clinic", "hospital")
    assert consortium.node_is_here("cleveland-clinic")
    # A member on its own machine: a release tried through a node home here left a bare
    # folder with a lock file. The coordinator must not take it for the node and sign as it.
    stray = consortium.member_home("zurich-basel") / "privacy" / "zurich-basel-heart.lock"
    stray.parent.mkdir(parents=True)
    stray.touch()
    assert not consortium.node_is_here("zurich-basel")
