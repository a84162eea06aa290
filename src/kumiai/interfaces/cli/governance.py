"""Members, datasets, projects, requests and agreements: thin calls into the services.

Each command imports its service and Rich itself, so that `--help` loads neither.
"""

from pathlib import Path

import typer

from kumiai.domain.schema import parse_column_types, parse_missing_markers
from kumiai.interfaces.cli import request_options as opts
from kumiai.interfaces.cli.context import consortium, home_of, when
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_document

member_app = typer.Typer(help="Members of the consortium and their keys.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets registered on members' nodes.", no_args_is_help=True)
project_app = typer.Typer(help="Research projects: propose, approve, close.", no_args_is_help=True)
agreement_app = typer.Typer(help="Stewards sign, refuse or revoke data use.", no_args_is_help=True)


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (text or "").split(",") if t.strip())


def init(ctx: typer.Context) -> None:
    """Create a consortium home (database and member nodes) here or at --home."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services.consortium import init_consortium

    home = home_of(ctx)
    init_consortium(home)
    console.print(f"Consortium ready at [bold]{home}[/]. Next: kumiai member add NAME --kind ...")


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Short name, e.g. cleveland-clinic."),
    kind: str = typer.Option(..., help="university, company, hospital or startup."),
) -> None:
    """Add a member: creates its node home and Ed25519 key pair, registers the public key."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import members

    info = members.add_member(consortium(ctx), name, kind)
    console.print(
        f"Member [bold]{info.name}[/] ({info.kind}) joined; key {info.key_fingerprint}"
        f", node home {info.home}"
    )


@member_app.command("rotate-key")
def member_rotate_key(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Give a member a new key pair; the old key signs the change into the ledger."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import members

    info = members.rotate_key(consortium(ctx), name)
    console.print(f"Member [bold]{info.name}[/] now signs with key {info.key_fingerprint}.")


@member_app.command("list")
def member_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List members and their key fingerprints."""
    if remote_document(as_json, "/members"):
        return
    from kumiai.services import members

    listing = members.list_members(consortium(ctx))
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("member", "kind", "key", "node home")
    for m in listing:
        table.add_row(m.name, m.kind, m.key_fingerprint, m.home)
    console.print(table)


@dataset_app.command("register")
def dataset_register(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or Parquet file on the member's machine."),
    member: str = typer.Option(..., help="The member whose node holds the data."),
    name: str = typer.Option(..., help="Catalogue name, e.g. cleveland-heart."),
    target: str = typer.Option(..., help="Column to predict, or a rule such as 'num>0'."),
    types: str = typer.Option("", help="Force column types: 'ca=numeric,sex=categorical'."),
    missing: str = typer.Option("", help="Values meaning missing: 'chol=0,ca=?'."),
    ignore: str = typer.Option("", help="Columns to leave out: 'id,site'."),
    sensitivity: str = typer.Option(
        "confidential", help="public, internal, confidential or special-category."
    ),
) -> None:
    """Register a dataset on its member's node; only metadata reaches the catalogue."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import datasets  # lazy: pandas and scipy; other commands start fast

    info = datasets.register_dataset(
        consortium(ctx),
        member=member,
        file=file,
        name=name,
        target=target,
        column_types=parse_column_types(types),
        missing=parse_missing_markers(missing),
        ignore=_csv(ignore),
        sensitivity=sensitivity,
    )
    console.print(
        f"Dataset [bold]{info.name}[/] registered on {info.member}'s node: {info.rows} "
        f"rows, {len(info.schema)} feature columns, sha256 {info.sha256[:12]}…"
    )


@dataset_app.command("update")
def dataset_update(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The registered dataset."),
    file: Path = typer.Argument(..., help="The new version of its CSV or Parquet file."),
    types: str = typer.Option("", help="Add or retype columns: 'weight=numeric'."),
    missing: str = typer.Option("", help="More values meaning missing: 'chol=0,ca=?'."),
    ignore: str = typer.Option("", help="Registered columns to leave out from now on."),
) -> None:
    """Register a new version of a dataset's file: checked like a registration, signed."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import datasets  # lazy, as in dataset_register

    update = datasets.update_dataset(
        consortium(ctx),
        name,
        file,
        column_types=parse_column_types(types),
        missing=parse_missing_markers(missing),
        ignore=_csv(ignore),
    )
    before, after = update.before, update.after
    console.print(
        f"Dataset [bold]{after.name}[/] updated on {after.member}'s node: {before.rows} → "
        f"{after.rows} rows, sha256 {before.sha256[:12]}… → {after.sha256[:12]}…"
    )
    if update.left_out:
        console.print(
            f"Left out (not in the registered columns): {', '.join(update.left_out)}; "
            "add them with --types COLUMN=numeric|categorical"
        )


@dataset_app.command("list")
def dataset_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the catalogue: metadata only, never rows."""
    if remote_document(as_json, "/datasets"):
        return
    from kumiai.services import datasets  # lazy, as in dataset_register

    listing = datasets.list_datasets(consortium(ctx))
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("dataset", "member", "rows", "target", "sensitivity", "columns")
    for d in listing:
        table.add_row(
            d.name,
            d.member,
            str(d.rows),
            d.target,
            d.sensitivity,
            ", ".join(f"{c}:{t[:3]}" for c, t in d.schema.items()),
        )
    console.print(table)


@project_app.command("propose")
def project_propose(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    by: str = typer.Option(..., help="The proposing member (the researcher's organisation)."),
    purpose: str = typer.Option(..., help="The purpose stewards will consent to."),
    title: str = typer.Option("", help="A readable title."),
    members_: str = typer.Option("", "--members", help="Participating members: 'a,b,c'."),
    theme: str = typer.Option(None, help="The theme it is under (see `kumiai theme list`)."),
) -> None:
    """Propose a research project; the board must approve it before any data use."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import projects

    info = projects.propose_project(
        consortium(ctx),
        name=name,
        title=title,
        purpose=purpose,
        proposed_by=by,
        members=_csv(members_),
        theme=theme,
    )
    console.print(
        f"Project [bold]{info.name}[/] proposed by {info.proposed_by}; "
        f"next: kumiai project approve {info.name} --by BOARD-MEMBER"
    )


@project_app.command("approve")
def project_approve(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    by: str = typer.Option(..., help="The approving board member."),
) -> None:
    """Approve a proposed project (it becomes active)."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import projects

    info = projects.approve_project(consortium(ctx), name, by)
    console.print(f"Project [bold]{info.name}[/] is {info.status}.")


@project_app.command("close")
def project_close(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    by: str = typer.Option(..., help="The member closing it (a board member)."),
) -> None:
    """Close a project: no further data use or jobs."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import projects

    info = projects.close_project(consortium(ctx), name, by)
    console.print(f"Project [bold]{info.name}[/] is {info.status}.")


@project_app.command("list")
def project_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List projects, their status, members and purpose."""
    if remote_document(as_json, "/projects"):
        return
    from kumiai.services import projects

    listing = projects.list_projects(consortium(ctx))
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("project", "status", "proposed by", "approved by", "members", "purpose")
    for p in listing:
        table.add_row(
            p.name,
            p.status,
            p.proposed_by,
            f"board, {p.approved_by_motion}" if p.approved_by_motion else p.approved_by or "—",
            ", ".join(p.members),
            p.purpose,
        )
    console.print(table)


def request(
    ctx: typer.Context,
    project: str = typer.Argument(...),
    dataset: str = opts.DATASET,
    by: str = typer.Option(..., help="The requesting member (a project member)."),
    kinds: str = opts.KINDS,
    rounds: int = opts.ROUNDS,
    expires: str = opts.EXPIRES,
    epsilon: float = opts.EPSILON,
    allow_plain_aggregation: bool = opts.PLAIN_AGGREGATION,
    statistics: str = opts.STATISTICS,
    min_cohort: int = opts.MIN_COHORT,
    allow_contribution_analysis: bool = opts.CONTRIBUTION_ANALYSIS,
) -> None:
    """Ask a dataset's steward to allow its use for the project's purpose."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import agreements

    expires_at = opts.expiry(expires)
    home = consortium(ctx)
    info = agreements.request_data_use(
        home,
        project=project,
        dataset=dataset,
        requested_by=by,
        job_kinds=kinds,
        max_rounds=rounds,
        expires_at=expires_at,
        epsilon_cap=epsilon,
        plain_aggregation=allow_plain_aggregation,
        aggregate_statistics=statistics,
        min_cohort=min_cohort,
        contribution_analysis=allow_contribution_analysis,
    )
    # A steward whose node lives on its own machine signs there, through the API.
    act = "agreement" if home.node_is_here(info.steward) else "node"
    console.print(
        f"Request [bold]{info.id}[/] sent to {info.steward}'s steward; they run: "
        f"kumiai {act} sign {info.id}  (or: {act} refuse {info.id} --reason …)"
    )


def requests_list(
    ctx: typer.Context, project: str = typer.Argument(None), as_json: bool = JSON_OPTION
) -> None:
    """List data-use requests and their stewards' decisions."""
    if remote_document(as_json, "/requests", project=project):
        return
    from kumiai.services import agreements

    listing = agreements.list_requests(consortium(ctx), project)
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table(
        "request", "project", "dataset", "steward", "kinds", "rounds", "expires", "status"
    )
    for r in listing:
        status = r.status + (f": {r.refusal_reason}" if r.refusal_reason else "")
        table.add_row(
            r.id,
            r.project,
            r.dataset,
            r.steward,
            ",".join(r.job_kinds),
            str(r.max_rounds),
            when(r.expires_at),
            status,
        )
    console.print(table)


@agreement_app.command("sign")
def agreement_sign(ctx: typer.Context, request_id: str = typer.Argument(...)) -> None:
    """Sign a request with the steward's key: the node will then work for the project."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import agreements

    info = agreements.sign_request(consortium(ctx), request_id)
    console.print(
        f"Agreement [bold]{info.id}[/] signed by {info.steward} for {info.project} on "
        f"{info.dataset}, valid until {when(info.expires_at)} UTC."
    )


@agreement_app.command("refuse")
def agreement_refuse(
    ctx: typer.Context,
    request_id: str = typer.Argument(...),
    reason: str = typer.Option(..., help="Why; the researcher reads it."),
) -> None:
    """Refuse a request; the node will refuse any job for it."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import agreements

    info = agreements.refuse_request(consortium(ctx), request_id, reason)
    console.print(f"Request {info.id} refused by {info.steward}.")


@agreement_app.command("revoke")
def agreement_revoke(
    ctx: typer.Context,
    agreement_id: str = typer.Argument(...),
    reason: str = typer.Option("revoked by the steward", help="Why."),
) -> None:
    """Revoke a signed agreement; the node refuses from its next message on."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import agreements

    info = agreements.revoke_agreement(consortium(ctx), agreement_id, reason)
    console.print(f"Agreement {info.id} revoked at {when(info.revoked_at)} UTC.")


@agreement_app.command("list")
def agreement_list(
    ctx: typer.Context, project: str = typer.Argument(None), as_json: bool = JSON_OPTION
) -> None:
    """List signed agreements, with expiry and revocation."""
    if remote_document(as_json, "/agreements", project=project):
        return
    from kumiai.services import agreements

    listing = agreements.list_agreements(consortium(ctx), project)
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("agreement", "project", "dataset", "steward", "signed", "expires", "revoked")
    for a in listing:
        table.add_row(
            a.id,
            a.project,
            a.dataset,
            a.steward,
            when(a.signed_at),
            when(a.expires_at),
            when(a.revoked_at) if a.revoked_at else "—",
        )
    console.print(table)
