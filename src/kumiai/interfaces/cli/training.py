"""`kumiai train`: a federated training job, with its planned privacy spend and results.

Flower and Ray load only inside `train`, and the services and Rich too: every other
command (and `--help`) must start fast.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kumiai.domain.errors import InvalidInput
from kumiai.domain.training import STRATEGIES
from kumiai.interfaces.cli.context import consortium, number, warn_held

if TYPE_CHECKING:
    from rich.table import Table

    from kumiai.domain.privacy import PrivacyPlan
    from kumiai.services.training import TrainingOutcome


def site_table(title: str, outcome: "TrainingOutcome") -> "Table":
    return scores_table(title, outcome.overall, outcome.sites, outcome.refused)


def scores_table(
    title: str,
    overall: dict[str, Any],
    sites: dict[str, dict[str, Any]],
    refused: dict[str, str],
) -> "Table":
    """Each site's last scores, all sites together, and the sites that refused or were offline
    (from a local outcome, or from a remote job's record: the same table)."""
    from rich.table import Table

    table = Table("site", "test rows", "accuracy", "AUC", title=title)
    for dataset, m in sites.items():
        table.add_row(dataset, str(m["examples"]), number(m["accuracy"]), number(m["auc"]))
    table.add_row(
        "[bold]all sites",
        str(overall.get("examples")),
        number(overall.get("accuracy")),
        number(overall.get("auc")),
    )
    for dataset, reason in refused.items():
        table.add_row(dataset, "—", f"[yellow]{refusal_label(reason)}", "—")
    return table


def refusal_label(reason: str) -> str:
    """'offline' for a site whose node never connected (`domain.quorum`), else 'refused'."""
    from kumiai.domain.quorum import OFFLINE

    return OFFLINE if reason.startswith(f"{OFFLINE}:") else "refused"


def train(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    strategy: str = typer.Option("fedavg", help=", ".join(STRATEGIES)),
    rounds: int = typer.Option(20, help="Federated rounds."),
    local_epochs: int = typer.Option(1, help="Local epochs per round."),
    lr: float = typer.Option(0.1, help="Local SGD learning rate."),
    batch_size: int = typer.Option(32),
    l2: float = typer.Option(1e-3, help="L2 penalty."),
    mu: float = typer.Option(0.0, help="FedProx proximal term (0 = Flower's default 0.1)."),
    server_lr: float = typer.Option(0.1, help="FedAdam/FedYogi server learning rate."),
    seed: int = typer.Option(0, help="Seed of the train/test split and local shuffles."),
    test_fraction: float = typer.Option(0.25, help="Share of each site's rows held out."),
    by: str = typer.Option(None, help="The member starting the job (default: the proposer)."),
    epsilon: float = typer.Option(None, help="DP: target ε per dataset (per row) for the job."),
    noise_multiplier: float = typer.Option(None, help="DP with this σ instead of a target ε."),
    clipping: float = typer.Option(
        1.0, help="DP clipping norm: per example (record level) or per update (client level)."
    ),
    dp_level: str = typer.Option(
        "record",
        help="record: DP-SGD at each node. client: DP-FedAvg, each node clips its update and "
        "the coordinator adds the noise (for projects with many members).",
    ),
    delta: float = typer.Option(None, help="DP δ (default at each node: 1/(10·rows))."),
    accountant: str = typer.Option("pld", help="pld (default) or rdp."),
    statistics_epsilon: float = typer.Option(
        1.0,
        help="ε a site whose agreement says `--statistics dp` spends on its summary and final "
        "scores (half each), on top of training.",
    ),
    public_domain: Path = typer.Option(
        None,
        help="JSON file of public bounds for dp statistics: "
        '{"bounds": {"age": [0, 120]}, "levels": {"sex": ["0", "1"]}, "classes": ["0", "1"]}.',
    ),
    model: str = typer.Option("logistic", help="Model family: logistic or mlp."),
    hidden_layers: int = typer.Option(1, help="mlp: hidden ReLU layers (1-3)."),
    hidden_units: int = typer.Option(32, help="mlp: units per hidden layer."),
    positive_weight: float = typer.Option(
        1.0, help="Loss weight of a positive example (two classes; rare events count more)."
    ),
    superlink: str = typer.Option(
        None,
        "--superlink",
        help="HOST:PORT of the coordinator's SuperLink: train on the deployment engine, with "
        "the members' own nodes (kumiai coordinator serve --superlink-port).",
    ),
    round_timeout: float = typer.Option(
        None,
        "--round-timeout",
        help="Seconds to wait for a round's replies (each SecAgg+ stage too, at most 60; "
        "default 600); a node that does not answer in time is dropped and named in `kumiai job`.",
    ),
    personalisation_epochs: int = typer.Option(
        0,
        help="DP: epochs of DP fine-tuning at each site that the job's ε also covers "
        "(`kumiai personalise` within them costs no ε beyond the target).",
    ),
    admission_timeout: float = typer.Option(
        120.0,
        help="Seconds to wait for the members' nodes to connect and admit the job; a node "
        "still offline then is recorded as refused (offline) and the job goes on without it.",
    ),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        help="https://HOST:PORT: start the job at this coordinator (POST /jobs) on the "
        "SuperLink it supervises, and watch it; signed with KUMIAI_NODE_HOME's key, or "
        "`kumiai --key FILE --ca FILE`. Default: KUMIAI_COORDINATOR, else the local home.",
    ),
) -> None:
    """Train a federated model on every site whose steward agreed; others refuse at the node.

    With --coordinator the coordinator runs the job and this command watches it: Ctrl-C stops
    watching only, the job goes on (`kumiai job ID` reads it).
    """
    from kumiai.domain.training import TrainingSettings
    from kumiai.interfaces.cli.remote import coordinator_url

    positive_seconds(admission_timeout, "--admission-timeout")
    settings = TrainingSettings(
        strategy=strategy,
        rounds=rounds,
        local_epochs=local_epochs,
        learning_rate=lr,
        batch_size=batch_size,
        l2=l2,
        proximal_mu=mu,
        server_learning_rate=server_lr,
        seed=seed,
        test_fraction=test_fraction,
        epsilon=epsilon,
        noise_multiplier=noise_multiplier,
        clipping_norm=clipping,
        delta=delta,
        accountant=accountant,
        dp_level=dp_level,
        statistics_epsilon=statistics_epsilon,
        public_domain=read_public_domain(public_domain),
        model=model,
        hidden_layers=hidden_layers,
        hidden_units=hidden_units,
        positive_weight=positive_weight,
        personalisation_epochs=personalisation_epochs,
    )
    url = coordinator or coordinator_url()
    if url:
        refuse_local_options(superlink=superlink, by=by)
        from kumiai.interfaces.cli.remote_training import train_at_coordinator

        train_at_coordinator(
            url,
            project,
            settings,
            admission_timeout=admission_timeout,
            round_timeout=round_timeout,
        )
        return
    # Lazy: these load Flower and Ray (seconds); only this command needs them.
    from kumiai.interfaces.cli.context import console
    from kumiai.interfaces.cli.progress import RichTrainingProgress
    from kumiai.services.privacy import plan_job_privacy
    from kumiai.services.quota import refuse_over_quota
    from kumiai.services.training import train as run_training

    home = consortium(ctx)
    link = None
    if superlink is not None:
        from kumiai.services.deployment import superlink_address

        link = superlink_address(home, superlink)
    privacy = plan_job_privacy(home, project, settings)  # once: shown here, run with below
    refuse_over_quota(home, project, settings.rounds)  # before any plan or progress is shown
    if privacy.plans:
        console.print(planned_privacy_table(privacy.plans))
    else:
        console.print("No differential privacy (use --epsilon to add it).")
    with RichTrainingProgress(console, rounds, f"{project} · {strategy}") as progress:
        outcome = run_training(
            home,
            project,
            settings,
            progress,
            by=by,
            privacy=privacy,
            superlink=link,
            admission_timeout=admission_timeout,
            round_timeout=round_timeout,
        )
    console.print(
        site_table(f"{outcome.model_id} (job {outcome.job_id}, {outcome.rounds} rounds)", outcome)
    )
    warn_held(outcome.held)


def refuse_local_options(superlink: str | None, by: str | None) -> None:
    """At a coordinator, the job runs on its own SuperLink and is started by the signer."""
    if superlink is not None:
        raise InvalidInput(
            "--superlink is for a job run from the coordinator's own machine; with "
            "--coordinator the coordinator runs it on the SuperLink it supervises: drop it"
        )
    if by is not None:
        raise InvalidInput(
            "--by is for the coordinator's own machine; with --coordinator the job is started "
            "by the member whose key signs the request: drop it"
        )


def positive_seconds(value: float, option: str) -> float:
    if not value > 0:
        raise InvalidInput(f"{option} must be a positive number of seconds (got {value:g})")
    return value


def read_public_domain(path: Path | None) -> str:
    """The file's public domain as canonical JSON, or a clear error naming the file."""
    from kumiai.domain.disclosure import PublicDomain

    if path is None:
        return ""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(
            f"cannot read the public domain file {path}: {exc.strerror}; give a readable file"
        ) from None
    return PublicDomain.from_json(text, f"public domain file {path}").to_json()


def planned_privacy_table(plans: "dict[str, PrivacyPlan]") -> "Table":
    from rich.table import Table

    client = any(plan.level == "client" for plan in plans.values())
    columns = ["dataset", "planned ε (per row)", "δ", "σ (noise)", "sample rate", "steps"]
    table = Table(
        *columns + (["member ε"] if client else []),
        title=(
            "Planned privacy spend, client level: nodes clip, the coordinator adds the noise"
            if client
            else "Planned privacy spend (each node re-plans and checks its own budget)"
        ),
    )
    for dataset, plan in plans.items():
        cells = [
            dataset,
            f"{plan.epsilon:.3f}",
            f"{plan.delta:.2e}",
            f"{plan.noise_multiplier:.3f}",
            f"{plan.sample_rate:.3f}",
            str(plan.steps),
        ]
        table.add_row(*cells + ([number(plan.member_epsilon)] if client else []))
    return table
