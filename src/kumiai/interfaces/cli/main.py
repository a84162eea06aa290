"""The `kumiai` command. Every command is a thin call into kumiai.services.

Only `train`, `demo` and `bench` load Flower, Ray and the benchmarks, inside the command:
everything else must start in well under a second. The command modules import their
services and Rich inside each command, so building this app (and `--help`) loads neither.
"""

import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import typer

from kumiai.domain.errors import KumiaiError, Stopped
from kumiai.interfaces.cli import association, governance, jobs, show, training
from kumiai.interfaces.cli.agent import agent_app
from kumiai.interfaces.cli.analyse import analyse
from kumiai.interfaces.cli.bench import bench
from kumiai.interfaces.cli.board import charter_app, motion_app
from kumiai.interfaces.cli.budget import budget_app
from kumiai.interfaces.cli.collector import pause_collection
from kumiai.interfaces.cli.contribution import contributions
from kumiai.interfaces.cli.coordinator import coordinator_app
from kumiai.interfaces.cli.demo import demo_app
from kumiai.interfaces.cli.ledger import ledger_app
from kumiai.interfaces.cli.model_card import model_app
from kumiai.interfaces.cli.node import node_app
from kumiai.interfaces.cli.node_serve import node_serve
from kumiai.interfaces.cli.odrl import agreement_export, agreement_import
from kumiai.interfaces.cli.personalise import personalise
from kumiai.interfaces.cli.report import report
from kumiai.interfaces.cli.royalties import licence_app, revenue_app, royalties_app, spinout_app

app = typer.Typer(
    help="kumiai: a research consortium's data stays home; stewards' agreements are enforced "
    "at each node; models are trained federatedly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    home: Path = typer.Option(
        None, "--home", envvar="KUMIAI_HOME", help="Consortium home (default ./.kumiai)."
    ),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        envvar="KUMIAI_COORDINATOR",
        help="Read from the coordinator's API at https://HOST:PORT instead of a local home.",
    ),
    key: Path = typer.Option(
        None, "--key", envvar="KUMIAI_KEY", help="With --coordinator: a granted key file."
    ),
    ca: Path = typer.Option(
        None, "--ca", envvar="KUMIAI_CA", help="With --key: the consortium's CA certificate."
    ),
) -> None:
    ctx.obj = {"home": home, "coordinator": coordinator, "key": key, "ca": ca}


app.command("init")(governance.init)
app.add_typer(governance.member_app, name="member")
governance.dataset_app.command("show")(show.dataset_show)
app.add_typer(governance.dataset_app, name="dataset")
governance.project_app.command("show")(show.project_show)
governance.project_app.command("theme")(association.project_theme)
governance.project_app.command("budget")(association.project_budget)
app.add_typer(governance.project_app, name="project")
app.add_typer(charter_app, name="charter")
app.add_typer(motion_app, name="motion")
app.add_typer(association.theme_app, name="theme")
app.add_typer(association.funds_app, name="funds")
app.add_typer(association.spend_app, name="spend")
app.add_typer(association.milestone_app, name="milestone")
app.command("request")(governance.request)
app.command("requests")(governance.requests_list)
governance.agreement_app.command("show")(show.agreement_show)
governance.agreement_app.command("export")(agreement_export)
governance.agreement_app.command("import")(agreement_import)
app.add_typer(governance.agreement_app, name="agreement")
app.command("train")(training.train)
app.add_typer(budget_app, name="budget")
app.command("jobs")(jobs.jobs_list)
app.command("job")(jobs.job_show)
app.command("models")(jobs.models_list)
model_app.command("show")(jobs.model_show)
app.add_typer(model_app, name="model")
app.command("contributions")(contributions)
app.command("personalise")(personalise)
app.command("analyse")(analyse)
app.add_typer(ledger_app, name="ledger")
app.command("report")(report)
app.add_typer(coordinator_app, name="coordinator")
node_app.command("serve")(node_serve)  # interfaces.cli.node_serve: the deployment engine
app.add_typer(node_app, name="node")
app.add_typer(spinout_app, name="spinout")
app.add_typer(licence_app, name="licence")
app.add_typer(revenue_app, name="revenue")
app.add_typer(royalties_app, name="royalties")
app.add_typer(demo_app, name="demo")
app.command("bench")(bench)
app.add_typer(agent_app, name="agent")


_signalled: list[int] = []  # the stop signal received, if any


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGINT raise, so a running job fails as stopped and releases its ε."""
    _signalled.append(signum)
    # The process is ending: Flower's engine threads would log, with a traceback, every
    # message of the node actors being ended under them. kumiai says "stopped" instead.
    logging.getLogger("flwr").disabled = True
    raise Stopped() if signum == signal.SIGTERM else KeyboardInterrupt()


def run() -> None:
    """Entry point: user mistakes print one line and exit non-zero, never a traceback."""
    pause_collection()  # the command's own imports are most of its start-up
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        app()
    except KumiaiError as exc:
        from rich.markup import escape

        from kumiai.interfaces.cli.context import errors

        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        _signalled.append(signal.SIGINT)
    except SystemExit as exc:
        # Typer turns KeyboardInterrupt into exit 130; a Ray started outside kumiai's own
        # _start_ray leaves Ray's SIGTERM handler in place, which exits with code SIGTERM.
        if exc.code == signal.SIGTERM:
            _signalled.append(signal.SIGTERM)
        elif not (_signalled and exc.code == 130):
            raise
    if _signalled:
        from kumiai.interfaces.cli.context import errors

        name = signal.Signals(_signalled[0]).name
        errors.print(f"[red]stopped by signal ({name})[/]")
        sys.stdout.flush()
        sys.stderr.flush()
        # The job is already failed and its ε released, and Flower's runtime has shut Ray
        # down; the interpreter's own teardown of Ray's C++ core after a signal sometimes
        # aborts (SIGABRT), so the process ends here with the conventional code instead.
        os._exit(128 + _signalled[0])
