"""The personal agent: federated collaborative filtering across users' devices.

The coordinator holds the item side of the model and nothing about any user. Each round it
samples devices (`domain.cross_device`), hands each sampled device the item side through
the port, and adds up the clipped updates that come back as they come (a running sum: no
per-user state, so memory stays flat as the population grows). Under user-level DP it adds
Gaussian noise to the sum (`domain.user_dp`). Each device checks its own consent, solves
its user's profile from its own ratings, keeps the profile and records its ε before its
update leaves (`node.device`).

A run lives in one folder: `devices/NNNNNNN/` per user (the device homes, by index, so
the coordinator needs only the count) and `model.npz`, the item side once trained.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from kumiai.adapters.files import write_atomic, write_json_atomic
from kumiai.adapters.models.fcf import FCF, FCFSettings
from kumiai.domain.clock import utc_now
from kumiai.domain.cross_device import CrossDeviceSettings, answering, sample_users
from kumiai.domain.errors import InvalidInput, NotFound
from kumiai.domain.ranking import add_sums, from_sums
from kumiai.domain.ratings import RatingSplit, RatingTable, rows_by_user
from kumiai.domain.user_dp import UserDpPlan, noisy_mean, plan_user_dp
from kumiai.node.port import device, device_client_app, device_round, round_config

Log = Callable[[str], None]
DEVICES = "devices"
MODEL = "model.npz"
RUN = "run.json"


def device_root(run: Path, index: int) -> Path:
    return run / DEVICES / f"{index:07d}"


def population(run: Path) -> int:
    """How many devices the run has (from its record, not from any per-user list)."""
    path = run / RUN
    if not path.is_file():
        raise NotFound(f"{run} holds no agent run; start one with `kumiai agent train --run {run}`")
    return int(json.loads(path.read_text())["devices"])


def fcf_settings(settings: CrossDeviceSettings) -> FCFSettings:
    return FCFSettings(
        factors=settings.factors,
        l2_user=settings.l2_user,
        l2_item=settings.l2_item,
        local_lr=settings.local_lr,
        local_steps=settings.local_steps,
    )


@dataclass(frozen=True)
class Enrolment:
    devices: int
    skipped_users: int


def enrol_devices(
    run: Path,
    table: RatingTable,
    split: RatingSplit,
    *,
    project: str,
    purpose: str,
    epsilon_cap: float | None,
    max_rounds: int,
    now: datetime | None = None,
) -> Enrolment:
    """One device per user with enough ratings: its key, its ratings and its signed consent.

    On a phone the user would do this in the app; here it lays out the simulation's devices.
    """
    if (run / RUN).exists():
        raise InvalidInput(f"{run} already holds an agent run; choose another --run folder")
    now = now or utc_now()
    train_rows = rows_by_user(table.user[split.train], table.n_users)
    test_rows = rows_by_user(table.user[split.test], table.n_users)
    index, folders = 0, {}
    for user in range(table.n_users):
        train, test = split.train[train_rows[user]], split.test[test_rows[user]]
        if len(train) == 0:
            continue
        phone = device(device_root(run, index))
        phone.join(table.user_ids[user])
        phone.store_ratings(
            (table.item[train], table.rating[train]),
            (table.item[test], table.rating[test]),
            table.time[np.concatenate([train, test])],
        )
        phone.consent(
            project=project,
            purpose=purpose,
            epsilon_cap=epsilon_cap,
            max_rounds=max_rounds,
            now=now,
        )
        folders[table.user_ids[user]] = index
        index += 1
    # Which folder is whose phone: the simulation's own lay-out, read by `agent suggest`
    # (on a phone, the app knows its user); the coordinator never reads it.
    write_json_atomic(run / DEVICES / "index.json", folders)
    write_json_atomic(
        run / RUN,
        {
            "devices": index,
            "items": table.n_items,
            "item_ids": list(table.item_ids),
            "item_genres": [list(g) for g in table.item_genres],
            "item_titles": list(table.item_titles),
            "project": project,
            "source": table.source,
        },
    )
    return Enrolment(index, split.skipped_users)


def catalogue(run: Path) -> dict[str, Any]:
    """The run's public item catalogue (ids, genres, titles) and its project."""
    population(run)
    return dict(json.loads((run / RUN).read_text()))


@dataclass
class AgentResult:
    rounds: int
    users_per_round: float
    seconds_per_round: float
    refusals: int
    dropped: int
    metrics: dict[str, float]
    plan: UserDpPlan | None = None
    fraction: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["plan"] = self.plan.as_dict() if self.plan else None
        return doc


ENGINES = ("local", "simulation")


class LocalDevices:
    """The run's devices called in-process through the port, one after another."""

    def __init__(self, run: Path, users: int) -> None:
        self.run, self.users = run, users

    def __len__(self) -> int:
        return self.users

    def ask(self, positions: Any, item_arrays: list[Any], config: dict[str, Any]) -> Any:
        for index in positions:
            yield device_round(device_root(self.run, int(index)), item_arrays, config)


class _Rounds:
    """The coordinator's loop over rounds: sample, ask, add up, noise, step. It keeps the
    item side and the round's running sum, nothing per user."""

    def __init__(
        self, settings: CrossDeviceSettings, n_items: int, project: str, job: str, log: Log | None
    ) -> None:
        self.settings, self.project, self.job, self.log = settings, project, job, log
        self.model = FCF(n_items, fcf_settings(settings), settings.seed)
        self.plan: UserDpPlan | None = None
        self.answered = self.refusals = self.dropped = 0
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0

    def __call__(self, devices: Any) -> None:
        settings, users = self.settings, len(devices)
        if settings.epsilon is not None:
            self.plan = plan_user_dp(
                epsilon=settings.epsilon,
                users=users,
                sample_rate=settings.fraction,
                rounds=settings.rounds,
                clipping_norm=settings.clipping_norm,
            )
        plan, model = self.plan, self.model
        rng = np.random.default_rng(settings.seed)
        started = time.perf_counter()
        for round_ in range(1, settings.rounds + 1):
            asked = sample_users(rng, users, settings.fraction, settings.sampling)
            answer = answering(rng, asked, settings.dropout)
            self.dropped += len(asked) - len(answer)
            arrays = model.arrays
            total = [np.zeros_like(a) for a in arrays]
            privacy = None
            if plan is not None:
                privacy = {
                    "planned": plan.epsilon,
                    "delta": plan.delta,
                    "spent": plan.spent_after(round_),
                }
            config = round_config(
                job=self.job,
                project=self.project,
                round_=round_,
                settings=model.settings,
                clipping_norm=plan.clipping_norm if plan else None,
                privacy=privacy,
            )
            took_part = 0
            for reply in devices.ask(answer, arrays, config):
                if reply.update is None:
                    self.refusals += 1
                    continue
                took_part += 1
                for sum_, part in zip(total, reply.update, strict=True):
                    sum_ += part
            self.answered += took_part
            if plan is not None:
                mean = noisy_mean(total, plan, users, rng)
            else:
                mean = [a / (settings.fraction * users) for a in total]
            penalty = model.item_penalty()
            model.arrays = [
                a + settings.server_lr * (m - settings.local_lr * p / users)
                for a, m, p in zip(arrays, mean, penalty, strict=True)
            ]
            self.history.append({"round": round_, "asked": len(asked), "took_part": took_part})
            if self.log and (round_ % max(1, settings.rounds // 10) == 0):
                self.log(f"round {round_}/{settings.rounds}: {took_part} of {len(asked)} devices")
        self.seconds = (time.perf_counter() - started) / settings.rounds


def train_agent(
    run: Path,
    settings: CrossDeviceSettings,
    *,
    job: str = "agent-1",
    log: Log | None = None,
    evaluate: bool = True,
    engine: str = "local",
) -> AgentResult:
    """Federated collaborative filtering over the run's devices; the item side is saved.

    `engine`: "local" calls each sampled device in-process; "simulation" runs every device
    as a virtual SuperNode on Flower's simulation engine (Ray), the coordinator's loop in
    a ServerApp.
    """
    if engine not in ENGINES:
        raise InvalidInput(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    record = catalogue(run)
    users = int(record["devices"])
    rounds = _Rounds(settings, int(record["items"]), str(record["project"]), job, log)
    if engine == "local":
        rounds(LocalDevices(run, users))
    else:
        from kumiai.adapters.flower.cross_device import cross_device_server_app
        from kumiai.adapters.flower.simulation import run_simulation

        run_simulation(
            cross_device_server_app(rounds, users),
            device_client_app(run / DEVICES),
            users,
            run,
        )
    arrays = rounds.model.arrays
    save_model(run, arrays, settings)
    metrics = evaluate_agent(run, arrays, settings) if evaluate else {}
    return AgentResult(
        settings.rounds,
        rounds.answered / settings.rounds,
        rounds.seconds,
        rounds.refusals,
        rounds.dropped,
        metrics,
        rounds.plan,
        settings.fraction,
        rounds.history,
    )


def evaluate_agent(
    run: Path, item_arrays: list[Any], settings: CrossDeviceSettings
) -> dict[str, float]:
    """Each device scores the model on its own later ratings; only the sums are added."""
    total: dict[str, float] = {}
    model_settings = fcf_settings(settings)
    for index in range(population(run)):
        add_sums(total, device(device_root(run, index)).evaluate(item_arrays, model_settings))
    return from_sums(total)


def save_model(run: Path, item_arrays: list[Any], settings: CrossDeviceSettings) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, item_factors=item_arrays[0], item_biases=item_arrays[1])
    write_atomic(run / MODEL, buffer.getvalue())
    write_json_atomic(run / "settings.json", asdict(settings))


def load_model(run: Path) -> tuple[list[Any], CrossDeviceSettings]:
    path = run / MODEL
    if not path.is_file():
        raise NotFound(f"{run} holds no trained agent model; run `kumiai agent train` first")
    with np.load(path) as stored:
        arrays = [stored["item_factors"], stored["item_biases"]]
    settings = CrossDeviceSettings(**json.loads((run / "settings.json").read_text()))
    return arrays, settings


def user_device(run: Path, user: str) -> Any:
    """The device of one user of the run (the simulation's folder for their phone)."""
    population(run)
    folders = json.loads((run / DEVICES / "index.json").read_text())
    if user not in folders:
        raise NotFound(
            f"user {user!r} has no device in {run} (too few ratings, or not in the data); "
            f"users include {', '.join(sorted(folders)[:3])}"
        )
    return device(device_root(run, int(folders[user])))


def set_policy(
    run: Path, user: str, *, threshold: float, blocked_genres: list[str], max_per_day: int
) -> dict[str, Any]:
    """The user sets their own policy, on their device."""
    known = {g for genres in catalogue(run)["item_genres"] for g in genres}
    unknown = sorted(set(blocked_genres) - known)
    if unknown:
        raise InvalidInput(
            f"genre(s) {', '.join(unknown)} are not in the catalogue; genres are: "
            + ", ".join(sorted(known))
        )
    policy = user_device(run, user).set_policy(
        threshold=threshold, blocked_genres=frozenset(blocked_genres), max_per_day=max_per_day
    )
    return policy.as_dict()


def revoke_consent(run: Path, user: str, *, reason: str = "") -> str:
    """The user withdraws their consent on their device; returns the agreement revoked."""
    phone = user_device(run, user)
    consent = phone.consent_for(str(catalogue(run)["project"]))
    if consent is None:
        raise NotFound(f"user {user!r} has not consented to this run's project")
    phone.revoke(consent.terms.agreement_id, now=utc_now(), reason=reason)
    return consent.terms.agreement_id


def suggest(run: Path, user: str, *, now: datetime | None = None) -> dict[str, Any]:
    """`kumiai agent suggest USER`: guarded, explained suggestions, made on the device."""
    now = now or utc_now()
    item_arrays, settings = load_model(run)
    record = catalogue(run)
    genres = [tuple(g) for g in record["item_genres"]]
    ids, titles = record["item_ids"], record["item_titles"] or record["item_ids"]
    phone = user_device(run, user)
    guarded, policy, explanations = phone.suggest(
        item_arrays, fcf_settings(settings), genres, now=now
    )
    view = phone.spend_log().view()
    return {
        "user": user,
        "at": now,
        "policy": policy.as_dict(),
        "suggestions": [
            {
                "item": ids[c.item],
                "title": titles[c.item],
                "score": round(c.score, 3),
                "genres": list(c.genres),
                "because_you_liked": [titles[i] for i in why["because_you_liked"]],
                "genres_that_drove_it": why["genres"],
            }
            for c, why in zip(guarded.suggestions, explanations, strict=True)
        ],
        "reason": guarded.reason,
        "privacy": {
            # The whole job's ε is reserved at the device's first sampling (under user-level
            # DP every round spends it for every user, sampled or not); spent counts the
            # rounds up to the last one the device took part in.
            "epsilon_spent": round(view.spent, 6),
            "epsilon_committed": round(view.committed, 6),
            "jobs": {
                job: {"project": j.project, "epsilon": round(j.spent, 6), "rounds": j.rounds}
                for job, j in sorted(view.jobs.items())
            },
        },
    }


def load_ratings(ratings: str = "movielens", **columns: Any) -> RatingTable:
    """MovieLens from the optional extra, or a ratings CSV with named columns."""
    from kumiai.adapters.ratings import load

    return load(ratings, **columns)


def centralized(
    table: RatingTable, split: RatingSplit, settings: CrossDeviceSettings
) -> dict[str, float]:
    """The yardstick: the same model fitted on the pooled training ratings (alternating
    least squares), scored on the same per-user test ratings."""
    from kumiai.adapters.models.fcf import pooled
    from kumiai.domain.ranking import score_user

    train_users, train_items = table.user[split.train], table.item[split.train]
    model, factors, biases = pooled(
        table.n_items,
        train_users,
        train_items,
        table.rating[split.train],
        fcf_settings(settings),
        seed=settings.seed,
    )
    train_rows = rows_by_user(train_users, table.n_users)
    test_rows = rows_by_user(table.user[split.test], table.n_users)
    total: dict[str, float] = {}
    for user in range(table.n_users):
        if len(train_rows[user]) == 0:
            continue
        model.local_arrays = [factors[user], biases[user : user + 1]]
        test = split.test[test_rows[user]]
        add_sums(
            total,
            score_user(
                model.predict(np.arange(table.n_items)),
                train_items[train_rows[user]],
                table.item[test],
                table.rating[test],
            ),
        )
    return from_sums(total)
