"""`agreement export|import --odrl`: agreements as ODRL 2.2 policies (docs/odrl.md).

Both only read the consortium; the export also reads a remote coordinator's
(`--coordinator`). Services and Rich load inside each command.
"""

import json
from pathlib import Path

import typer

from kumiai.domain.errors import InvalidInput
from kumiai.interfaces.cli.context import consortium
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_fetch

ODRL_OPTION = typer.Option(False, "--odrl", help="As an ODRL 2.2 policy (JSON-LD).")
_ONLY_ODRL = (
    "give --odrl: ODRL 2.2 is the exchange format (`kumiai agreement show ID --json` "
    "prints kumiai's own signed terms)"
)


def agreement_export(
    ctx: typer.Context,
    agreement_id: str = typer.Argument(...),
    odrl: bool = ODRL_OPTION,
    out: Path = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Export a signed agreement as an ODRL policy, with the steward's signature."""
    if not odrl:
        raise InvalidInput(_ONLY_ODRL)
    fetched = remote_fetch("/agreements/{}/odrl", agreement_id)
    if fetched is not None:
        policy = fetched.document
    else:
        from kumiai.services.odrl import export_odrl

        policy = export_odrl(consortium(ctx), agreement_id)
    text = json.dumps(policy, indent=2, ensure_ascii=False)
    if out is None:
        print(text)
        return
    from kumiai.adapters.files import write_atomic
    from kumiai.interfaces.cli.context import console

    write_atomic(out, (text + "\n").encode("utf-8"))
    console.print(f"Agreement {agreement_id} written to {out} as an ODRL 2.2 policy.")


def agreement_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="An ODRL policy exported by kumiai."),
    odrl: bool = ODRL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Read an ODRL policy: refuse what kumiai cannot enforce, check the signature, compare."""
    if not odrl:
        raise InvalidInput(_ONLY_ODRL)
    from kumiai.services.odrl import IDENTICAL, import_odrl

    try:
        text = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None
    result = import_odrl(consortium(ctx), text)
    if as_json:
        print_json(result)
        return
    from rich.markup import escape
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    terms = Table("term", "value", title=f"{file.name}: terms as the node checks them")
    for key, value in sorted(result.terms.items()):
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        terms.add_row(key, escape(shown))
    console.print(terms)
    agreement = result.terms["agreement_id"]
    console.print(f"signed by {result.steward} with key {result.key_fingerprint}: signature valid")
    if result.stored == IDENTICAL:
        revoked = " (revoked)" if result.revoked else ""
        console.print(f"identical, byte for byte, to agreement {agreement} held here{revoked}")
    elif result.differences:
        console.print(
            f"[red]differs[/] from agreement {agreement} held here in: "
            + ", ".join(result.differences)
        )
    else:
        console.print(
            f"agreement {agreement} is not held here; import records nothing: a steward "
            "signs a request (`kumiai agreement sign`) to make an agreement in this consortium"
        )
