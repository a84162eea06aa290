"""`kumiai agent ...`: the personal agent — users' devices, cross-device training, suggestions.

Thin calls into services.agent; each command imports its service and Rich itself, so that
`--help` loads neither. A run is one folder (`--run`): the devices and the trained model.
"""

from datetime import datetime
from pathlib import Path

import typer

from kumiai.interfaces.cli.output import JSON_OPTION, print_json

agent_app = typer.Typer(
    help="The personal agent: each user's device learns their tastes; only item knowledge "
    "is federated.",
    no_args_is_help=True,
)

RUN_OPTION = typer.Option(Path("agent-run"), "--run", help="The run's folder (devices, model).")


@agent_app.command("enrol")
def enrol(
    run: Path = RUN_OPTION,
    ratings: str = typer.Option(
        "movielens", help="'movielens' (from the optional extra `agent`) or a ratings CSV."
    ),
    user_col: str = typer.Option("user", help="The CSV's user column."),
    item_col: str = typer.Option("item", help="The CSV's item column."),
    rating_col: str = typer.Option("rating", help="The CSV's rating column."),
    time_col: str = typer.Option("time", help="The CSV's time column (Unix seconds)."),
    genres_col: str = typer.Option(None, help="The CSV's genres column ('|'-separated)."),
    min_ratings: int = typer.Option(5, help="Users with fewer ratings are skipped, counted."),
    project: str = typer.Option("personal-agent", help="The project users consent to."),
    purpose: str = typer.Option("suggestions of films", help="The purpose they consent to."),
    epsilon_cap: float = typer.Option(
        None, help="Each user's ε cap (user-level DP required); omit to consent without DP."
    ),
    max_rounds: int = typer.Option(1000, help="Most rounds a user's consent allows."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One device per user: their ratings (split by time), their key, their signed consent."""
    from kumiai.adapters.ratings import load
    from kumiai.domain.ratings import temporal_split
    from kumiai.services.agent import enrol_devices

    table = load(
        ratings,
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        time_col=time_col,
        genres_col=genres_col,
    )
    split = temporal_split(table, min_ratings=min_ratings)
    result = enrol_devices(
        run,
        table,
        split,
        project=project,
        purpose=purpose,
        epsilon_cap=epsilon_cap,
        max_rounds=max_rounds,
    )
    if as_json:
        print_json(result)
        return
    from kumiai.interfaces.cli.context import console

    console.print(
        f"{result.devices} devices enrolled in {run} from {table.source} "
        f"({result.skipped_users} user(s) with fewer than {min_ratings} ratings skipped)"
    )


@agent_app.command("train")
def train(
    run: Path = RUN_OPTION,
    rounds: int = typer.Option(200, help="Federated rounds."),
    fraction: float = typer.Option(0.1, help="Share of the users each round samples."),
    sampling: str = typer.Option("poisson", help="poisson (each user with the fraction) or fixed."),
    dropout: float = typer.Option(0.0, help="Chance that a sampled device never answers."),
    epsilon: float = typer.Option(None, help="User-level ε for the whole job (DP-FedAvg)."),
    clipping_norm: float = typer.Option(0.5, help="Each device's update is clipped to this."),
    seed: int = typer.Option(0, help="Seed of the sampling, drop-outs, noise and initial items."),
    job: str = typer.Option("agent-1", help="The job's name in every device's spend log."),
    engine: str = typer.Option(
        "local",
        help="local (devices called in-process) or simulation (each device a virtual "
        "SuperNode on Flower's simulation engine).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Federated collaborative filtering over the run's devices."""
    from kumiai.domain.cross_device import CrossDeviceSettings
    from kumiai.interfaces.cli.context import console, errors
    from kumiai.services.agent import train_agent

    settings = CrossDeviceSettings(
        rounds=rounds,
        fraction=fraction,
        sampling=sampling,
        dropout=dropout,
        epsilon=epsilon,
        clipping_norm=clipping_norm,
        seed=seed,
    )
    result = train_agent(run, settings, job=job, engine=engine, log=lambda line: errors.print(line))
    doc = result.as_dict()
    del doc["history"]
    if as_json:
        print_json(doc)
        return
    metrics = result.metrics
    console.print(
        f"{result.rounds} rounds, {result.users_per_round:.1f} devices per round "
        f"({result.refusals} refusals, {result.dropped} drop-outs), "
        f"{result.seconds_per_round:.2f} s per round"
    )
    console.print(
        f"test RMSE {metrics['rmse']:.4f}, NDCG@10 {metrics['ndcg_at_10']:.4f}, "
        f"hit rate@10 {metrics['hit_rate_at_10']:.4f}"
    )
    if result.plan:
        console.print(
            f"user-level ε = {result.plan.epsilon:.3f} at δ = {result.plan.delta:.2g} "
            f"(σ = {result.plan.noise_multiplier:.3f}, q = {result.plan.sample_rate:g})"
        )


@agent_app.command("policy")
def policy(
    user: str = typer.Argument(..., help="The user (their id in the ratings)."),
    run: Path = RUN_OPTION,
    block: list[str] = typer.Option([], "--block", help="A genre never to suggest (repeat)."),
    max_per_day: int = typer.Option(3, help="Most suggestions in one day."),
    threshold: float = typer.Option(4.0, help="Least predicted rating worth suggesting."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The user's own rules, kept and enforced on their device."""
    from kumiai.services.agent import set_policy

    doc = set_policy(run, user, threshold=threshold, blocked_genres=block, max_per_day=max_per_day)
    if as_json:
        print_json(doc)
        return
    from kumiai.interfaces.cli.context import console

    console.print(f"policy of {user}: {doc}")


@agent_app.command("revoke")
def revoke(
    user: str = typer.Argument(..., help="The user withdrawing their consent."),
    run: Path = RUN_OPTION,
    reason: str = typer.Option("", help="Why (kept on the device)."),
) -> None:
    """The user withdraws consent; their device refuses from its next sampling on."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services.agent import revoke_consent

    agreement = revoke_consent(run, user, reason=reason)
    console.print(f"{agreement} revoked: {user}'s device takes part in no further round")


@agent_app.command("suggest")
def suggest(
    user: str = typer.Argument(..., help="The user (their id in the ratings)."),
    run: Path = RUN_OPTION,
    at: str = typer.Option(None, help="The time to suggest at (UTC ISO-8601; default now)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Suggestions made on the user's device, under their policy, each explained."""
    from kumiai.domain.clock import parse_iso
    from kumiai.services.agent import suggest as make

    now: datetime | None = parse_iso(at, "--at") if at else None
    doc = make(run, user, now=now)
    if as_json:
        print_json(doc)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    if not doc["suggestions"]:
        console.print(f"No suggestion for {user}: {doc['reason']}")
    else:
        table = Table("suggestion", "score", "because you liked", "genres that drove it")
        for s in doc["suggestions"]:
            table.add_row(
                s["title"],
                f"{s['score']:.2f}",
                "; ".join(s["because_you_liked"]),
                ", ".join(s["genres_that_drove_it"]),
            )
        console.print(table)
    privacy = doc["privacy"]
    console.print(
        f"{user}'s privacy spend on this device: ε {privacy['epsilon_spent']:.3f} spent, "
        f"{privacy['epsilon_committed']:.3f} committed"
    )


@agent_app.command("demo")
def demo(
    run: Path = typer.Option(Path("agent-demo"), "--run", help="A new folder for the demo."),
    ratings: str = typer.Option(
        "movielens", help="'movielens' or a ratings CSV (user, item, rating, time, genres columns)."
    ),
    user: str = typer.Option(None, help="Whose suggestions to show (default: the first)."),
    rounds: int = typer.Option(30, help="Federated rounds."),
    epsilon: float = typer.Option(8.0, help="User-level ε of the training."),
) -> None:
    """Every user a device, user-level DP training, then one user's guarded, explained
    suggestions and their privacy spend (about 10 minutes on MovieLens on 2 cores)."""
    from kumiai.domain.clock import utc_now
    from kumiai.domain.cross_device import CrossDeviceSettings
    from kumiai.domain.ratings import temporal_split
    from kumiai.interfaces.cli.context import console, errors
    from kumiai.services.agent import (
        catalogue,
        enrol_devices,
        load_ratings,
        set_policy,
        suggest,
        train_agent,
    )

    table = load_ratings(ratings, genres_col=None if ratings == "movielens" else "genres")
    split = temporal_split(table)
    enrolled = enrol_devices(
        run,
        table,
        split,
        project="personal-agent",
        purpose="suggestions of films",
        epsilon_cap=max(epsilon, 10.0),
        max_rounds=rounds,
    )
    console.print(f"{enrolled.devices} devices, each holding one user's ratings and consent")
    settings = CrossDeviceSettings(rounds=rounds, fraction=0.3, epsilon=epsilon, clipping_norm=0.3)
    result = train_agent(run, settings, job="demo", log=lambda line: errors.print(line))
    assert result.plan is not None
    console.print(
        f"trained: test RMSE {result.metrics['rmse']:.4f} at user-level ε = "
        f"{result.plan.epsilon:.2f} (δ = {result.plan.delta:.1e}), "
        f"{result.users_per_round:.0f} devices per round"
    )
    who = user or table.user_ids[0]
    # The user's own policy: a DP model's scores are shrunk towards the mean, so 3.5 stars.
    genres = {g for item in catalogue(run)["item_genres"] for g in item}
    policy = set_policy(
        run, who, threshold=3.5, blocked_genres=sorted({"Horror"} & genres), max_per_day=3
    )
    console.print(
        f"user {who}'s policy, on their device: at least {policy['threshold']} stars, "
        f"never {', '.join(policy['blocked_genres']) or 'any genre blocked'}, at most "
        f"{policy['max_per_day']} a day, quiet in {len(policy['quiet_hours'])} hours of the day"
    )
    doc = suggest(run, who)
    hours = set(range(24)) - set(doc["policy"]["quiet_hours"])
    if not doc["suggestions"] and hours:
        doc = suggest(run, who, now=utc_now().replace(hour=min(hours), minute=0, second=0))
    console.print(f"suggestions for user {who}, made on their device at {doc['at']:%H:%M} UTC:")
    for s in doc["suggestions"]:
        console.print(
            f"  {s['title']} ({s['score']:.2f}): because you liked "
            f"{'; '.join(s['because_you_liked'])}; {', '.join(s['genres_that_drove_it'])}"
        )
    if not doc["suggestions"]:
        console.print(f"  none: {doc['reason']}")
    privacy = doc["privacy"]
    console.print(
        f"their privacy spend, from their device's own log: ε {privacy['epsilon_spent']:.3f} "
        f"spent, {privacy['epsilon_committed']:.3f} committed"
    )
