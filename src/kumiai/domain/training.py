"""Settings of a federated training job, validated before any node is contacted."""

import json
import math
from dataclasses import asdict, dataclass

from kumiai.domain.client_dp import CLIENT_STRATEGIES, plan_client_dp
from kumiai.domain.disclosure import PublicDomain
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import (
    PrivacyPlan,
    check_accountant,
    check_clipping,
    check_epsilon_cap,
    check_level,
    check_noise_multiplier,
    plan_dp_sgd,
)

STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedyogi")
NOT_TRAIN_OPTIONS = frozenset({"analysis", "secure_aggregation"})
"""Settings `kumiai train` does not set (a statistics job's queries; SecAgg+, which only the
agreements turn off): `POST /jobs` refuses them, as the CLI has no option for them."""
# Model families every node knows (kumiai.adapters.models.families builds them). A job
# document naming another family is refused by the node when it parses the document.
MODEL_FAMILIES = ("logistic", "mlp")
MAX_HIDDEN_LAYERS, MAX_HIDDEN_UNITS = 3, 1024


@dataclass(frozen=True)
class TrainingSettings:
    """How each node optimises locally, and how the coordinator aggregates."""

    strategy: str = "fedavg"
    rounds: int = 20
    local_epochs: int = 1
    learning_rate: float = 0.1
    batch_size: int = 32
    l2: float = 1e-3
    proximal_mu: float = 0.0  # FedProx only
    server_learning_rate: float = 0.1  # FedAdam / FedYogi only
    seed: int = 0
    test_fraction: float = 0.25
    # Differential privacy. Off when both epsilon and noise_multiplier are None.
    epsilon: float | None = None  # target ε per dataset (per row) for the whole job
    noise_multiplier: float | None = None  # or a fixed σ whose ε each node reports
    clipping_norm: float = 1.0  # per example (record level) or per update (client level)
    # record: DP-SGD at every node. client: DP-FedAvg, each node clips its update and the
    # coordinator adds the noise (kumiai.domain.client_dp).
    dp_level: str = "record"
    delta: float | None = None  # default per node: 1/(10·n)
    accountant: str = "pld"
    # SecAgg+: the coordinator sees only the sum of the nodes' updates. Off only if every
    # agreement allows plain aggregation.
    secure_aggregation: bool = True
    # At sites whose agreement releases statistics only under DP: the ε their summary and
    # final scores spend together (half each), and the public bounds the noise is calibrated
    # to (kumiai.domain.disclosure.PublicDomain as JSON; empty: none declared).
    statistics_epsilon: float = 1.0
    public_domain: str = ""
    # The model family and its shape: `logistic` (the default) or `mlp`, a small ReLU network
    # of `hidden_layers` layers of `hidden_units` each (unused by `logistic`).
    model: str = "logistic"
    hidden_layers: int = 1
    hidden_units: int = 32
    # Weight of a positive example's loss in a two-class task (rare failures count more);
    # 1 is unweighted. DP-SGD clips each weighted example as any other, at no extra ε.
    positive_weight: float = 1.0
    # A statistics job's queries (kumiai.domain.analysis.Analysis as JSON; empty: none). The
    # node computes each query's ε from these and `epsilon`, and draws the noise itself.
    analysis: str = ""
    # DP-SGD epochs of fine-tuning at each site (kumiai.domain.personalisation) that a
    # private job's plan reserves: σ is calibrated for the rounds' steps and these together,
    # so personalising within them costs no ε beyond the job's target. 0: none reserved.
    personalisation_epochs: int = 0

    @property
    def private(self) -> bool:
        return self.epsilon is not None or self.noise_multiplier is not None

    @property
    def domain(self) -> PublicDomain | None:
        return PublicDomain.from_json(self.public_domain) if self.public_domain else None

    @property
    def local_proximal_mu(self) -> float:
        """The FedProx μ every node trains with; FedProx without one uses Flower's 0.1."""
        if self.strategy == "fedprox":
            return self.proximal_mu or 0.1
        return self.proximal_mu

    def __post_init__(self) -> None:
        # NaN slips through every comparison below and infinity through most; either would
        # reach the signed job document, which JSON cannot hold. Name the option first.
        for field_name, label, option in (
            ("learning_rate", "learning rate", "--lr"),
            ("l2", "l2", "--l2"),
            ("proximal_mu", "proximal mu", "--mu"),
            ("server_learning_rate", "server learning rate", "--server-lr"),
            ("test_fraction", "test fraction", "--test-fraction"),
            ("epsilon", "epsilon", "--epsilon"),
            ("noise_multiplier", "noise multiplier", "--noise-multiplier"),
            ("clipping_norm", "clipping norm", "--clipping"),
            ("delta", "delta", "--delta"),
            ("statistics_epsilon", "statistics epsilon", "--statistics-epsilon"),
            ("positive_weight", "positive weight", "--positive-weight"),
        ):
            value = getattr(self, field_name)
            if value is None and field_name in ("epsilon", "noise_multiplier", "delta"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{label} ({option}) must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidInput(f"{label} ({option}) must be a finite number, got {value}")
        checks = [
            (
                self.strategy in STRATEGIES,
                f"strategy {self.strategy!r} is not known; use one of: " + ", ".join(STRATEGIES),
            ),
            (
                self.model in MODEL_FAMILIES,
                f"model family {self.model!r} is not known; use one of: "
                + ", ".join(MODEL_FAMILIES),
            ),
            (
                isinstance(self.hidden_layers, int)
                and 1 <= self.hidden_layers <= MAX_HIDDEN_LAYERS,
                f"hidden layers (--hidden-layers) must be 1 to {MAX_HIDDEN_LAYERS} "
                f"(got {self.hidden_layers!r})",
            ),
            (
                isinstance(self.hidden_units, int) and 1 <= self.hidden_units <= MAX_HIDDEN_UNITS,
                f"hidden units (--hidden-units) must be 1 to {MAX_HIDDEN_UNITS} "
                f"(got {self.hidden_units!r})",
            ),
            (
                self.positive_weight > 0,
                f"positive weight (--positive-weight) must be > 0 (got {self.positive_weight})",
            ),
            (self.rounds >= 1, f"rounds must be at least 1 (got {self.rounds})"),
            (
                isinstance(self.personalisation_epochs, int)
                and not isinstance(self.personalisation_epochs, bool)
                and 0 <= self.personalisation_epochs <= 20,
                "personalisation epochs (--personalisation-epochs) must be 0 to 20 "
                f"(got {self.personalisation_epochs!r})",
            ),
            (self.local_epochs >= 1, f"local epochs must be at least 1 (got {self.local_epochs})"),
            (self.learning_rate > 0, f"learning rate must be > 0 (got {self.learning_rate})"),
            (self.batch_size >= 1, f"batch size must be at least 1 (got {self.batch_size})"),
            (self.l2 >= 0, f"l2 must be >= 0 (got {self.l2})"),
            (self.proximal_mu >= 0, f"proximal mu must be >= 0 (got {self.proximal_mu})"),
            (
                self.server_learning_rate > 0,
                f"server learning rate must be > 0 (got {self.server_learning_rate})",
            ),
            (
                0 < self.test_fraction < 1,
                f"test fraction must be between 0 and 1, exclusive (got {self.test_fraction})",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInput(message)
        if self.epsilon is not None:
            try:
                check_epsilon_cap(self.epsilon)
            except InvalidInput as exc:
                raise InvalidInput(str(exc).replace("epsilon_cap", "epsilon (--epsilon)")) from None
        if self.noise_multiplier is not None:
            check_noise_multiplier(self.noise_multiplier)
        check_clipping(self.clipping_norm)
        check_level(self.dp_level)
        if self.dp_level == "client" and not self.private:
            raise InvalidInput(
                "client-level DP needs --epsilon (a target) or --noise-multiplier; "
                "without either the job has no differential privacy"
            )
        if self.dp_level == "client" and self.strategy not in CLIENT_STRATEGIES:
            raise InvalidInput(
                f"client-level DP works with strategy {' or '.join(CLIENT_STRATEGIES)}, not "
                f"{self.strategy!r}: a server optimiser steps on the mean before the noise "
                "is added, so the noise would no longer bound what is released"
            )
        check_accountant(self.accountant)
        if self.statistics_epsilon <= 0:
            raise InvalidInput(
                f"statistics epsilon (--statistics-epsilon) must be > 0 "
                f"(got {self.statistics_epsilon})"
            )
        if self.public_domain:
            PublicDomain.from_json(self.public_domain, "the public domain (--public-domain)")
        if self.delta is not None and not 0 < self.delta < 1:
            raise InvalidInput(
                f"delta must be between 0 and 1, exclusive (got {self.delta}); "
                "leave it out to use 1/(10·n) at each node"
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainingSettings":
        return cls(**json.loads(text))


def plan_privacy_for(settings: TrainingSettings, rows: int) -> tuple[PrivacyPlan, int]:
    """A site's share of a private job from its training rows: (plan, steps per round).

    One function for the node's decision and the coordinator's estimate, so they agree.
    """
    if settings.dp_level == "client":  # one noised release per round, at the coordinator
        plan = plan_client_dp(
            rows=rows,
            clipping_norm=settings.clipping_norm,
            rounds=settings.rounds,
            epsilon_cap=settings.epsilon,
            noise_multiplier=settings.noise_multiplier,
            delta=settings.delta,
            accountant=settings.accountant,
        )
        return plan, 1
    batch = min(settings.batch_size, rows)
    steps_per_round = settings.local_epochs * max(1, round(rows / batch))
    # The personalisation slice: epochs of 1/q lots each, as kumiai.domain.personalisation
    # counts them when the node charges the fine-tuning.
    slice_steps = settings.personalisation_epochs * max(1, round(rows / batch))
    plan = plan_dp_sgd(
        rows=rows,
        clipping_norm=settings.clipping_norm,
        batch_size=batch,
        steps=settings.rounds * steps_per_round + slice_steps,
        epsilon_cap=settings.epsilon,
        noise_multiplier=settings.noise_multiplier,
        delta=settings.delta,
        accountant=settings.accountant,
    )
    return plan, steps_per_round
