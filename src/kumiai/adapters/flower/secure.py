"""Secure aggregation with Flower's SecAgg+ (which runs only on Flower's legacy API).

The coordinator receives only masked vectors and their sum: no member's update. Rounds use
Flower's legacy strategies (from the plain path's table, adapters.flower.strategies) behind
`DefaultWorkflow` with a `SecAggPlusWorkflow` for fitting; evaluation stays on kumiai's
Message-API handlers, so per-site scores are recorded exactly as in a plain job.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.common import ndarrays_to_parameters
from flwr.server import LegacyContext, ServerConfig
from flwr.server import strategy as legacy
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.serverapp import Grid

from kumiai.adapters.flower import protocol
from kumiai.adapters.flower.strategies import make_legacy_strategy
from kumiai.domain.errors import JobFailed
from kumiai.domain.training import TrainingSettings


@dataclass(frozen=True)
class SecureAggregationSettings:
    """SecAgg+ parameters for `nodes` participants: tolerate one drop when there are three."""

    nodes: int
    max_weight: float
    timeout: float = 60.0

    @property
    def reconstruction_threshold(self) -> int:
        return self.nodes if self.nodes < 3 else self.nodes - 1


class HaltingAwareSecAggPlus(SecAggPlusWorkflow):  # type: ignore[misc]
    """Flower's SecAgg+, but a halted round fails the job with its reason instead of passing.

    Flower logs "Secure aggregation halted" and moves on with the old model; a consortium must
    know, so the stage that failed is named and the job stops (no model is released).
    """

    def __call__(self, grid: Grid, context: Context) -> None:
        from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState

        state = WorkflowState()
        stages = (
            ("setup", self.setup_stage),
            ("key sharing", self.share_keys_stage),
            ("collecting masked vectors", self.collect_masked_vectors_stage),
            ("unmasking", self.unmask_stage),
        )
        for name, stage in stages:
            if not stage(grid, context, state):
                self._halt(context, name)
            if name == "key sharing":
                only_those_who_shared_keys(state)

    def _halt(self, context: Context, name: str) -> None:
        current = context.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND]
        raise JobFailed(
            f"secure aggregation halted in round {current} at {name}: too few nodes "
            f"answered within the {self.timeout:.0f} s timeout to reach the "
            f"reconstruction threshold of {self.reconstruction_threshold}; the job "
            "stopped and no model was released"
        )


def only_those_who_shared_keys(state: Any) -> None:
    """After key sharing, the round's participants are the nodes that shared their keys.

    Flower's SecAgg+ keeps every node sampled at setup, so one that died before sharing its
    keys counted as a dropout whose masks must be removed at unmasking: the others were
    asked for shares of its secret they never received (a bare `KeyError` at every node,
    and the job failed although enough nodes remained). Such a node added no mask to
    anyone's vector (a node masks only with those whose shares it received), so it is
    simply no longer a participant; nor a neighbour, whose pairwise mask would otherwise be
    "removed" from a sum it was never added to.
    """
    shared = set(state.active_node_ids)
    state.sampled_node_ids = shared
    state.nid_to_neighbours = {
        nid: set(neighbours) & shared
        for nid, neighbours in state.nid_to_neighbours.items()
        if nid in shared
    }


def _legacy_strategy(
    settings: TrainingSettings,
    initial: list[Any],
    minimum: int,
    fit_config: Callable[[int], dict[str, Any]],
) -> legacy.Strategy:
    common: dict[str, Any] = {
        "fraction_fit": 1.0,
        "fraction_evaluate": 0.0,
        "min_fit_clients": minimum,
        "min_evaluate_clients": 0,
        "min_available_clients": minimum,
        "on_fit_config_fn": fit_config,
        "initial_parameters": ndarrays_to_parameters(initial),
    }
    return make_legacy_strategy(settings, **common)


def run_secure_rounds(
    grid: Grid,
    context: Context,
    settings: TrainingSettings,
    secure: SecureAggregationSettings,
    initial: list[Any],
    config: ConfigRecord,
    round_timeout: float,
    wrap: Callable[[legacy.Strategy], legacy.Strategy] | None = None,
) -> list[Any]:
    """All rounds under SecAgg+; returns the final parameters.

    `wrap` wraps the strategy (client-level DP: Flower's noise-adding wrapper).
    """

    def fit_config(server_round: int) -> dict[str, Any]:
        return {**dict(config), protocol.ROUND: server_round}

    def evaluate(grid: Grid, legacy_context: Context) -> None:
        current = legacy_context.state.config_records[MAIN_CONFIGS_RECORD][Key.CURRENT_ROUND]
        arrays = legacy_context.state.array_records[MAIN_PARAMS_RECORD]
        round_config = ConfigRecord({**dict(config), protocol.ROUND: int(current)})
        messages = [
            Message(
                RecordDict(
                    {"arrays": ArrayRecord(arrays.to_numpy_ndarrays()), "config": round_config}
                ),
                dst_node_id=node,
                message_type=MessageType.EVALUATE,
            )
            for node in grid.get_node_ids()
        ]
        grid.send_and_receive(messages, timeout=round_timeout)

    # Flower's legacy client manager waits (for a day) until `minimum` nodes are connected;
    # the observing grid fails the job as soon as fewer remain, so it never waits in vain.
    strategy = _legacy_strategy(settings, initial, secure.reconstruction_threshold, fit_config)
    if wrap is not None:
        strategy = wrap(strategy)
    legacy_context = LegacyContext(
        context=context,
        config=ServerConfig(num_rounds=settings.rounds, round_timeout=round_timeout),
        strategy=strategy,
    )
    workflow = DefaultWorkflow(
        fit_workflow=HaltingAwareSecAggPlus(
            num_shares=1.0,  # every participant holds a share of every other's secrets
            reconstruction_threshold=secure.reconstruction_threshold,
            max_weight=secure.max_weight,
            timeout=secure.timeout,
        ),
        evaluate_workflow=evaluate,
    )
    workflow(grid, legacy_context)
    return legacy_context.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays()
