"""`kumiai node witness`: a member's node witnesses the coordinator's log over HTTPS.

It runs on the member's own machine with only its node home, through the node's one signed
client (every request signed with the member's key, the consortium's CA alone trusted): it
fetches the signed head,
checks it extends the last head it witnessed, cosigns and publishes it, then compares the
heads the other witnesses cosigned (kumiai.node.gossip). Exit codes: 0 one log; 3 split
view, with the evidence in NODE_HOME/split-views/; 4 untrusted (something does not verify,
but nothing proves a fork); 1 or 2 a mistake or an unreachable coordinator.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kumiai.interfaces.cli.output import JSON_OPTION, print_json

if TYPE_CHECKING:
    from kumiai.node.gossip import RoundReport


def witness(
    home: Path = typer.Option(..., "--home", help="This member's node home (its key and state)."),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        help="The coordinator's API, https://HOST:PORT (default: the one pinned at node init).",
    ),
    ca: Path = typer.Option(
        None,
        "--ca",
        help="The consortium's CA certificate (PEM); default, and checked against: the pinned one.",
    ),
    member: str = typer.Option(
        None, "--member", help="The member this node is (checked against its home)."
    ),
    every: float = typer.Option(
        None, "--every", min=1, help="Witness every SECONDS until stopped, or a split view."
    ),
    once: bool = typer.Option(False, "--once", help="One round, then exit (the default)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Witness the log: check, cosign and publish the head; compare the other witnesses'."""
    import time

    from kumiai.domain.errors import InvalidInput, KumiaiError
    from kumiai.node.gossip import open_channel, witness_round
    from kumiai.node.home import NodeHome

    if once and every is not None:
        raise InvalidInput("give --once or --every SECONDS, not both")
    node = NodeHome(home)
    name = node.member_name
    if member is not None and member != name:
        raise InvalidInput(
            f"the node home {home} belongs to {name!r}, not {member!r}; give that member's home"
        )
    from kumiai.node.remote import pinned_ca, pinned_url

    client = open_channel(node, coordinator or pinned_url(home), pinned_ca(home, ca))
    try:
        while True:
            try:
                report = witness_round(node, client)
            except KumiaiError as exc:
                if every is None:
                    raise
                _say_error(f"round failed, retrying in {every:g} s: {exc}")
            else:
                _show(report, as_json)
                if every is None or report.exit_code != 0:
                    raise typer.Exit(report.exit_code)
            time.sleep(every)
    finally:
        client.close()


def _say_error(message: str) -> None:
    from rich.markup import escape

    from kumiai.interfaces.cli.context import errors

    errors.print(f"[red]error:[/] {escape(message)}", highlight=False)


def _show(report: "RoundReport", as_json: bool) -> None:
    """Print the round; a split view is said loudly on stderr, whatever the format."""
    from rich.markup import escape

    from kumiai.domain.split_view import Outcome
    from kumiai.interfaces.cli.context import console, errors

    if as_json:
        print_json(report.document())
    else:
        head = report.head
        if report.cosigned:
            console.print(
                f"{report.witness} cosigned head {head.size} ({head.root[:16]}…) "
                f"of {report.coordinator}: {escape(report.reason)}",
                highlight=False,
            )
        for peer in report.peers:
            mark = {"agree": "[green]agrees[/]", "split-view": "[red]SPLIT VIEW[/]"}.get(
                peer.comparison.outcome.value, "[yellow]untrusted[/]"
            )
            console.print(
                f"  {escape(peer.witness)}: {mark}: {escape(peer.comparison.reason)}",
                highlight=False,
            )
    if report.own is not None:
        what = "SPLIT VIEW" if report.own.outcome is Outcome.SPLIT_VIEW else "refused"
        errors.print(
            f"[red]{what}:[/] {report.witness} did not cosign head {report.head.size}: "
            f"{escape(report.own.reason)}",
            highlight=False,
        )
    if report.evidence:
        errors.print(
            "[red]SPLIT VIEW:[/] the coordinator showed witnesses logs that cannot be one "
            f"history. Evidence (both signed heads): {', '.join(map(str, report.evidence))}",
            highlight=False,
        )
    elif report.exit_code:
        errors.print(
            "[yellow]untrusted:[/] a head or cosignature did not verify; nothing was cosigned "
            "for it (see above)",
            highlight=False,
        )
