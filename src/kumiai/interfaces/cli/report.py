"""`kumiai report`: the investor, member or board report, from the verified ledger.

A thin call into services.report (with --coordinator, into the coordinator's `/report`,
rendered here); it imports the service, the renderers and Rich inside the command, so
`--help` loads none of them.
"""

from pathlib import Path
from typing import Any

import typer

from kumiai.interfaces.cli.context import consortium

FORMATS = ("html", "md", "json")
_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}


def _format(fmt: str | None, as_json: bool, output: Path | None) -> str:
    from kumiai.domain.errors import InvalidInput

    if as_json:
        if fmt not in (None, "json"):
            raise InvalidInput(f"--json and --format {fmt} disagree; give one of them")
        return "json"
    if fmt is None:
        return _SUFFIXES.get(output.suffix.lower(), "md") if output else "md"
    if fmt not in FORMATS:
        raise InvalidInput(f"--format {fmt!r} is not a format; choose one of {', '.join(FORMATS)}")
    return fmt


def _remote_report(
    audience: str, member: str | None, day: str | None, keys: Path | None
) -> dict[str, Any] | None:
    """The coordinator's report document (`/report`), or None when no coordinator is set."""
    from kumiai.interfaces.cli.remote import coordinator_url, remote_fetch

    url = coordinator_url()
    if url is None:
        return None
    if keys is not None:
        from kumiai.domain.errors import InvalidInput

        raise InvalidInput(
            f"--keys pins keys for a verification made here, but with --coordinator {url} the "
            "coordinator verifies its own ledger; to verify here, run `kumiai ledger export "
            "FILE --coordinator URL`, then `kumiai report --export FILE --keys KEYS`"
        )
    fetched = remote_fetch("/report", audience=audience, member=member, date=day)
    assert fetched is not None
    return dict(fetched.document)


def report(
    ctx: typer.Context,
    audience: str = typer.Option(
        ..., "--for", help="Who reads it: investor, member or board (see docs/report.md)."
    ),
    member: str = typer.Option(None, help="With --for member: the member the report is for."),
    fmt: str = typer.Option(
        None, "--format", help="html, md or json (default: from --output's suffix, else md)."
    ),
    output: Path = typer.Option(None, help="Write the report to this file (default: stdout)."),
    day: str = typer.Option(
        None, "--date", help="The day the report is made, YYYY-MM-DD (default: today, UTC)."
    ),
    export: Path = typer.Option(
        None, help="Report from this ledger export alone (no consortium home needed)."
    ),
    keys: Path = typer.Option(None, help="JSON {member: public key} to pin, from `export --keys`."),
    as_json: bool = typer.Option(False, "--json", help="The same as --format json."),
) -> None:
    """The report per theme and project, every figure citing its ledger entries."""
    import json

    from kumiai.domain.bookkeeping import day_of
    from kumiai.domain.report import audience_of
    from kumiai.services import report as reports

    kind = _format(fmt, as_json, output)
    audience = audience_of(audience)
    on = day_of(day) if day is not None else None
    if export is not None:
        document = reports.report_from_export(
            export, audience, member=member, on=on, keys_file=keys
        )
    elif (fetched := _remote_report(audience, member, day, keys)) is not None:
        document = fetched
    else:
        document = reports.consortium_report(
            consortium(ctx), audience, member=member, on=on, keys_file=keys
        )
    if kind == "json":
        text = json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2) + "\n"
    elif kind == "html":
        from kumiai.interfaces.reports.html import render_html

        text = render_html(document)
    else:
        from kumiai.interfaces.reports.markdown import render_markdown

        text = render_markdown(document)
    if output is None:
        print(text, end="")
        return
    from kumiai.adapters.files import write_atomic
    from kumiai.domain.figures import figures
    from kumiai.interfaces.cli.context import errors

    write_atomic(output, text.encode())
    ledger = document["ledger"]
    errors.print(
        f"Wrote the {audience} report ({kind}) to {output}: {len(figures(document))} figures "
        f"citing {len(document['appendix'])} entries of a verified ledger of {ledger['size']} "
        f"(root {ledger['root'][:16]}…).",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
