"""What `kumiai train` and `kumiai jobs --recover` say of ε a node still holds after a job."""

import pytest

from kumiai.interfaces.cli.context import warn_held
from kumiai.services.jobs import AWAITING_REASON, HeldReservation


def _said(capsys: pytest.CaptureFixture[str], held: HeldReservation) -> str:
    warn_held([held])
    return " ".join(capsys.readouterr().err.split())


def test_a_remote_node_releasing_later_is_a_note_not_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The normal end of every job across organisations: nothing for the operator to fix."""
    said = _said(capsys, HeldReservation("job-1", "kita-heart", "kita", AWAITING_REASON, True))
    assert said == (
        "note: kita's node is on its own machine: the ε it reserved for job job-1 on "
        "kita-heart is released by the node when it next checks in: kumiai node release."
    )


def test_a_failed_release_is_still_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    said = _said(capsys, HeldReservation("job-1", "kita-heart", "kita", "disk full"))
    assert said.startswith("warning: kita's node still holds the ε it reserved for job job-1")
