"""Who came to a job: the nodes that connected in time, and whether enough did to go on.

A member's node can be offline for a whole job (a machine down for maintenance, a firewall
change). Waiting for it forever would hang every other member's job; dropping it silently
would hide it from the job's record and the model's lineage. So the coordinator waits the
job's admission timeout, then goes on with the nodes that connected if there are at least
`minimum_nodes` of them, and records every dataset whose node never answered as refused,
with the reason `offline_reason` gives. Below the minimum the job fails, naming the members
whose nodes are missing. Pure functions: the ServerApp applies them, tests play them.
"""

from collections.abc import Collection

from kumiai.domain.training import TrainingSettings

OFFLINE = "offline"


def minimum_nodes(settings: TrainingSettings) -> int:
    """Fewest connected nodes a job can start with.

    Secure aggregation needs two: a sum of one masked update is that update.
    """
    return 2 if settings.secure_aggregation else 1


def offline_reason(waited: float) -> str:
    """Why a dataset whose node never connected took no part (recorded, and shown)."""
    return f"{OFFLINE}: its node did not connect within {waited:.0f} s"


def quorum_failure(
    connected: int, expected: int, minimum: int, missing: Collection[str], waited: float
) -> str | None:
    """The job's error when too few nodes connected, or None when it can go on."""
    if connected >= min(minimum, expected):
        return None
    names = ", ".join(sorted(set(missing))) or "unknown (no node map on this engine)"
    return (
        f"only {connected} of {expected} nodes connected within {waited:.0f} s, fewer than "
        f"the {minimum} this job needs; missing: {names}. Ask them to start their node "
        "(kumiai node serve), or give the job longer with --admission-timeout"
    )


def unanswered(
    expected: Collection[str], answered: Collection[str], waited: float
) -> dict[str, str]:
    """Each expected dataset that no node answered for, with its reason.

    Offline, whether its node never connected or the SuperLink still listed a node that had
    gone (it notices only when heartbeats stop): either way nothing came from it in time.
    """
    return {d: offline_reason(waited) for d in sorted(expected) if d not in answered}
