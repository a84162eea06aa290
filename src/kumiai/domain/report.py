"""The investor, member and board report, computed from the verified ledger alone.

Pure: it receives the entries of a ledger that has already verified (signatures, tree,
heads) and the day the report is made, and returns the report as one JSON document. The
database is never read, so an investor holding only an export reaches the same figures.
Every figure cites the entries it comes from (`domain.figures`).
"""

from collections.abc import Iterable
from datetime import date
from typing import Any

from kumiai.domain.bookkeeping import (
    CATEGORIES,
    FUND_KINDS,
    Book,
    LicenceRecord,
    MilestoneRecord,
    ProjectRecord,
    VerifiedLedger,
    as_number,
    read_ledger,
)
from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import to_iso
from kumiai.domain.errors import InvalidInput
from kumiai.domain.figures import assign_ids, cited, figure, merge, total
from kumiai.domain.motion import tally

REPORT_TYPE, REPORT_VERSION = "kumiai.report", 1
AUDIENCES = ("investor", "member", "board")
UNTHEMED = "unthemed"
MILESTONE_STATES = ("on-time", "late", "accepted")


def audience_of(text: object) -> str:
    if text not in AUDIENCES:
        raise InvalidInput(
            f"--for {text!r} is not an audience; choose one of {', '.join(AUDIENCES)}"
        )
    return str(text)


def _epsilon_by_job(book: Book) -> dict[tuple[str, str], tuple[float, list[int]]]:
    """Per (job, dataset): the ε spent, and the entries that state it.

    `round.completed` holds each dataset's cumulative ε after the round, so the last one
    counts; a `privacy.recovered` entry raises it to what the node logged (never lowers it).
    """
    spent = {}
    for key, values in book.epsilon.items():
        rounds = [(v, seq) for v, seq, recovered in values if not recovered]
        raised = [(v, seq) for v, seq, recovered in values if recovered]
        value, seqs = (rounds[-1][0], [rounds[-1][1]]) if rounds else (0.0, [])
        if raised and (top := max(raised))[0] > value:
            value, seqs = top[0], [*seqs, top[1]]
        spent[key] = (value, seqs)
    return spent


def _epsilon_figures(
    spent: dict[tuple[str, str], tuple[float, list[int]]], keep: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    jobs = None if keep is None else set(keep)
    totals: dict[str, list[tuple[float, list[int]]]] = {}
    for (job, dataset), value in sorted(spent.items()):
        if jobs is None or job in jobs:
            totals.setdefault(dataset, []).append(value)
    return [
        {
            "dataset": dataset,
            "epsilon": figure(
                sum(v for v, _ in values), "epsilon", (s for _, seqs in values for s in seqs)
            ),
        }
        for dataset, values in sorted(totals.items())
    ]


def _milestone(m: MilestoneRecord, on: date) -> dict[str, Any]:
    if m.accepted is not None:
        state = "accepted"
    elif m.due is not None and m.due < on:
        state = "late"
    else:
        state = "on-time"
    return {
        "milestone": m.name,
        "title": m.title,
        "due": m.due.isoformat() if m.due else None,
        "status": state,
        "accepted_on": m.accepted[0].isoformat() if m.accepted else None,
        # accepted after its due day: on time by the board's word, late by the calendar
        "accepted_late": bool(m.accepted and m.due and m.accepted[0] > m.due),
        "accepted_by": m.accepted[1] if m.accepted else None,
        "rejected_by": list(m.rejected),
        "evidence": [
            {k: v for k, v in item.items() if k in ("kind", "ref", "sha256", "name", "seq")}
            for item in m.evidence
        ],
        "cites": sorted(set(m.cites)),
    }


def _model(book: Book, name: str) -> dict[str, Any]:
    _, metrics, seq = book.models[name]
    section: dict[str, Any] = {
        "model": name,
        "metrics": {
            k: figure(v, "metric", [seq])
            for k, v in sorted(metrics.items())
            if k in ("accuracy", "auc") and as_number(v) is not None
        },
        "cites": [seq],
        "contributions": None,
    }
    if name in book.contributions:
        payload, cseq = book.contributions[name]
        per_member: dict[str, list[tuple[float, int]]] = {}
        shares = payload.get("shares") if isinstance(payload.get("shares"), dict) else {}
        for dataset, share in sorted(shares.items()):
            owner, dseq = book.datasets.get(dataset, (dataset, cseq))
            if (number := as_number(share)) is not None:
                per_member.setdefault(owner, []).append((number, dseq))
        section["contributions"] = {
            "metric": str(payload.get("metric") or ""),
            "method": str(payload.get("method") or ""),
            "shares": {
                member: figure(sum(v for v, _ in items), "share", [cseq, *(s for _, s in items)])
                for member, items in sorted(per_member.items())
            },
            "cites": [cseq],
        }
    return section


def _licence(licence: LicenceRecord, audience: str) -> dict[str, Any]:
    """Revenue as reported; royalties as distributed, each payout also citing the
    `model.contributions` entry its split came from."""
    periods = []
    distributed = {str(p.get("period")): (p, s, b) for p, s, b in licence.royalties}
    for period in sorted({*licence.revenue, *distributed}):
        row: dict[str, Any] = {
            "period": period,
            "revenue_yen": total(licence.revenue.get(period, []), "yen"),
            "distributed": period in distributed,
        }
        if period in distributed:
            payload, seq, basis = distributed[period]
            row["royalty_yen"] = figure(payload["royalty_yen"], "yen", [seq])
            row["association_yen"] = figure(payload["association_yen"], "yen", [seq])
            row["rule"] = str(payload.get("rule") or "")
            row["contributions_seq"] = basis[0] if basis else None
            if audience == "board":
                row["payouts"] = {
                    m: figure(y, "yen", [seq, *basis])
                    for m, y in sorted(payload["payouts"].items())
                }
        periods.append(row)
    royalties = licence.royalties
    return {
        "licence": licence.licence,
        "licensee": licence.licensee,
        "model": licence.model,
        "motion": licence.motion,
        "terms": {
            k: licence.terms.get(k)
            for k in ("field_of_use", "territory", "starts", "ends", "royalty_rate_bp")
        }
        | {"restrictions": [str(r) for r in licence.terms.get("restrictions") or []]},
        "cites": [licence.seq],
        "revenue_yen": total([v for values in licence.revenue.values() for v in values], "yen"),
        "royalty_yen": total([(p["royalty_yen"], s) for p, s, _ in royalties], "yen"),
        "association_yen": total([(p["association_yen"], s) for p, s, _ in royalties], "yen"),
        "paid_to_members_yen": figure(
            sum(sum(p["payouts"].values()) for p, _, _ in royalties),
            "yen",
            (c for _, s, b in royalties for c in (s, *b)),
        ),
        "periods": periods,
    }


def _project(
    book: Book, project: ProjectRecord, on: date, audience: str, spent: dict
) -> dict[str, Any]:
    milestones = [_milestone(m, on) for _, m in sorted(project.milestones.items())]
    counts = {
        state: figure(
            sum(1 for m in milestones if m["status"] == state),
            "count",
            (s for m in milestones if m["status"] == state for s in m["cites"]),
        )
        for state in MILESTONE_STATES
    }
    allocated = total(project.allocations, "yen")
    actual = total([(yen, seq) for _, yen, seq, _ in project.spend], "yen")
    budget: dict[str, Any] = {
        "allocated": allocated,
        "actual": actual,
        "remaining": figure(
            allocated["value"] - actual["value"], "yen", [*allocated["cites"], *actual["cites"]]
        ),
        "by_category": {
            c: total([(yen, seq) for cat, yen, seq, _ in project.spend if cat == c], "yen")
            for c in CATEGORIES
        },
    }
    if audience == "board":
        budget["items"] = [
            {
                "category": cat,
                "amount_yen": yen,
                "description": str(p.get("description") or ""),
                "spent_on": str(p.get("spent_on") or ""),
                "cites": [seq],
            }
            for cat, yen, seq, p in project.spend
        ]
    jobs = [job for job, name in book.jobs.items() if name == project.name]
    models = sorted(m for m, (name, _, _) in book.models.items() if name == project.name)
    licences = [
        _licence(book.licences[lic], audience)
        for lic in sorted(book.licences)
        if book.licences[lic].model in models
    ]
    return {
        "project": project.name,
        "title": project.title,
        "purpose": project.purpose,
        "status": project.status,
        "members": project.members,
        "theme": project.theme or UNTHEMED,
        "cites": sorted({*project.cites, *project.theme_cites}),
        "milestones": milestones,
        "milestone_counts": counts,
        "budget": budget,
        "compute": {
            "quota_site_rounds": total(project.quota, "site-rounds") if project.quota else None,
            "used_site_rounds": total(project.used, "site-rounds"),
        },
        "models": [_model(book, m) for m in models],
        "licences": licences,
        "epsilon": _epsilon_figures(spent, jobs),
    }


def _themes(book: Book, projects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ranking, rank_seq = book.ranking or ([], None)
    names = {p["theme"] for p in projects} | set(book.themes)
    ordered = [t for t in ranking if t in names]
    ordered += sorted(names - set(ordered) - {UNTHEMED})
    if UNTHEMED in names:
        ordered.append(UNTHEMED)
    themes = []
    for name in ordered:
        title, description, seq = book.themes.get(name, (name, "", None))
        held = [p for p in projects if p["theme"] == name]
        cites = [s for s in (seq, rank_seq if name in ranking else None) if s is not None]
        themes.append(
            {
                "theme": name,
                "title": "Projects without a theme" if name == UNTHEMED else title,
                "description": description,
                "rank": ranking.index(name) + 1 if name in ranking else None,
                "cites": cites,
                "allocated_yen": merge([p["budget"]["allocated"] for p in held], "yen"),
                "actual_yen": merge([p["budget"]["actual"] for p in held], "yen"),
                "projects": held,
            }
        )
    return themes


def _funds(book: Book, projects: list[dict[str, Any]], audience: str) -> dict[str, Any]:
    received = total([(yen, seq) for _, yen, seq, _ in book.funds], "yen")
    allocated = merge([p["budget"]["allocated"] for p in projects], "yen")
    section: dict[str, Any] = {
        "received": received,
        "by_kind": {
            k: total([(yen, seq) for kind, yen, seq, _ in book.funds if kind == k], "yen")
            for k in FUND_KINDS
        },
        "allocated": allocated,
        "unallocated": figure(
            received["value"] - allocated["value"], "yen", [*received["cites"], *allocated["cites"]]
        ),
        "spent": merge([p["budget"]["actual"] for p in projects], "yen"),
    }
    if audience == "board":
        section["sources"] = [
            {
                "source": str(p.get("source") or ""),
                "kind": kind,
                "from": str(p.get("from") or ""),
                "amount_yen": yen,
                "note": str(p.get("note") or ""),
                "cites": [seq],
            }
            for kind, yen, seq, p in book.funds
        ]
    return section


def _board(book: Book) -> dict[str, Any]:
    """Every motion, with its votes and its tally (recomputed; so far, while open)."""
    minutes = book.minutes
    charter = minutes.current
    motions = []
    for name, held in minutes.motions.items():
        result = tally(held.charter, held.motion, held.votes).document()
        motions.append(
            {
                "motion": name,
                "decision": held.motion.decision.value,
                # as text: a payload is the proposer's JSON, never a figure or a citation
                "payload": canonical_json(held.motion.payload).decode(),
                "proposer": held.motion.proposer,
                "closes_at": to_iso(held.motion.closes_at),
                "status": held.outcome or "open",
                "votes": {m: c.value for m, c in sorted(held.votes.items())},
                "tally": result,
                "cites": sorted(book.motion_seqs.get(name, [])),
            }
        )
    return {
        "charter": None
        if charter is None
        else {"version": charter.version, "seats": list(charter.seats)},
        "open": sum(1 for m in motions if m["status"] == "open"),
        "motions": motions,
    }


def _member(book: Book, member: str, projects: list[dict[str, Any]], spent: dict) -> dict[str, Any]:
    """What one member sees of its own: its datasets' ε, its shares, its royalties."""
    datasets = sorted(d for d, (owner, _) in book.datasets.items() if owner == member)
    epsilon = [e for e in _epsilon_figures(spent) if e["dataset"] in datasets]
    shares = []
    payouts = []
    for project in projects:
        for model in project["models"]:
            contributions = model["contributions"]
            if contributions and member in contributions["shares"]:
                share = contributions["shares"][member]
                shares.append(
                    {
                        "model": model["model"],
                        "share": figure(share["value"], "share", share["cites"]),
                    }
                )
    for licence in sorted(book.licences.values(), key=lambda lic: lic.licence):
        periods = [
            {
                "period": str(payload.get("period")),
                "payout_yen": figure(payload["payouts"][member], "yen", [seq, *basis]),
            }
            for payload, seq, basis in licence.royalties
            if member in payload["payouts"]
        ]
        if periods:
            payouts.append({"licence": licence.licence, "periods": periods})
    return {
        "member": member,
        "cites": [book.members[member]],
        "datasets": epsilon,
        "contributions": shares,
        "payouts": payouts,
        "payouts_total_yen": merge(
            [p["payout_yen"] for lic in payouts for p in lic["periods"]], "yen"
        ),
    }


def build_report(
    ledger: VerifiedLedger, audience: str, on: date, member: str | None = None
) -> dict[str, Any]:
    """The report for one audience, as of day `on` (lateness is judged on that day).

    investor: aggregates only (no per-member royalties, no spend descriptions, no fund
    sources, no board detail); member: the same and its own contributions, ε and royalties;
    board: everything, with every motion's votes and tally.
    """
    audience = audience_of(audience)
    if audience == "member" and member is None:
        raise InvalidInput(
            "--for member needs --member NAME, the member the report is for; see "
            "`kumiai member list`"
        )
    if audience != "member" and member is not None:
        raise InvalidInput(
            f"--member is only for --for member: a {audience} report is not one member's"
        )
    book = read_ledger(ledger.entries)
    if member is not None and member not in book.members:
        raise InvalidInput(
            f"{member!r} never joined this consortium's ledger; see `kumiai member list`"
        )
    spent = _epsilon_by_job(book)
    projects = [
        _project(book, project, on, audience, spent) for _, project in sorted(book.projects.items())
    ]
    attached = {lic["licence"] for p in projects for lic in p["licences"]}
    document: dict[str, Any] = {
        "type": REPORT_TYPE,
        "version": REPORT_VERSION,
        "audience": audience,
        "member": member,
        "date": on.isoformat(),
        "ledger": {
            "verified": True,
            "root": ledger.root,
            "size": ledger.size,
            "head_time": to_iso(ledger.head_time),
            "witnesses": sorted(ledger.witnesses),
        },
        "funds": _funds(book, projects, audience),
        "themes": _themes(book, projects),
        "epsilon": _epsilon_figures(spent),
        "spinouts": book.spinouts,
        "other_licences": [
            _licence(lic, audience)
            for name, lic in sorted(book.licences.items())
            if name not in attached
        ],
    }
    if audience == "board":
        document["board"] = _board(book)
    if member is not None:
        document["for_member"] = _member(book, member, projects, spent)
    assign_ids(document, (), set())
    by_seq = {e.seq: e for e in ledger.entries}
    document["appendix"] = [
        {
            "seq": seq,
            "kind": by_seq[seq].kind,
            "actor": by_seq[seq].actor,
            "time": to_iso(by_seq[seq].time),
            "leaf_hash": ledger.leaf_hashes[seq],
        }
        for seq in sorted(cited(document))
    ]
    return document
