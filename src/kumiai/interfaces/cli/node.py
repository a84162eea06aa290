"""`kumiai node …`: a member's node on its own machine, acting through the coordinator's API.

Every command takes the node's own home (`--home NODE_HOME`, where its key lives); the
coordinator's URL and CA are the ones pinned there at `node init`.
"""

from pathlib import Path
from typing import Any

import typer

from kumiai.interfaces.cli import request_options as opts
from kumiai.interfaces.cli.node_witness import witness
from kumiai.interfaces.cli.output import JSON_OPTION, print_json

node_app = typer.Typer(
    help="A member's node on its own machine: join a coordinator, sign, refuse and revoke, "
    "witness the log; sign in to the dashboard.",
    no_args_is_help=True,
)

NODE_HOME = typer.Option(..., "--home", help="The node's own home (its key and data).")


def _done(as_json: bool, document: object, line: str) -> None:
    if as_json:
        print_json(document)
        return
    from kumiai.interfaces.cli.context import console

    console.print(line)


@node_app.command("init")
def node_init(
    home: Path = NODE_HOME,
    coordinator: str = typer.Option(..., help="The coordinator's URL: https://HOST:PORT"),
    invite: str = typer.Option(..., help="The invitation token the operator gave you."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make the node's key and join, after checking the coordinator's CA and key."""
    from kumiai.node.remote import join_consortium

    joined = join_consortium(home, coordinator, invite)
    member = joined["member"]
    _done(
        as_json,
        joined,
        f"[bold]{member['name']}[/] joined {coordinator} with key "
        f"{member['key_fingerprint']}; its CA (SHA-256 {joined['ca_sha256']}) and key are "
        f"pinned in {home}. The private key stays there: back it up offline.",
    )


@node_app.command("sign")
def node_sign(
    request: str = typer.Argument(..., help="The request id (see `kumiai requests`)."),
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sign a request's terms with this node's key; the agreement is kept in the home."""
    from kumiai.node.remote import sign_request

    agreement = sign_request(home, request)
    _done(
        as_json,
        agreement,
        f"Signed agreement [bold]{agreement['id']}[/] for {agreement['dataset']} in "
        f"project {agreement['project']}, until {agreement['expires_at']}.",
    )


@node_app.command("refuse")
def node_refuse(
    request: str = typer.Argument(..., help="The request id."),
    reason: str = typer.Option(..., help="Why: the researcher reads it."),
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Refuse a request, with a reason, signed by this node."""
    from kumiai.node.remote import refuse_request

    refused = refuse_request(home, request, reason)
    _done(as_json, refused, f"Refused {request}: {refused['refusal_reason']}")


@node_app.command("revoke")
def node_revoke(
    agreement: str = typer.Argument(..., help="The agreement id."),
    reason: str = typer.Option("", help="Why (recorded in the ledger)."),
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke an agreement: this node refuses from now on, then the coordinator records it."""
    from kumiai.node.remote import revoke_agreement

    revoked = revoke_agreement(home, agreement, reason)
    _done(as_json, revoked, f"Revoked {agreement}; this node refuses its jobs from now on.")


@node_app.command("register")
def node_register(
    dataset: str = typer.Argument(..., help="Catalogue name, e.g. st-mary-heart."),
    file: Path = typer.Argument(..., help="CSV or Parquet file on this machine."),
    target: str = typer.Option(..., help="Column to predict, or a rule such as 'num>0'."),
    types: str = typer.Option("", help="Force column types: 'ca=numeric,sex=categorical'."),
    missing: str = typer.Option("", help="Values meaning missing: 'chol=0,ca=?'."),
    ignore: str = typer.Option("", help="Columns to leave out: 'id,site'."),
    sensitivity: str = typer.Option(
        "confidential", help="public, internal, confidential or special-category."
    ),
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a dataset: checked and kept in the node home, only metadata sent."""
    from kumiai.domain.schema import parse_column_types, parse_missing_markers
    from kumiai.node.remote import register_dataset

    info = register_dataset(
        home,
        dataset,
        file,
        target=target,
        column_types=parse_column_types(types),
        missing=parse_missing_markers(missing),
        ignore=tuple(c.strip() for c in ignore.split(",") if c.strip()),
        sensitivity=sensitivity,
    )
    _done(
        as_json,
        info,
        f"Dataset [bold]{info['name']}[/] registered: {info['rows']} rows, "
        f"{len(info['schema'])} feature columns; the file stays in {home}.",
    )


@node_app.command("sign-in")
def node_sign_in(
    challenge: str = typer.Argument(..., help="The challenge the dashboard's sign-in page shows."),
    home: Path | None = typer.Option(None, "--home", help="The node's own home (its key)."),
    key: Path | None = typer.Option(
        None,
        "--key",
        help="Or a private key PEM: the operator's COORDINATOR_HOME/coordinator/key.pem, "
        "an auditor's granted key.",
    ),
) -> None:
    """Sign a dashboard sign-in challenge with this node's key; paste the line it prints."""
    from kumiai.domain import keys
    from kumiai.domain.errors import InvalidInput
    from kumiai.domain.sign_in import respond
    from kumiai.node.home import NodeHome

    if (home is None) == (key is None):
        raise InvalidInput("give the node's --home, or --key PEM for the operator or an auditor")
    if key is not None:
        if not key.is_file():
            raise InvalidInput(f"no private key file at {key}")
        private = keys.private_key_from_pem(key.read_bytes(), str(key))
    else:
        assert home is not None
        private = NodeHome(home).private_key()
    print(respond(private, challenge))  # plain: one line to paste, never wrapped


@node_app.command("request")
def node_request(
    project: str = typer.Argument(...),
    dataset: str = opts.DATASET,
    kinds: str = opts.KINDS,
    rounds: int = opts.ROUNDS,
    expires: str = opts.EXPIRES,
    epsilon: float = opts.EPSILON,
    allow_plain_aggregation: bool = opts.PLAIN_AGGREGATION,
    statistics: str = opts.STATISTICS,
    min_cohort: int = opts.MIN_COHORT,
    allow_contribution_analysis: bool = opts.CONTRIBUTION_ANALYSIS,
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Ask a dataset's steward for data, as `kumiai request`, signed by this node."""
    from kumiai.node.remote import request_data

    expires_at = opts.expiry(expires)
    info = request_data(
        home,
        project,
        dataset,
        job_kinds=kinds,
        max_rounds=rounds,
        expires_at=expires_at,
        epsilon_cap=epsilon,
        plain_aggregation=allow_plain_aggregation,
        aggregate_statistics=statistics,
        min_cohort=min_cohort,
        contribution_analysis=allow_contribution_analysis,
    )
    _done(
        as_json,
        info,
        f"Request [bold]{info['id']}[/] sent to {info['steward']}'s steward; its node runs: "
        f"kumiai node sign {info['id']}",
    )


@node_app.command("propose")
def node_propose(
    name: str = typer.Argument(...),
    purpose: str = typer.Option(..., help="The purpose stewards will consent to."),
    title: str = typer.Option("", help="A readable title."),
    members_: str = typer.Option("", "--members", help="Participating members: 'a,b,c'."),
    theme: str = typer.Option(None, help="The theme it is under (see `kumiai theme list`)."),
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Propose a research project in this node's member's name, under a theme if given."""
    from kumiai.node.remote import propose_project

    members = tuple(m.strip() for m in members_.split(",") if m.strip())
    info = propose_project(home, name, purpose=purpose, title=title, members=members, theme=theme)
    under = f" under theme {theme}" if theme else ""
    _done(
        as_json,
        info,
        f"Project [bold]{info['name']}[/] proposed by {info['proposed_by']}{under}; the board "
        "approves it before any data use.",
    )


def _show_motion(shown: dict[str, Any], to_stderr: bool) -> None:
    """What the steward votes on: the action, its payload, who proposed it, the digest."""
    import json

    from kumiai.interfaces.cli import context

    out = context.errors if to_stderr else context.console
    out.print(
        f"Motion [bold]{shown['id']}[/]: {shown['decision']}, proposed by {shown['proposer']} "
        f"under charter version {shown['charter_version']}; votes until {shown['closes_at']}"
    )
    for key, value in sorted(shown["payload"].items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out.print(f"  {key}: {text}", markup=False)
    out.print(f"Digest (what this node signs over): {shown['digest']}")


@node_app.command("vote")
def node_vote(
    motion: str = typer.Argument(...),
    choice: str = typer.Argument(..., help="yes, no or abstain."),
    home: Path = NODE_HOME,
    yes: bool = typer.Option(False, "--yes", help="Vote without asking to confirm."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the motion, then cast this seat's vote on exactly what was shown, signed at this
    node over the motion's digest (a motion changed in between is refused)."""
    from kumiai.domain.motion import choice_of
    from kumiai.node.remote import show_motion, vote

    picked = choice_of(choice).value
    shown = show_motion(home, motion)
    _show_motion(shown, to_stderr=as_json)
    if not yes and not typer.confirm(f"Vote {picked} on {motion}?", err=as_json):
        from kumiai.interfaces.cli.context import errors

        errors.print(f"Not voted on {motion}: nothing was signed.")
        raise typer.Exit(1)
    info = vote(home, motion, picked, shown["digest"])
    _done(
        as_json,
        info,
        f"Voted {choice} on {info['id']}; {len(info['votes'])} of {len(info['eligible'])} voted.",
    )


@node_app.command("budget")
def node_budget(
    dataset: str = typer.Argument(..., help="One of this node's datasets."),
    epsilon: float = typer.Option(..., help="Its lifetime ε budget."),
    home: Path = NODE_HOME,
    as_json: bool = JSON_OPTION,
) -> None:
    """Set a dataset's lifetime ε here (enforced by this node), then at the coordinator."""
    from kumiai.node.remote import set_budget

    info = set_budget(home, dataset, epsilon)
    _done(
        as_json,
        info,
        f"{dataset}: lifetime ε {info['lifetime']}, enforced by this node; the coordinator's "
        "catalogue mirrors it.",
    )


@node_app.command("rotate-key")
def node_rotate_key(home: Path = NODE_HOME, as_json: bool = JSON_OPTION) -> None:
    """Replace this node's key: the old key signs the new one into the ledger."""
    from kumiai.node.remote import rotate_key

    info = rotate_key(home)
    _done(
        as_json,
        info,
        f"{info['name']}'s node now signs with key {info['key_fingerprint']}; the old key "
        f"is kept aside in {home}.",
    )


STALE_AFTER_OPTION = typer.Option(
    86400.0,
    "--stale-after",
    min=1.0,
    help="Seconds a reservation may go unspent before this node releases it, whatever the "
    "coordinator says of its job (the node's own clock).",
)


@node_app.command("release")
def node_release(
    home: Path = NODE_HOME,
    stale_after: float = STALE_AFTER_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Release the ε this node still holds for jobs that are over, and tell the coordinator."""
    from datetime import timedelta

    from kumiai.node.releasing import release_finished

    found = release_finished(home, stale_after=timedelta(seconds=stale_after))
    if as_json:
        print_json([r.as_dict() for r in found])
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console, number

    if not found:
        console.print("This node holds no ε for any job; nothing to release.")
        return
    table = Table("job", "dataset", "reserved", "spent", "released", "why")
    for r in found:
        released = ("yes" if r.reported else "yes, not yet reported") if r.released else "no"
        table.add_row(
            r.job, r.dataset, number(r.reserved), number(r.spent), released, escape(r.reason)
        )
    console.print(table)


@node_app.command("ui")
def node_ui(
    home: Path = NODE_HOME,
    port: int = typer.Option(8600, help="The port on 127.0.0.1."),
) -> None:
    """Serve the steward's pages on 127.0.0.1 only; open the link it prints (once per start)."""
    import secrets

    import uvicorn

    from kumiai.interfaces.web.node_pages import create_node_app

    token = secrets.token_urlsafe(32)
    app = create_node_app(home, token)
    print(f"Open http://127.0.0.1:{port}/?token={token} (this machine only; Ctrl-C stops)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)


node_app.command("witness")(witness)
