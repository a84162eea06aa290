"""The job the guard admitted for the message being handled, read from the node's own home.

Handlers and inner mods take every parameter from here, never from the message.
"""

from pathlib import Path

from flwr.app import Context

from kumiai.adapters.flower import protocol
from kumiai.domain.admission import Admitted
from kumiai.node.home import NodeHome


def admitted_job(context: Context) -> tuple[Path, str, Admitted]:
    """(home, dataset, record) of the job the guard admitted for this message."""
    state = context.state[protocol.STATE]
    home = Path(str(state[protocol.STATE_HOME]))
    record = NodeHome(home).admission(str(state[protocol.STATE_JOB]))
    assert record is not None  # the guard saved it before letting the message through
    return home, str(state[protocol.DATASET]), Admitted.from_doc(record)
