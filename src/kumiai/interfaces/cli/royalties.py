"""`kumiai spinout …`, `kumiai licence …`, `kumiai revenue report`, `kumiai royalties …`.

Thin calls into services.spinouts, services.licences and services.royalties; each command
imports its service and Rich itself, so that `--help` loads neither. `royalties verify`
needs no consortium home: it reads a ledger export alone, as an auditor would.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kumiai.interfaces.cli.context import consortium, when
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_document

if TYPE_CHECKING:
    from kumiai.services.licences import LicenceInfo
    from kumiai.services.royalties import RoyaltyVerification
    from kumiai.services.spinouts import SpinoutInfo

spinout_app = typer.Typer(help="Spin-out companies, created by board motion.", no_args_is_help=True)
licence_app = typer.Typer(
    help="Licences of released models, granted by motion.", no_args_is_help=True
)
revenue_app = typer.Typer(help="Licensees' revenue reports.", no_args_is_help=True)
royalties_app = typer.Typer(
    help="Royalty statements, and their offline recomputation.", no_args_is_help=True
)


def _yen(amount: int) -> str:
    return f"¥{amount:,}"


def _motion_proposed(info: object) -> None:
    from kumiai.interfaces.cli.board import _motion_lines

    _motion_lines(info)  # type: ignore[arg-type]


@spinout_app.command("create")
def spinout_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The spin-out company's member name."),
    founders: str = typer.Option(..., help="Its founding members: 'a,b' (they do not vote)."),
    theme: str = typer.Option(None, help="The theme it is founded from (or --project)."),
    project: str = typer.Option(None, help="The project it is founded from (or --theme)."),
    by: str = typer.Option(..., help="The seat holder proposing the create-spinout motion."),
) -> None:
    """Propose a create-spinout motion; when it passes, the spin-out joins as a member."""
    from kumiai.services import spinouts

    names = tuple(f.strip() for f in founders.split(",") if f.strip())
    info = spinouts.propose_spinout(
        consortium(ctx), name=name, founders=names, theme=theme, project=project, proposer=by
    )
    _motion_proposed(info)


def _spinout_line(s: "SpinoutInfo") -> list[str]:
    origin = f"theme {s.theme}" if s.theme else f"project {s.project}"
    return [s.name, ", ".join(s.founders), origin, s.motion, when(s.created_at), s.key_fingerprint]


@spinout_app.command("list")
def spinout_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Spin-outs created by the board, their founders and origin."""
    if remote_document(as_json, "/spinouts"):
        return
    from kumiai.services import spinouts

    listing = spinouts.list_spinouts(consortium(ctx))
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("spin-out", "founders", "from", "motion", "created", "key")
    for s in listing:
        table.add_row(*_spinout_line(s))
    console.print(table)


@spinout_app.command("show")
def spinout_show(
    ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """One spin-out: founders, origin, the motion that created it, its key."""
    if remote_document(as_json, "/spinouts/{}", name):
        return
    from kumiai.services import spinouts

    info = spinouts.show_spinout(consortium(ctx), name)
    if as_json:
        print_json(info)
        return
    from kumiai.interfaces.cli.context import console

    name_, founders, origin, motion, created, key = _spinout_line(info)
    console.print(
        f"Spin-out [bold]{name_}[/], from {origin}, founded by {founders}; created by "
        f"{motion} on {created} UTC; key {key}"
    )


@licence_app.command("propose")
def licence_propose(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="A released model version, e.g. heart-disease-v1."),
    licensee: str = typer.Option(..., help="The member receiving the licence."),
    field: str = typer.Option(..., help="Field of use, e.g. 'cardiology triage'."),
    territory: str = typer.Option(..., help="Territory, e.g. 'JP'."),
    starts: str = typer.Option(..., help="First day of the term, YYYY-MM-DD."),
    ends: str = typer.Option(..., help="Last day of the term, YYYY-MM-DD."),
    royalty_bp: int = typer.Option(..., help="Royalty rate in basis points (500 = 5 %)."),
    restriction: list[str] = typer.Option([], help="A use restriction (repeatable)."),
    by: str = typer.Option(..., help="The seat holder proposing the grant-licence motion."),
) -> None:
    """Propose a grant-licence motion; when it passes, the licence is granted."""
    from kumiai.services import licences

    info = licences.propose_licence(
        consortium(ctx),
        model=model,
        licensee=licensee,
        field_of_use=field,
        territory=territory,
        starts=starts,
        ends=ends,
        royalty_bp=royalty_bp,
        restrictions=tuple(restriction),
        proposer=by,
    )
    _motion_proposed(info)


def _licence_lines(info: "LicenceInfo") -> None:
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    t = info.terms
    console.print(
        f"Licence [bold]{info.licence}[/]: {info.model} to {info.licensee}, granted by "
        f"{info.motion} on {when(info.granted_at)} UTC"
    )
    console.print(
        f"Field of use: {t['field_of_use']}; territory: {t['territory']}; "
        f"term {t['starts']} to {t['ends']}; royalty {t['royalty_rate_bp']} bp"
    )
    for rule in t["restrictions"]:
        console.print(f"Restriction: {rule}")
    if info.revenue:
        table = Table("period", "revenue", "royalty", "association", "payouts")
        for r in info.revenue:
            payouts = ", ".join(f"{m} {_yen(y)}" for m, y in r.payouts.items())
            table.add_row(
                r.period, _yen(r.revenue_yen), _yen(r.royalty_yen), _yen(r.association_yen), payouts
            )
        console.print(table)


@licence_app.command("list")
def licence_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Licences granted: licensee, model, term, rate, revenue reported."""
    if remote_document(as_json, "/licences"):
        return
    from kumiai.services import licences

    listing = licences.list_licences(consortium(ctx))
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("licence", "licensee", "model", "term", "rate", "revenue", "royalties")
    for i in listing:
        table.add_row(
            i.licence,
            i.licensee,
            i.model,
            f"{i.terms['starts']} to {i.terms['ends']}",
            f"{i.terms['royalty_rate_bp']} bp",
            _yen(sum(r.revenue_yen for r in i.revenue)),
            _yen(sum(r.royalty_yen for r in i.revenue)),
        )
    console.print(table)


@licence_app.command("show")
def licence_show(
    ctx: typer.Context, licence: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """One licence: its terms and restrictions, each period's revenue and payouts."""
    if remote_document(as_json, "/licences/{}", licence):
        return
    from kumiai.services import licences

    info = licences.show_licence(consortium(ctx), licence)
    if as_json:
        print_json(info)
        return
    _licence_lines(info)


@revenue_app.command("report")
def revenue_report(
    ctx: typer.Context,
    licence: str = typer.Argument(...),
    period: str = typer.Option(..., help="A quarter (2027-Q1) or a month (2027-03)."),
    amount: int = typer.Option(..., help="The period's revenue in whole yen."),
    by: str = typer.Option(..., help="The licensee; its node signs the report."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The licensee reports a period's revenue; the royalties are distributed at once."""
    from kumiai.services import royalties

    line = royalties.report_revenue(
        consortium(ctx), licence, period=period, revenue_yen=amount, by=by
    )
    if as_json:
        print_json(line)
        return
    from kumiai.interfaces.cli.context import console

    payouts = ", ".join(f"{m} {_yen(y)}" for m, y in line.payouts.items())
    console.print(
        f"{by} reported {_yen(line.revenue_yen)} for {period}: royalty {_yen(line.royalty_yen)}, "
        f"association {_yen(line.association_yen)}; {payouts}"
    )


@royalties_app.command("statement")
def royalties_statement(
    ctx: typer.Context,
    member: str = typer.Option(None, help="One member's statement (default: every member)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Each member's royalties per licence and period, with the totals."""
    if remote_document(as_json, "/royalties/statement", member=member):
        return
    from kumiai.services import royalties

    result = royalties.statements(consortium(ctx), member)
    if as_json:
        print_json(result)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    for statement in result.statements:
        table = Table(
            "licence", "model", "period", "revenue", "royalty", "association", "payout",
            title=f"{statement.member}: {_yen(statement.total_yen)}",
        )  # fmt: skip
        for x in statement.lines:
            table.add_row(
                x.licence,
                x.model,
                x.period,
                _yen(x.revenue_yen),
                _yen(x.royalty_yen),
                _yen(x.association_yen),
                _yen(x.payout_yen),
            )
        console.print(table)
    console.print(
        f"All licences: revenue {_yen(result.revenue_yen)}, royalties {_yen(result.royalty_yen)}, "
        f"association {_yen(result.association_yen)}"
    )


@royalties_app.command("verify")
def royalties_verify(
    export: Path = typer.Argument(..., help="A ledger export (`kumiai ledger export FILE`)."),
    keys: Path = typer.Option(None, help="JSON {member: public key} to pin, from `export --keys`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Offline: verify the export, then recompute every royalty from it, to the yen."""
    from kumiai.services import royalties

    verdict = royalties.verify_royalties(export, keys)
    if as_json:
        print_json({**_verdict_document(verdict), "ok": verdict.ok})
    else:
        _verdict_lines(verdict)
    if not verdict.ok:
        raise typer.Exit(1)


def _verdict_document(verdict: "RoyaltyVerification") -> dict:
    from kumiai.interfaces.cli.output import plain

    return plain(verdict)  # type: ignore[return-value]


def _verdict_lines(verdict: "RoyaltyVerification") -> None:
    from rich.markup import escape

    from kumiai.interfaces.cli.context import console

    for finding in verdict.ledger_findings:
        console.print(f"[red]ledger:[/] {escape(finding)}")
    for m in verdict.mismatches:
        console.print(f"[red]mismatch:[/] {escape(m['problem'])}")
    if verdict.ok:
        console.print(
            f"[green]ok[/]: the ledger verifies and all {verdict.distributions} royalty "
            "distributions match to the yen"
        )
    else:
        console.print(
            f"[red]FAILED[/]: {len(verdict.ledger_findings)} ledger findings, "
            f"{len(verdict.mismatches)} royalty mismatches in {verdict.distributions} distributions"
        )
