"""`kumiai charter ...` and `kumiai motion ...`: the board's charter, motions and votes.

Thin calls into services.charter and services.motions; each command imports its service
and Rich itself, so that `--help` loads neither.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kumiai.interfaces.cli.context import consortium, when
from kumiai.interfaces.cli.output import JSON_OPTION, print_json
from kumiai.interfaces.cli.remote import remote_document

if TYPE_CHECKING:
    from kumiai.domain.charter import Decision, Fraction, Rule
    from kumiai.services.charter import CharterInfo
    from kumiai.services.motions import MotionInfo

charter_app = typer.Typer(
    help="The charter: board seats, decision rules, conflicts.", no_args_is_help=True
)
motion_app = typer.Typer(help="Board motions and signed votes.", no_args_is_help=True)

RULE_HELP = "A decision's rule, DECISION=QUORUM,THRESHOLD,DAYS, e.g. approve-project=1/2,2/3,7."
SHARE_HELP = "The association's share of each royalty, e.g. 1/5 (default when unstated: 1/5)."


def _share(text: str | None) -> "Fraction | None":
    from kumiai.domain.charter import Fraction

    return Fraction.parse(text, "the association share", zero=True) if text else None


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(sorted({t.strip() for t in (text or "").split(",") if t.strip()}))


def _rules(texts: list[str]) -> "dict[Decision, Rule]":
    from kumiai.domain.charter import DAY, Fraction, Rule, decision_of
    from kumiai.domain.errors import InvalidInput

    rules = {}
    for text in texts:
        name, _, spec = text.partition("=")
        parts = spec.split(",")
        if len(parts) != 3 or not parts[2].strip().isdigit() or int(parts[2]) < 1:
            raise InvalidInput(
                f"--rule {text!r} is not DECISION=QUORUM,THRESHOLD,DAYS; {RULE_HELP}"
            )
        decision = decision_of(name.strip())
        rules[decision] = Rule(
            Fraction.parse(parts[0].strip(), f"the quorum of {decision.value}"),
            Fraction.parse(parts[1].strip(), f"the threshold of {decision.value}"),
            int(parts[2]) * DAY,
        )
    return rules


def _charter_lines(info: "CharterInfo") -> None:
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    doc = info.document
    console.print(
        f"Charter version [bold]{info.version}[/] ({info.status}), digest {info.digest[:16]}…"
        + (f", adopted {when(info.adopted_at)}" if info.adopted_at else "")
        + (f" by {info.motion}" if info.motion else "")
    )
    console.print(f"Board seats: {', '.join(doc['seats'])}")
    share = doc.get("royalties", {}).get("association_share")
    console.print(f"Association share of royalties: {share or '1/5 (the default)'}")
    if info.awaiting:
        console.print(f"Awaiting the signatures of: {', '.join(info.awaiting)}")
    table = Table("decision", "quorum", "threshold", "voting period", "does not vote")
    for decision, rule in doc["rules"].items():
        conflicted = ", ".join(doc["conflicts"].get(decision, [])) or "—"
        days = rule["period"] / 86_400
        table.add_row(decision, rule["quorum"], rule["threshold"], f"{days:g} days", conflicted)
    console.print(table)


@charter_app.command("propose")
def charter_propose(
    ctx: typer.Context,
    by: str = typer.Option(..., help="The founding member proposing the charter."),
    founders: str = typer.Option("", help="Founders who must all sign: 'a,b,c' (all members)."),
    seats: str = typer.Option("", help="Board seats: 'a,b' (default: the founders)."),
    rule: list[str] = typer.Option([], help=RULE_HELP),
    association_share: str = typer.Option(None, help=SHARE_HELP),
) -> None:
    """Propose the founding charter; it is adopted when every founder has signed it."""
    from kumiai.services import charter

    info = charter.propose_charter(
        consortium(ctx),
        proposed_by=by,
        founders=_csv(founders),
        seats=_csv(seats),
        rules=_rules(rule),
        association_share=_share(association_share),
    )
    _charter_lines(info)


@charter_app.command("sign")
def charter_sign(
    ctx: typer.Context, member: str = typer.Argument(..., help="A founder; its node signs.")
) -> None:
    """A founder signs the proposed charter at its node; the last signature adopts it."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import charter

    info = charter.sign_charter(consortium(ctx), member)
    if info.status == "adopted":
        console.print(f"{member} signed; charter version {info.version} is [bold]adopted[/].")
    else:
        console.print(f"{member} signed; still awaiting {', '.join(info.awaiting)}.")


@charter_app.command("amend")
def charter_amend(
    ctx: typer.Context,
    by: str = typer.Option(..., help="The seat holder proposing the amendment."),
    seats: str = typer.Option("", help="The new board seats: 'a,b' (default: unchanged)."),
    rule: list[str] = typer.Option([], help=RULE_HELP),
    association_share: str = typer.Option(None, help=SHARE_HELP),
) -> None:
    """Propose the next charter version: an amend-charter motion under the current one."""
    from kumiai.domain.charter import amended
    from kumiai.services import charter, motions

    home = consortium(ctx)
    with home.sessions() as session:
        current = charter.adopted_charter(session)
    if current is None:
        from kumiai.domain.errors import StateError

        raise StateError("no charter is adopted yet; sign the proposed one first")
    changes: dict[str, Any] = {"rules": _rules(rule)}
    if seats:
        changes["seats"] = _csv(seats)
    if association_share:
        changes["association_share"] = _share(association_share)
    new = amended(current, **changes)
    info = motions.propose_motion(
        home, decision="amend-charter", payload={"charter": new.document()}, proposer=by
    )
    _motion_lines(info)


@charter_app.command("show")
def charter_show(
    ctx: typer.Context,
    version: int = typer.Option(None, help="A version (default: the one in force)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the charter in force (or being signed): seats, rules, conflicts, signatures."""
    if remote_document(as_json, "/charter", version=None if version is None else str(version)):
        return
    from kumiai.services import charter

    info = charter.show_charter(consortium(ctx), version)
    if as_json:
        print_json(info)
        return
    _charter_lines(info)


def _payload(sets: list[str]) -> dict[str, Any]:
    """--set key=value: JSON when it parses as a list or object, a file's JSON after @."""
    from kumiai.domain.errors import InvalidInput

    payload: dict[str, Any] = {}
    for text in sets:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--set {text!r} is not KEY=VALUE, e.g. --set project=heart")
        value = value.strip()
        if value.startswith("@"):
            try:
                payload[key.strip()] = json.loads(Path(value[1:]).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidInput(
                    f"--set {key}: cannot read JSON from {value[1:]} ({exc})"
                ) from None
        elif value[:1] in "[{":
            try:
                payload[key.strip()] = json.loads(value)
            except ValueError as exc:
                raise InvalidInput(f"--set {key}: {value!r} is not JSON ({exc})") from None
        else:
            payload[key.strip()] = value
    return payload


def _motion_lines(info: "MotionInfo") -> None:
    from kumiai.interfaces.cli.context import console

    console.print(
        f"Motion [bold]{info.id}[/] ({info.decision}) is {info.status}; proposed by "
        f"{info.proposer} under charter version {info.charter_version}; votes until "
        f"{when(info.closes_at)} UTC"
    )
    console.print(f"Eligible seats: {', '.join(info.eligible)}")
    votes = ", ".join(f"{m} {c}" for m, c in info.votes.items()) or "none yet"
    console.print(f"Votes: {votes}")
    if info.tally:
        console.print(f"Tally: {info.tally['reason']}")


@motion_app.command("propose")
def motion_propose(
    ctx: typer.Context,
    decision: str = typer.Argument(..., help="approve-project, amend-charter, grant-licence…"),
    by: str = typer.Option(..., help="The seat holder proposing it."),
    set_: list[str] = typer.Option(
        [], "--set", help="What the motion decides: KEY=VALUE, e.g. project=heart."
    ),
) -> None:
    """Propose a motion to the board under the charter in force."""
    from kumiai.services import motions

    info = motions.propose_motion(
        consortium(ctx), decision=decision, payload=_payload(set_), proposer=by
    )
    _motion_lines(info)


@motion_app.command("vote")
def motion_vote(
    ctx: typer.Context,
    motion: str = typer.Argument(...),
    choice: str = typer.Argument(..., help="yes, no or abstain."),
    by: str = typer.Option(..., help="The voting seat; its node signs the vote."),
) -> None:
    """Cast a seat's vote, signed by its node over the motion's digest."""
    from kumiai.interfaces.cli.context import console
    from kumiai.services import motions

    info = motions.cast_vote(consortium(ctx), motion, by, choice)
    console.print(
        f"{by} voted {choice} on {info.id}; {len(info.votes)} of {len(info.eligible)} voted."
    )


@motion_app.command("close")
def motion_close(ctx: typer.Context, motion: str = typer.Argument(...)) -> None:
    """Close a motion after its voting period (or once every seat voted); tally and act."""
    from kumiai.services import motions

    _motion_lines(motions.close_motion(consortium(ctx), motion))


@motion_app.command("show")
def motion_show(
    ctx: typer.Context, motion: str = typer.Argument(...), as_json: bool = JSON_OPTION
) -> None:
    """Show a motion: what it decides, who may vote, the votes and the tally."""
    if remote_document(as_json, "/motions/{}", motion):
        return
    from kumiai.services import motions

    info = motions.show_motion(consortium(ctx), motion)
    if as_json:
        print_json(info)
        return
    _motion_lines(info)


@motion_app.command("list")
def motion_list(
    ctx: typer.Context,
    status: str = typer.Option(None, help="open, passed or failed."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List motions, newest last."""
    if remote_document(as_json, "/motions", status=status):
        return
    from kumiai.services import motions

    listing = motions.list_motions(consortium(ctx), status)
    if as_json:
        print_json(listing)
        return
    from rich.table import Table

    from kumiai.interfaces.cli.context import console

    table = Table("motion", "decision", "proposer", "status", "votes", "closes")
    for m in listing:
        table.add_row(
            m.id,
            m.decision,
            m.proposer,
            m.status,
            f"{len(m.votes)}/{len(m.eligible)}",
            when(m.closes_at),
        )
    console.print(table)
