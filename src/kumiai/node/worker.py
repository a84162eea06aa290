"""What a member's node does for a job, on its own rows, inside its own home.

The Flower ClientApp calls these after the guard mod has approved the message. Nothing
here returns a row: only summaries, model parameters and aggregate scores leave.
"""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kumiai.adapters import tables
from kumiai.adapters.models.dpsgd import dp_sgd
from kumiai.adapters.models.families import FAMILIES, model_for
from kumiai.adapters.models.interface import Model, proximal_fit
from kumiai.domain.disclosure import (
    ALLOWED,
    DP,
    DP_LOSS_BOUND,
    FORBIDDEN,
    PublicDomain,
    clip_to_domain,
    domain_gaps,
    noisy_score,
    noisy_summary,
)
from kumiai.domain.errors import DataError, InvalidInput, StateError
from kumiai.domain.job import JobDocument, operation_refusal
from kumiai.domain.metrics import SiteScore, score_site
from kumiai.domain.preprocessing import Columns, FeaturePlan, SiteSummary, summarise
from kumiai.domain.privacy import PrivacyPlan, spent_after
from kumiai.domain.schema import Schema, TargetSpec
from kumiai.domain.split import SiteSplit, site_seed
from kumiai.domain.training import TrainingSettings, plan_privacy_for
from kumiai.node.disclosure import laplace
from kumiai.node.home import LocalDataset, NodeHome
from kumiai.node.spendlog import SpendLog


def load_rows(record: LocalDataset) -> tuple[Columns, NDArray[Any]]:
    """Read and type the dataset's file; refuse if it changed since the steward registered it."""
    if not record.file.is_file():
        raise DataError(
            f"dataset {record.name!r}: its file {record.file} is gone; restore it, or "
            f"register the new file with `kumiai dataset update {record.name} FILE`"
        )
    if tables.content_hash(record.file) != record.sha256:
        raise DataError(
            f"dataset {record.name!r}: {record.file} changed since registration (content hash "
            f"differs); the steward registers the new version with `kumiai dataset update "
            f"{record.name} {record.file}`"
        )
    return parse_file(record.file, record.target, record.schema, record.missing)


def parse_file(
    path: Path, target: TargetSpec, schema: Schema, missing: dict[str, tuple[str, ...]]
) -> tuple[Columns, NDArray[Any]]:
    """Typed feature columns and target labels; rows without a target are left out."""
    frame = tables.read_raw(path)
    labels = tables.target_labels(frame, path=path, target=target)
    columns = tables.parse_columns(frame, path=path, schema=schema, missing=missing)
    keep = np.array([label is not None for label in labels], dtype=bool)
    return {c: v[keep] for c, v in columns.items()}, labels[keep]


def split_rows(
    dataset: str,
    schema: Schema,
    columns: Columns,
    labels: NDArray[Any],
    seed: int,
    test_fraction: float,
) -> SiteSplit:
    """Seeded, stratified train/test split (plain shuffle if a class is too rare to stratify)."""
    from sklearn.model_selection import train_test_split  # lazy: keeps `kumiai` start fast

    index = np.arange(len(labels))
    counts = np.unique(labels.astype(str), return_counts=True)[1]
    stratify = labels.astype(str) if counts.min() >= 2 else None
    train_idx, test_idx = train_test_split(
        index, test_size=test_fraction, random_state=site_seed(seed, dataset), stratify=stratify
    )
    return SiteSplit(
        dataset=dataset,
        schema=schema,
        train={c: v[train_idx] for c, v in columns.items()},
        train_labels=labels[train_idx],
        test={c: v[test_idx] for c, v in columns.items()},
        test_labels=labels[test_idx],
    )


@lru_cache(maxsize=16)
def _cached_split(
    home: str, dataset: str, seed: int, test_fraction: float, _stamp: tuple[int, int]
) -> SiteSplit:
    """`_stamp` (mtime, size) keys the cache so an edited file is re-read and re-hashed."""
    record = NodeHome(Path(home)).dataset(dataset)
    columns, labels = load_rows(record)
    return split_rows(dataset, record.schema, columns, labels, seed, test_fraction)


def local_sgd(
    model: Model,
    X: NDArray[np.float64],
    y: NDArray[np.int64],
    settings: TrainingSettings,
    dataset: str,
    server_round: int,
) -> None:
    """One round of a site's non-private local training, seeded by site and round.

    Shared with coalition retraining (kumiai.services.contribution), so a coalition's
    model is trained exactly as the federation trains it.
    """
    rng = np.random.default_rng([site_seed(settings.seed, dataset), server_round])
    model.sgd(
        X,
        y,
        epochs=settings.local_epochs,
        lr=settings.learning_rate,
        batch_size=settings.batch_size,
        rng=rng,
        prox_mu=settings.local_proximal_mu,
        anchor=model.arrays,
    )


def private_sgd(
    model: Model,
    X: NDArray[np.float64],
    y: NDArray[np.int64],
    settings: TrainingSettings,
    plan: dict[str, Any],
) -> None:
    """One round of a site's DP-SGD at its reserved σ, q, steps and clipping (`plan`).

    Shared with the retraining of a DP model's coalitions (kumiai.services.contribution).
    """
    # Fresh OS entropy, never the job's seed: whoever knew the seed could subtract the noise.
    rng = np.random.default_rng(secrets.randbits(128))
    dp_sgd(
        model,
        X,
        y,
        steps=int(plan["steps_per_round"]),
        sample_rate=float(plan["sample_rate"]),
        noise_multiplier=float(plan["noise_multiplier"]),
        clipping_norm=float(plan["clipping_norm"]),
        learning_rate=settings.learning_rate,
        rng=rng,
        prox_mu=settings.local_proximal_mu,
        anchor=model.arrays,
    )


class NodeWorker:
    """A node's operations for one job. Splits are cached per process across rounds."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def split(self, dataset: str, settings: TrainingSettings) -> SiteSplit:
        record = NodeHome(self.home).dataset(dataset)
        try:
            stat = record.file.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)  # load_rows reports the missing file
        return _cached_split(str(self.home), dataset, settings.seed, settings.test_fraction, stamp)

    def cohort(self, dataset: str, settings: TrainingSettings) -> tuple[int, int]:
        """(training rows, test rows): public, as the catalogue's row count is."""
        part = self.split(dataset, settings)
        return len(part.train_labels), len(part.test_labels)

    def summary(
        self, dataset: str, settings: TrainingSettings, statistics: str = ALLOWED, job: str = ""
    ) -> SiteSummary | None:
        """The summary this site's agreement lets leave: exact, noised (and paid), or None."""
        if statistics == FORBIDDEN:
            return None
        part = self.split(dataset, settings)
        if statistics == ALLOWED:
            return summarise(part.train, part.schema, part.train_labels)
        domain = self._domain(dataset, settings, part.schema)
        columns, labels = clip_to_domain(part.train, part.train_labels, part.schema, domain)
        log, held = self._held(dataset, job)
        share = float(held.details["summary_epsilon"])
        log.spend(job=job, round_=0, epsilon=held.spent + share)  # paid before it leaves
        return noisy_summary(summarise(columns, part.schema, labels), domain, share, laplace)

    def _domain(self, dataset: str, settings: TrainingSettings, schema: Schema) -> PublicDomain:
        domain = settings.domain or PublicDomain()
        gaps = domain_gaps(schema, domain)
        if gaps:
            raise InvalidInput(
                f"dataset {dataset!r} releases statistics only under differential privacy, "
                "which needs public bounds the job document does not declare: "
                + "; ".join(gaps)
                + ". Declare them in a file given with --public-domain"
            )
        return domain

    def privacy_plan(self, dataset: str, settings: TrainingSettings) -> tuple[PrivacyPlan, int]:
        """This site's share of a private job: (plan over all rounds, steps per round).

        Raises InvalidInput naming the parameter when ε, δ, σ or clipping are out of range.
        """
        rows = len(self.split(dataset, settings).train_labels)
        return plan_privacy_for(settings, rows)

    def admit(
        self,
        dataset: str,
        settings: TrainingSettings,
        job: JobDocument,
        agreement_cap: float | None,
        attested: str | None = None,
        statistics: str = ALLOWED,
    ) -> tuple[bool, str, dict[str, float]]:
        """Before round one: plan the job's whole spend and reserve it, or refuse.

        The spend is the training's ε (a private job) plus, where the agreement releases
        statistics only under DP, the statistics ε. `attested`: the latest attestation of
        this dataset's spend log the coordinator holds.
        """
        if settings.model not in FAMILIES:
            return (
                False,
                f"this node does not know the model family {settings.model!r} the job names; "
                f"it trains: {', '.join(sorted(FAMILIES))}",
                {},
            )
        numbers: dict[str, float] = {"epsilon": 0.0, "delta": 0.0, "noise_multiplier": 0.0}
        details: dict[str, Any] = {"rounds": settings.rounds}
        if settings.private:
            try:
                plan, steps_per_round = self.privacy_plan(dataset, settings)
            except InvalidInput as exc:
                return False, str(exc), {}
            details = {**plan.as_dict(), "steps_per_round": steps_per_round, **details}
            numbers = {
                "epsilon": plan.epsilon,
                "delta": plan.delta,
                "noise_multiplier": plan.noise_multiplier,
                "sample_rate": plan.sample_rate,
                "steps": float(plan.steps),
            }
            if plan.member_epsilon is not None:
                numbers["member_epsilon"] = plan.member_epsilon
        if statistics == DP:
            try:
                self._domain(dataset, settings, self.split(dataset, settings).schema)
            except InvalidInput as exc:
                return False, str(exc), {}
            share = settings.statistics_epsilon / 2  # half the summary, half the final scores
            details["summary_epsilon"] = share
            details["evaluation_epsilon"] = (
                share if operation_refusal(job.kind, "evaluate") is None else 0.0
            )
            numbers["statistics_epsilon"] = share + details["evaluation_epsilon"]
            numbers["epsilon"] += numbers["statistics_epsilon"]
        decision = SpendLog(NodeHome(self.home), dataset).reserve(
            job=job.job_id,
            project=job.project,
            planned=numbers["epsilon"],
            delta=numbers["delta"],
            agreement_cap=agreement_cap,
            details=details,
            attested=attested,
        )
        return decision.allowed, decision.reason, numbers

    def train(
        self,
        dataset: str,
        settings: TrainingSettings,
        plan: FeaturePlan,
        arrays: list[NDArray[np.float64]],
        server_round: int,
        job: str = "",
    ) -> tuple[list[NDArray[np.float64]], int, float, float | None]:
        """Local training from the global model.

        Returns new parameters, examples, train loss and, for a private job, the job's
        cumulative ε on this dataset, recorded in the spend log before the update leaves.
        """
        part = self.split(dataset, settings)
        X = plan.transform(part.train)
        y = plan.encode_labels(part.train_labels, f"dataset {dataset!r}")
        model = model_for(settings, X.shape[1], len(plan.classes))
        model.arrays = arrays
        if settings.private and settings.dp_level == "record":
            epsilon = self._train_privately(dataset, settings, model, X, y, server_round, job)
            return model.arrays, len(y), model.loss(X, y), epsilon
        local_sgd(model, X, y, settings, dataset, server_round)
        if settings.private:  # client level: the update is clipped on its way out (a mod)
            log, held, trained = self._claim_round(dataset, job, server_round)
            spent = _paid(held.details) + spent_after(held.details, trained)
            log.spend(job=job, round_=trained, epsilon=spent)
            return model.arrays, len(y), model.loss(X, y), spent
        return model.arrays, len(y), model.loss(X, y), self.spent(dataset, job)

    def spent(self, dataset: str, job: str) -> float | None:
        """What a job has spent on this dataset so far (None: it holds no reservation)."""
        held = SpendLog(NodeHome(self.home), dataset).view().jobs.get(job)
        return None if held is None else held.spent

    def _held(self, dataset: str, job: str) -> tuple[SpendLog, Any]:
        log = SpendLog(NodeHome(self.home), dataset)
        held = log.view().jobs.get(job)
        if held is None or held.released:
            raise StateError(
                f"job {job} holds no privacy reservation on {dataset!r}; it must "
                "pass the node's budget check first"
            )
        return log, held

    def _claim_round(self, dataset: str, job: str, server_round: int) -> tuple[SpendLog, Any, int]:
        """The job's reservation and the number of the round about to be paid for.

        The node counts the rounds it has trained itself: a round sent twice is paid for
        twice, and no round beyond the reservation is trained (the coordinator's round
        number is not trusted).
        """
        log = SpendLog(NodeHome(self.home), dataset)
        held = log.view().jobs.get(job)
        if held is None or held.released or not held.details:
            raise StateError(
                f"job {job} holds no privacy reservation on {dataset!r}; it must "
                "pass the node's budget check first"
            )
        trained = held.rounds + 1
        if trained > held.planned_rounds:
            raise StateError(
                f"job {job} reserved {held.planned_rounds} rounds on {dataset!r} and has trained "
                f"them all; round {server_round} is refused"
            )
        return log, held, trained

    def _train_privately(
        self,
        dataset: str,
        settings: TrainingSettings,
        model: Model,
        X: NDArray[np.float64],
        y: NDArray[np.int64],
        server_round: int,
        job: str,
    ) -> float:
        log, held, trained = self._claim_round(dataset, job, server_round)
        d = held.details
        private_sgd(model, X, y, settings, d)
        spent = _paid(d) + spent_after(d, trained)
        log.spend(job=job, round_=trained, epsilon=spent)
        return spent

    def evaluate(
        self,
        dataset: str,
        settings: TrainingSettings,
        plan: FeaturePlan,
        arrays: list[NDArray[np.float64]],
        statistics: str = ALLOWED,
        job: str = "",
        final: bool = False,
    ) -> SiteScore | None:
        """The scores this site's agreement lets leave, or None (withheld).

        Under `dp` they leave once, for the `final` model, noised and paid for.
        """
        if statistics == FORBIDDEN or (statistics == DP and not final):
            return None
        part = self.split(dataset, settings)
        model = model_for(settings, len(plan.feature_names), len(plan.classes))
        model.arrays = arrays
        X = plan.transform(part.test)
        labels = plan.encode_labels(part.test_labels, f"dataset {dataset!r}")
        if statistics == ALLOWED:
            return score_site(model.predict_proba(X), labels)
        score = score_site(model.predict_proba(X), labels, loss_bound=DP_LOSS_BOUND)
        log, held = self._held(dataset, job)
        share = float(held.details.get("evaluation_epsilon", 0.0))
        if share <= 0:
            return None
        log.spend(job=job, round_=held.rounds, epsilon=held.spent + share)  # paid first
        return noisy_score(score, share, laplace)

    def personalise(
        self,
        dataset: str,
        settings: TrainingSettings,
        plan: FeaturePlan,
        arrays: list[NDArray[np.float64]],
        epochs: int,
        private: dict[str, Any] | None = None,
        proximal_mu: float | None = None,
    ) -> tuple[list[NDArray[np.float64]], SiteScore]:
        """Fine-tune a released model on this site's training rows; score its test rows.

        Returns the personalised parameters (for the node to keep) and the aggregates of its
        test scores (what may leave). The rule was checked, and a private model's charge
        paid, by the caller (kumiai.node.personalising). Without DP: the family's SGD,
        seeded by site, so a benchmark is reproducible. `private`: DP-SGD at the released
        job's σ, q and clipping norm for the charged steps (`steps_per_round`), fresh noise.
        `proximal_mu`: instead, L-BFGS to the optimum of the site's loss plus a pull back
        to the released model (`proximal_fit`; without DP only).
        """
        part = self.split(dataset, settings)
        X = plan.transform(part.train)
        y = plan.encode_labels(part.train_labels, f"dataset {dataset!r}")
        model = model_for(settings, X.shape[1], len(plan.classes))
        model.arrays = arrays
        if private is not None:
            private_sgd(model, X, y, settings, private)
        elif proximal_mu is not None:
            proximal_fit(model, X, y, mu=proximal_mu)
        else:
            model.sgd(
                X,
                y,
                epochs=epochs,
                lr=settings.learning_rate,
                batch_size=settings.batch_size,
                rng=np.random.default_rng([site_seed(settings.seed, dataset), 0, epochs]),
            )
        labels = plan.encode_labels(part.test_labels, f"dataset {dataset!r}")
        return model.arrays, score_site(model.predict_proba(plan.transform(part.test)), labels)


def _paid(details: dict[str, Any]) -> float:
    """The statistics ε a private job's training spends are counted on top of (its summary)."""
    return float(details.get("summary_epsilon", 0.0))
