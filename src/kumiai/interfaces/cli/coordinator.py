"""`kumiai coordinator …`: setting up the coordinator's service."""

from pathlib import Path

import typer

from kumiai.interfaces.cli.context import home_of
from kumiai.interfaces.cli.output import JSON_OPTION, print_json

coordinator_app = typer.Typer(
    help="The coordinator's service: its TLS certificates, the CA members pin, its HTTPS API.",
    no_args_is_help=True,
)


@coordinator_app.command("init")
def coordinator_init(
    ctx: typer.Context,
    host: list[str] = typer.Option(
        ..., "--host", help="A host name or IP the members reach the coordinator at (repeat)."
    ),
    cert: Path = typer.Option(None, help="Your own server certificate (PEM) instead of ours."),
    key: Path = typer.Option(None, help="Its private key (PEM)."),
    ca_cert: Path = typer.Option(None, help="The CA certificate (PEM) that signed it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create the consortium's CA and the coordinator's certificate (or check your own)."""
    from kumiai.services.coordinator_tls import init_tls

    info = init_tls(home_of(ctx), host, cert=cert, key=key, ca_cert=ca_cert)
    if as_json:
        print_json(info)
        return
    from kumiai.interfaces.cli.context import console

    made = "a new consortium CA" if info.own_ca else "your CA"
    console.print(
        f"TLS ready in [bold]{info.folder}[/], signed by {made}, for {', '.join(info.hosts)}.\n"
        f"CA fingerprint (SHA-256), which every member's node pins when it joins:\n"
        f"  {info.ca_fingerprint}\n"
        f"The private keys ({info.key.name}"
        + (", ca.key" if info.own_ca else "")
        + ") are readable by this user only; back them up offline."
    )


@coordinator_app.command("serve")
def coordinator_serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="The address to listen on."),
    port: int = typer.Option(8443, help="The port to listen on."),
    superlink_port: int = typer.Option(
        None,
        "--superlink-port",
        help="Also run Flower's SuperLink on this port (TLS, node authentication on).",
    ),
) -> None:
    """Serve the HTTPS API (OpenAPI at /docs) and the dashboard (/ui/, sign-in with a key)."""
    from kumiai.interfaces.api.server import serve  # FastAPI and uvicorn: this command only
    from kumiai.interfaces.cli.context import errors
    from kumiai.services.coordinator_tls import serving_files

    home = home_of(ctx)
    serving_files(home)  # refused here, before anything starts
    where = (
        f"https://{host}:{port}/ (routes at /docs; the dashboard at /ui/, signed in with "
        "`kumiai node sign-in`)"
    )
    if superlink_port is None:
        errors.print(f"Serving {home} at {where}; Ctrl-C stops.")
        serve(home, host, port)
        return
    from kumiai.interfaces.cli.context import consortium as open_consortium
    from kumiai.services.deployment import members_without_key, start_superlink
    from kumiai.services.node_admission import AdmissionKeeper

    consortium = open_consortium(ctx)
    link = start_superlink(consortium, superlink_port, host)
    keeper = AdmissionKeeper(
        consortium, link, lambda line: errors.print(f"SuperLink: {line}", markup=False)
    )
    try:
        keeper.start()  # members that join (or change keys) are admitted without a restart
        missing = members_without_key(consortium)
        errors.print(
            f"SuperLink (pid {link.pid}) at {host}:{superlink_port}, TLS, admitting the nodes "
            f"of {', '.join(sorted(link.nodes)) or 'no member'}"
            + (f"; no SuperNode key yet for {', '.join(missing)}" if missing else "")
            + f". Serving {home} at {where}; researchers start jobs on it with `kumiai train "
            "PROJECT --coordinator URL`; Ctrl-C stops both."
        )
        serve(home, host, port, link.address)
    finally:
        keeper.stop()
        link.stop()


@coordinator_app.command("grant")
def coordinator_grant(
    ctx: typer.Context,
    role: str = typer.Option(..., help="The read-only role: auditor (auditors and investors)."),
    key: str = typer.Option(..., help="Their Ed25519 public key (base64 of 32 bytes)."),
    name: str = typer.Option(..., help="A name for the key holder (a slug: kpmg-audit)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a read-only key for the API (signed into the ledger as access.granted)."""
    from kumiai.services.access import grant_access
    from kumiai.services.consortium import open_consortium

    info = grant_access(open_consortium(home_of(ctx)), name=name, role=role, public_key=key)
    if as_json:
        print_json(info)
        return
    from kumiai.interfaces.cli.context import console

    console.print(
        f"Granted [bold]{info.name}[/] the {info.role} role for key {info.key_fingerprint}: "
        "it may read the coordinator's records with signed requests, and write nothing."
    )


@coordinator_app.command("invite")
def coordinator_invite(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The new member's name (a slug: st-mary)."),
    kind: str = typer.Option(..., help="university, company, hospital, startup, …"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a one-time token the member's node joins with (kumiai node init --invite)."""
    from kumiai.services.consortium import open_consortium
    from kumiai.services.invitations import invite_member

    info = invite_member(open_consortium(home_of(ctx)), name, kind)
    if as_json:
        print_json(info)
        return
    from kumiai.interfaces.cli.context import console, errors

    errors.print(
        f"Invitation {info.id} for [bold]{info.member}[/] ({info.kind}). Give the token below "
        f"to its IT over a channel you trust; it works once. The node checks the CA "
        f"({info.ca_fingerprint[:16]}…) and the coordinator key "
        f"({info.coordinator_key_fingerprint}) against it:\n"
        "  kumiai node init --home NODE_HOME --coordinator https://HOST:PORT --invite TOKEN"
    )
    console.print(info.token, soft_wrap=True, highlight=False)
