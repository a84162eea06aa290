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
    """Serve the read-only HTTPS API (OpenAPI at /docs) until SIGTERM or Ctrl-C."""
    from kumiai.interfaces.api.server import serve  # FastAPI and uvicorn: this command only
    from kumiai.interfaces.cli.context import errors
    from kumiai.services.coordinator_tls import serving_files

    home = home_of(ctx)
    serving_files(home)  # refused here, before anything starts
    if superlink_port is None:
        errors.print(f"Serving {home} at https://{host}:{port}/ (routes at /docs); Ctrl-C stops.")
        serve(home, host, port)
        return
    from kumiai.interfaces.cli.context import consortium as open_consortium
    from kumiai.services.deployment import members_without_key, start_superlink

    consortium = open_consortium(ctx)
    link = start_superlink(consortium, superlink_port, host)
    try:
        missing = members_without_key(consortium)
        errors.print(
            f"SuperLink (pid {link.pid}) at {host}:{superlink_port}, TLS, admitting the nodes "
            f"of {', '.join(sorted(link.nodes)) or 'no member'}"
            + (f"; no SuperNode key yet for {', '.join(missing)}" if missing else "")
            + f". Serving {home} at https://{host}:{port}/ (routes at /docs); Ctrl-C stops both."
        )
        serve(home, host, port)
    finally:
        link.stop()
