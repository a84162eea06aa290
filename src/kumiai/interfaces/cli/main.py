"""The `kumiai` command. Every command is a thin call into kumiai.services."""

from pathlib import Path

import typer
from rich.markup import escape

from kumiai.domain.errors import KumiaiError
from kumiai.interfaces.cli import governance, training
from kumiai.interfaces.cli.bench import bench
from kumiai.interfaces.cli.context import errors
from kumiai.interfaces.cli.demo import demo
from kumiai.interfaces.cli.ledger import ledger_app

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
) -> None:
    ctx.obj = {"home": home}


app.command("init")(governance.init)
app.add_typer(governance.member_app, name="member")
app.add_typer(governance.dataset_app, name="dataset")
app.add_typer(governance.project_app, name="project")
app.command("request")(governance.request)
app.command("requests")(governance.requests_list)
app.add_typer(governance.agreement_app, name="agreement")
app.command("train")(training.train)
budget_app = typer.Typer(help="Privacy budgets per dataset.", invoke_without_command=True)
budget_app.callback(invoke_without_command=True)(training.budget_default)
budget_app.command("show")(training.budget)
budget_app.command("set")(training.budget_set)
app.add_typer(budget_app, name="budget")
app.command("jobs")(training.jobs_list)
app.command("job")(training.job_show)
app.command("models")(training.models_list)
app.command("model")(training.model_show)
app.add_typer(ledger_app, name="ledger")
app.command("demo")(demo)
app.command("bench")(bench)


def run() -> None:
    """Entry point: user mistakes print one line and exit non-zero, never a traceback."""
    try:
        app()
    except KumiaiError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        raise SystemExit(130) from None
