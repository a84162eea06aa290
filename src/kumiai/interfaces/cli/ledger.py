"""`kumiai ledger`: read, prove, export, verify and witness the transparency ledger.

Each command imports the service and Rich itself, so that `--help` loads neither.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kumiai.interfaces.cli.context import consortium
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import (
    coordinator_url,
    pinned_coordinator_key,
    remote_document,
    remote_download,
    remote_fetch,
)

if TYPE_CHECKING:
    from kumiai.domain.audit import AuditReport

ledger_app = typer.Typer(
    help="The transparency ledger: every act, signed, verifiable offline.", no_args_is_help=True
)


@ledger_app.command("show")
def show(
    ctx: typer.Context,
    member: str = typer.Option(None, help="Entries by or about this member."),
    dataset: str = typer.Option(None, help="Entries about this dataset."),
    project: str = typer.Option(None, help="Entries about this project."),
    type_: str = typer.Option(None, "--type", help="Kind or prefix, e.g. 'agreement.'."),
    last: int = typer.Option(None, help="Only the last N matching entries."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List ledger entries, oldest first, with optional filters."""
    filters = {"member": member, "dataset": dataset, "project": project, "kind": type_}
    if remote_document(as_json, "/ledger/entries", **filters, last=_text(last)):
        return
    from kumiai.services import transparency

    entries = transparency.show_entries(
        consortium(ctx), member=member, dataset=dataset, project=project, kind=type_, limit=last
    )
    if as_json:
        print_json(entries)  # whole payloads: the table shortens them
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("seq", "time (UTC)", "actor", "kind", "details")
    for e in entries:
        details = ", ".join(
            f"{k}={v}"
            for k, v in e.payload.items()
            if isinstance(v, str | int | float) and k != "public_key"
        )
        table.add_row(
            str(e.seq), e.time.replace("T", " ").rstrip("Z"), e.actor, e.kind, escape(details[:120])
        )
    console.print(table)


@ledger_app.command("prove")
def prove(ctx: typer.Context, seq: int = typer.Argument(..., help="Entry number.")) -> None:
    """Print an inclusion proof of one entry under the latest signed tree head."""
    asked = remote_fetch("/ledger/entries/{}/proof", str(seq))
    if asked is not None:
        print(json.dumps(asked.document, indent=2))
        return
    from kumiai.services import transparency

    proof = transparency.prove_inclusion(consortium(ctx), seq)
    print(json.dumps(proof.document(), indent=2))


def _text(number: int | None) -> str | None:
    return None if number is None else str(number)


@ledger_app.command("export")
def export(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSON-lines file to write."),
    keys: Path = typer.Option(None, help="Also write the members' public keys here."),
) -> None:
    """Write the whole ledger (entries, tree heads, cosignatures) as JSON lines.

    With --coordinator, the coordinator's export is streamed here: the same bytes, checked
    against the length and SHA-256 it announced, written only once complete."""
    from kumiai.adapters.files import write_json_atomic
    from kumiai.interfaces.cli.context import console

    if remote_download("/ledger/export", file) is not None:
        count = _exported_entries(file)
        fetched = remote_fetch("/ledger/keys") if keys is not None else None
        public_keys = fetched.document if fetched else None
    else:
        from kumiai.services import transparency

        home = consortium(ctx)
        count = transparency.export_ledger(home, file)
        public_keys = transparency.member_keys(home) if keys is not None else None
    console.print(f"Exported {count} entries to [bold]{file}[/].")
    if keys is not None:
        write_json_atomic(keys, public_keys)
        console.print(
            f"Public keys written to [bold]{keys}[/] (give them to auditors "
            "through a separate channel)."
        )


def _exported_entries(file: Path) -> int:
    """The number of entries an export's header line announces."""
    from kumiai.domain.errors import DataError

    with file.open("rb") as handle:
        try:
            return int(json.loads(handle.readline())["entries"])
        except (ValueError, KeyError, TypeError):
            raise DataError(
                f"{file} does not start with a ledger export's header; check it with "
                f"`kumiai ledger verify {file}`"
            ) from None


def _report(report: "AuditReport", source: str, as_json: bool) -> None:
    from kumiai.domain.audit import report_document

    if as_json:  # the shape verifiers/js/verify.mjs prints, so two verifiers can be compared
        print(json.dumps(report_document(report), indent=2, ensure_ascii=False))
        if not report.ok:
            raise typer.Exit(1)
        return
    from rich.markup import escape

    from kumiai.interfaces.cli.context import console, errors

    if report.ok:
        console.print(
            f"[green]verified[/] {source}: {report.entries} entries, {report.heads} "
            f"tree heads, {report.cosignatures} cosignatures; root {report.root[:16]}…"
        )
        return
    errors.print(f"[red]verification failed[/] for {source}: {len(report.findings)} problem(s)")
    for finding in report.findings:
        errors.print(f"  {escape(str(finding))}", highlight=False)
    raise typer.Exit(1)


@ledger_app.command("verify")
def verify(
    ctx: typer.Context,
    file: Path = typer.Argument(None, help="An export; default: this consortium's ledger."),
    keys: Path = typer.Option(None, help="JSON {member: public key} to pin, from `export --keys`."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the verdict of every entry, head and cosignature as JSON."
    ),
) -> None:
    """Verify every signature, the Merkle tree, every tree head and every cosignature.

    With --coordinator and no FILE: the coordinator's export, streamed and verified here."""
    from kumiai.services import transparency

    if file is None and coordinator_url():
        _verify_remote(keys, as_json)
    elif file is None:
        report = transparency.verify_ledger(consortium(ctx), keys)
        _report(report, "this consortium's ledger", as_json)
    else:
        _report(transparency.verify_export(file, keys), str(file), as_json)


def _verify_remote(keys: Path | None, as_json: bool) -> None:
    """The coordinator's ledger, streamed into a temporary export and verified here, offline:
    nothing the coordinator says about its own ledger is believed, and a node home's pinned
    coordinator key is held to."""
    import tempfile

    from kumiai.services import transparency

    with tempfile.TemporaryDirectory(prefix="kumiai-verify-") as folder:
        export = Path(folder) / "ledger.jsonl"
        remote_download("/ledger/export", export)
        report = transparency.verify_export(export, keys, pinned_coordinator_key())
    _report(report, f"the ledger of {coordinator_url()}", as_json)


@ledger_app.command("witness")
def witness(ctx: typer.Context) -> None:
    """Have every member's node check the latest tree head against its own, and cosign it."""
    from rich.markup import escape

    from kumiai.interfaces.cli.context import console
    from kumiai.services import transparency

    verdicts = transparency.witness_all(consortium(ctx))
    refused = False
    for member, verdict in verdicts.items():
        colour = "green" if verdict.accepted else "red"
        console.print(f"[{colour}]{member}[/]: {escape(verdict.reason)}")
        refused |= not verdict.accepted
    if refused:
        raise typer.Exit(1)
