"""The investor, member and board report, computed from the verified ledger alone.

Pure: it receives the entries of a ledger that has already verified (signatures, tree,
heads) and the day the report is made, and returns the report as one JSON document. The
database is never read, so an investor holding only an export reaches the same figures.

Every figure is `{"value", "unit", "cites", "id"}`: `cites` lists the sequence numbers of
the ledger entries the value is computed from, so an auditor can recompute it from the
export; `id` names the figure within the report ("project/heart/budget/allocated").
Money is integer yen; ε and contribution shares are the floats the ledger holds.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kumiai.domain.canonical import canonical_json
from kumiai.domain.clock import to_iso
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import Entry
from kumiai.domain.minutes import Minutes
from kumiai.domain.motion import tally

REPORT_TYPE, REPORT_VERSION = "kumiai.report", 1
AUDIENCES = ("investor", "member", "board")
UNTHEMED = "unthemed"
CATEGORIES = ("personnel", "compute", "data", "equipment", "other")
FUND_KINDS = ("dues", "grant", "investor")
MILESTONE_STATES = ("on-time", "late", "accepted")
# A list item is named in figure ids by the first of these keys it holds.
_ITEM_KEYS = ("milestone", "licence", "model", "period", "dataset", "motion", "project", "theme")
_DAY = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


@dataclass(frozen=True)
class VerifiedLedger:
    """What the report may use: entries under a verified, signed tree head."""

    entries: tuple[Entry, ...]  # seq order, exactly the `size` entries under the head
    leaf_hashes: tuple[str, ...]  # hex RFC 6962 leaf hash of each entry, by seq
    root: str
    size: int
    head_time: datetime
    witnesses: tuple[str, ...] = ()  # members whose nodes cosigned this head


def audience_of(text: object) -> str:
    if text not in AUDIENCES:
        raise InvalidInput(
            f"--for {text!r} is not an audience; choose one of {', '.join(AUDIENCES)}"
        )
    return str(text)


def day_of(text: object, what: str = "--date") -> date:
    """A strict YYYY-MM-DD day (the form the ledger contract writes dates in)."""
    try:
        if not isinstance(text, str) or not _DAY.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not a day of the form YYYY-MM-DD; e.g. 2026-11-29"
        ) from None


# -- figures ------------------------------------------------------------------------------
def figure(value: int | float, unit: str, cites: Iterable[int]) -> dict[str, Any]:
    return {"value": value, "unit": unit, "cites": sorted(set(cites))}


def _sum(items: Sequence[tuple[int | float, int]], unit: str) -> dict[str, Any]:
    """A total and every entry it adds up; yen stay int, ε stays float."""
    zero: int | float = 0.0 if unit == "epsilon" else 0
    return figure(sum((v for v, _ in items), zero), unit, (s for _, s in items))


def _is_figure(node: object) -> bool:
    return isinstance(node, dict) and "unit" in node and "value" in node and "cites" in node


def figures(document: object) -> dict[str, dict[str, Any]]:
    """Every figure in a report document, by its id."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: object) -> None:
        if _is_figure(node):
            assert isinstance(node, dict)
            found[node["id"]] = node
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def cited(document: object) -> set[int]:
    """Every seq the document cites, in figures and in records."""
    seqs: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("cites"), list):
                seqs.update(node["cites"])
            for key, value in node.items():
                if key != "cites":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return seqs


def _assign_ids(node: object, path: tuple[str, ...], seen: set[str]) -> None:
    if _is_figure(node):
        assert isinstance(node, dict)
        name = "/".join(path)
        if name in seen:  # two figures under one name would make citations ambiguous
            raise AssertionError(f"two figures named {name!r}")
        seen.add(name)
        node["id"] = name
    elif isinstance(node, dict):
        for key, value in node.items():
            _assign_ids(value, (*path, str(key)), seen)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            label = str(index)
            if isinstance(item, dict):
                label = next(
                    (str(item[k]) for k in _ITEM_KEYS if isinstance(item.get(k), str)), label
                )
            _assign_ids(item, (*path, label), seen)


# -- reading the entries --------------------------------------------------------------------
def _bad(entry: Entry, problem: str) -> InvalidInput:
    return InvalidInput(
        f"ledger entry {entry.seq} ({entry.kind}) {problem}; the report does not guess a "
        "figure the ledger does not state"
    )


def _yen(entry: Entry, key: str) -> int:
    value = entry.payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(entry, f"has {key} {value!r}, not a whole number of yen")
    return value


def _text(entry: Entry, key: str) -> str:
    value = entry.payload.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(entry, f"does not name its {key}")
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class _Milestone:
    name: str
    title: str = ""
    due: date | None = None
    cites: list[int] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    accepted: tuple[date, str] | None = None  # (day, motion)
    rejected: list[str] = field(default_factory=list)  # motions


@dataclass
class _Project:
    name: str
    title: str = ""
    purpose: str = ""
    members: list[str] = field(default_factory=list)
    status: str = "unknown"
    cites: list[int] = field(default_factory=list)
    theme: str | None = None
    theme_cites: list[int] = field(default_factory=list)
    allocations: list[tuple[int, int]] = field(default_factory=list)
    quota: list[tuple[int, int]] = field(default_factory=list)
    spend: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)
    milestones: dict[str, _Milestone] = field(default_factory=dict)
    used: list[tuple[int, int]] = field(default_factory=list)  # site-rounds of each round


@dataclass
class _Licence:
    licence: str
    licensee: str
    model: str
    terms: dict[str, Any]
    motion: str
    seq: int
    revenue: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # period
    # (royalties.distributed payload, its seq, the model.contributions seq it split by)
    royalties: list[tuple[dict[str, Any], int, list[int]]] = field(default_factory=list)


@dataclass
class _Book:
    """The entries replayed into the records the report is drawn from."""

    members: dict[str, int] = field(default_factory=dict)  # member -> seq of its joining
    datasets: dict[str, tuple[str, int]] = field(default_factory=dict)  # -> (member, seq)
    themes: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    ranking: tuple[list[str], int] | None = None
    projects: dict[str, _Project] = field(default_factory=dict)
    funds: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)  # job -> project
    # (job, dataset) -> [(cumulative ε, seq, from a privacy.recovered entry)]
    epsilon: dict[tuple[str, str], list[tuple[float, int, bool]]] = field(default_factory=dict)
    models: dict[str, tuple[str, dict[str, Any], int]] = field(default_factory=dict)
    contributions: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    contribution_seqs: set[int] = field(default_factory=set)
    licences: dict[str, _Licence] = field(default_factory=dict)
    spinouts: list[dict[str, Any]] = field(default_factory=list)
    minutes: Minutes = field(default_factory=Minutes)
    motion_seqs: dict[str, list[int]] = field(default_factory=dict)

    def project(self, name: str) -> _Project:
        return self.projects.setdefault(name, _Project(name, title=name))

    def read(self, entry: Entry) -> None:
        self.minutes.read(entry)
        handler = _HANDLERS.get(entry.kind)
        if handler is not None:
            handler(self, entry, entry.payload)

    def _joined(self, entry: Entry, p: dict[str, Any]) -> None:
        self.members[_text(entry, "member")] = entry.seq

    def _dataset(self, entry: Entry, p: dict[str, Any]) -> None:
        self.datasets[_text(entry, "dataset")] = (_text(entry, "member"), entry.seq)

    def _proposed(self, entry: Entry, p: dict[str, Any]) -> None:
        project = self.project(_text(entry, "project"))
        project.title = str(p.get("title") or project.name)
        project.purpose = str(p.get("purpose") or "")
        project.members = sorted(str(m) for m in p.get("members") or [])
        project.status = "proposed"
        project.cites.append(entry.seq)

    def _status(self, entry: Entry, p: dict[str, Any]) -> None:
        project = self.project(_text(entry, "project"))
        project.status = "active" if entry.kind == "project.approved" else "closed"
        project.cites.append(entry.seq)

    def _theme(self, entry: Entry, p: dict[str, Any]) -> None:
        name = _text(entry, "theme")
        self.themes[name] = (
            str(p.get("title") or name),
            str(p.get("description") or ""),
            entry.seq,
        )

    def _ranked(self, entry: Entry, p: dict[str, Any]) -> None:
        ranking = p.get("ranking")
        if not isinstance(ranking, list) or not all(isinstance(t, str) for t in ranking):
            raise _bad(entry, "does not hold a ranking of theme names")
        self.ranking = (list(ranking), entry.seq)

    def _themed(self, entry: Entry, p: dict[str, Any]) -> None:
        project = self.project(_text(entry, "project"))
        project.theme, project.theme_cites = _text(entry, "theme"), [entry.seq]

    def _received(self, entry: Entry, p: dict[str, Any]) -> None:
        kind = _text(entry, "kind")
        if kind not in FUND_KINDS:
            raise _bad(entry, f"has fund kind {kind!r}, not one of {', '.join(FUND_KINDS)}")
        self.funds.append((kind, _yen(entry, "amount_yen"), entry.seq, p))

    def _allocated(self, entry: Entry, p: dict[str, Any]) -> None:
        project = self.project(_text(entry, "project"))
        project.allocations.append((_yen(entry, "amount_yen"), entry.seq))
        quota = p.get("site_rounds")
        if quota is not None:
            if isinstance(quota, bool) or not isinstance(quota, int):
                raise _bad(entry, f"has site_rounds {quota!r}, not a whole number or null")
            project.quota.append((quota, entry.seq))

    def _spent(self, entry: Entry, p: dict[str, Any]) -> None:
        category = _text(entry, "category")
        if category not in CATEGORIES:
            raise _bad(entry, f"has category {category!r}, not one of {', '.join(CATEGORIES)}")
        project = self.project(_text(entry, "project"))
        project.spend.append((category, _yen(entry, "amount_yen"), entry.seq, p))

    def _milestone(self, entry: Entry) -> _Milestone:
        project = self.project(_text(entry, "project"))
        name = _text(entry, "milestone")
        milestone = project.milestones.setdefault(name, _Milestone(name, title=name))
        milestone.cites.append(entry.seq)
        return milestone

    def _milestone_set(self, entry: Entry, p: dict[str, Any]) -> None:
        due = day_of(p.get("due"), f"the due day of ledger entry {entry.seq}")
        milestone = self._milestone(entry)
        milestone.title, milestone.due = str(p.get("title") or milestone.name), due

    def _evidence(self, entry: Entry, p: dict[str, Any]) -> None:
        items = p.get("evidence")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _bad(entry, "does not hold a list of evidence")
        self._milestone(entry).evidence.extend({**i, "seq": entry.seq} for i in items)

    def _decided(self, entry: Entry, p: dict[str, Any]) -> None:
        milestone, motion = self._milestone(entry), str(p.get("motion") or "")
        if entry.kind == "milestone.accepted":
            milestone.accepted = (entry.time.date(), motion)
        else:
            milestone.rejected.append(motion)

    def _job(self, entry: Entry, p: dict[str, Any]) -> None:
        job = (p.get("document") or {}).get("job") or {}
        if isinstance(job.get("job_id"), str) and isinstance(job.get("project"), str):
            self.jobs[job["job_id"]] = job["project"]

    def _round(self, entry: Entry, p: dict[str, Any]) -> None:
        job = _text(entry, "job")
        spent = p.get("epsilon") or {}
        for dataset, value in spent.items() if isinstance(spent, dict) else ():
            if (number := _number(value)) is not None:
                self.epsilon.setdefault((job, dataset), []).append((number, entry.seq, False))
        participants = p.get("participants")
        if job in self.jobs and isinstance(participants, list):
            self.project(self.jobs[job]).used.append((len(participants), entry.seq))

    def _recovered(self, entry: Entry, p: dict[str, Any]) -> None:
        if (number := _number(p.get("epsilon"))) is not None:
            key = (_text(entry, "job"), _text(entry, "dataset"))
            self.epsilon.setdefault(key, []).append((number, entry.seq, True))

    def _released(self, entry: Entry, p: dict[str, Any]) -> None:
        model, job = _text(entry, "model"), str(p.get("job") or "")
        project = self.jobs.get(job) or model.rsplit("-v", 1)[0]
        metrics = p.get("metrics") if isinstance(p.get("metrics"), dict) else {}
        self.models[model] = (project, metrics, entry.seq)

    def _contributions(self, entry: Entry, p: dict[str, Any]) -> None:
        self.contributions[_text(entry, "model")] = (p, entry.seq)
        self.contribution_seqs.add(entry.seq)

    def _spinout(self, entry: Entry, p: dict[str, Any]) -> None:
        founders = p.get("founders") if isinstance(p.get("founders"), list) else []
        self.spinouts.append(
            {
                "spinout": _text(entry, "spinout"),
                "founders": sorted(str(f) for f in founders),
                "theme": p.get("theme") if isinstance(p.get("theme"), str) else None,
                "project": p.get("project") if isinstance(p.get("project"), str) else None,
                "motion": str(p.get("motion") or ""),
                "cites": [entry.seq],
            }
        )

    def _licence(self, entry: Entry, p: dict[str, Any]) -> None:
        terms = p.get("terms") if isinstance(p.get("terms"), dict) else {}
        name = _text(entry, "licence")
        self.licences[name] = _Licence(
            name,
            _text(entry, "licensee"),
            _text(entry, "model"),
            terms,
            str(p.get("motion") or ""),
            entry.seq,
        )

    def _held_licence(self, entry: Entry) -> _Licence:
        name = _text(entry, "licence")
        if name not in self.licences:
            raise _bad(entry, f"names licence {name!r}, which no licence.granted entry grants")
        return self.licences[name]

    def _revenue(self, entry: Entry, p: dict[str, Any]) -> None:
        licence = self._held_licence(entry)
        revenue = licence.revenue.setdefault(_text(entry, "period"), [])
        revenue.append((_yen(entry, "revenue_yen"), entry.seq))

    def _distributed(self, entry: Entry, p: dict[str, Any]) -> None:
        licence = self._held_licence(entry)
        for key in ("royalty_yen", "association_yen"):
            _yen(entry, key)
        payouts = p.get("payouts")
        if not isinstance(payouts, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in payouts.values()
        ):
            raise _bad(entry, "does not hold payouts as {member: whole yen}")
        basis = p.get("contributions_seq")
        shares = [basis] if basis in self.contribution_seqs else []
        licence.royalties.append((p, entry.seq, shares))

    def _motion(self, entry: Entry, p: dict[str, Any]) -> None:
        if isinstance(p.get("motion"), str):
            self.motion_seqs.setdefault(p["motion"], []).append(entry.seq)


_HANDLERS = {
    "member.joined": _Book._joined,
    "dataset.registered": _Book._dataset,
    "project.proposed": _Book._proposed,
    "project.approved": _Book._status,
    "project.closed": _Book._status,
    "theme.created": _Book._theme,
    "theme.ranked": _Book._ranked,
    "project.themed": _Book._themed,
    "funds.received": _Book._received,
    "funds.allocated": _Book._allocated,
    "spend.recorded": _Book._spent,
    "milestone.set": _Book._milestone_set,
    "milestone.evidence": _Book._evidence,
    "milestone.accepted": _Book._decided,
    "milestone.rejected": _Book._decided,
    "job.started": _Book._job,
    "round.completed": _Book._round,
    "privacy.recovered": _Book._recovered,
    "model.released": _Book._released,
    "model.contributions": _Book._contributions,
    "spinout.created": _Book._spinout,
    "licence.granted": _Book._licence,
    "revenue.reported": _Book._revenue,
    "royalties.distributed": _Book._distributed,
    "motion.proposed": _Book._motion,
    "motion.voted": _Book._motion,
    "motion.closed": _Book._motion,
}


# -- the sections ---------------------------------------------------------------------------
def _epsilon_by_job(book: _Book) -> dict[tuple[str, str], tuple[float, list[int]]]:
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


def _milestone(m: _Milestone, on: date) -> dict[str, Any]:
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


def _model(book: _Book, name: str) -> dict[str, Any]:
    _, metrics, seq = book.models[name]
    section: dict[str, Any] = {
        "model": name,
        "metrics": {
            k: figure(v, "metric", [seq])
            for k, v in sorted(metrics.items())
            if k in ("accuracy", "auc") and _number(v) is not None
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
            if (number := _number(share)) is not None:
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


def _licence(licence: _Licence, audience: str) -> dict[str, Any]:
    """Revenue as reported; royalties as distributed, each payout also citing the
    `model.contributions` entry its split came from."""
    periods = []
    distributed = {str(p.get("period")): (p, s, b) for p, s, b in licence.royalties}
    for period in sorted({*licence.revenue, *distributed}):
        row: dict[str, Any] = {
            "period": period,
            "revenue_yen": _sum(licence.revenue.get(period, []), "yen"),
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
        "revenue_yen": _sum([v for values in licence.revenue.values() for v in values], "yen"),
        "royalty_yen": _sum([(p["royalty_yen"], s) for p, s, _ in royalties], "yen"),
        "association_yen": _sum([(p["association_yen"], s) for p, s, _ in royalties], "yen"),
        "paid_to_members_yen": figure(
            sum(sum(p["payouts"].values()) for p, _, _ in royalties),
            "yen",
            (c for _, s, b in royalties for c in (s, *b)),
        ),
        "periods": periods,
    }


def _project(
    book: _Book, project: _Project, on: date, audience: str, spent: dict
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
    allocated = _sum(project.allocations, "yen")
    actual = _sum([(yen, seq) for _, yen, seq, _ in project.spend], "yen")
    budget: dict[str, Any] = {
        "allocated": allocated,
        "actual": actual,
        "remaining": figure(
            allocated["value"] - actual["value"], "yen", [*allocated["cites"], *actual["cites"]]
        ),
        "by_category": {
            c: _sum([(yen, seq) for cat, yen, seq, _ in project.spend if cat == c], "yen")
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
            "quota_site_rounds": _sum(project.quota, "site-rounds") if project.quota else None,
            "used_site_rounds": _sum(project.used, "site-rounds"),
        },
        "models": [_model(book, m) for m in models],
        "licences": licences,
        "epsilon": _epsilon_figures(spent, jobs),
    }


def _themes(book: _Book, projects: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
                "allocated_yen": _merge([p["budget"]["allocated"] for p in held], "yen"),
                "actual_yen": _merge([p["budget"]["actual"] for p in held], "yen"),
                "projects": held,
            }
        )
    return themes


def _merge(parts: list[dict[str, Any]], unit: str) -> dict[str, Any]:
    return figure(sum(p["value"] for p in parts), unit, (s for p in parts for s in p["cites"]))


def _funds(book: _Book, projects: list[dict[str, Any]], audience: str) -> dict[str, Any]:
    received = _sum([(yen, seq) for _, yen, seq, _ in book.funds], "yen")
    allocated = _merge([p["budget"]["allocated"] for p in projects], "yen")
    section: dict[str, Any] = {
        "received": received,
        "by_kind": {
            k: _sum([(yen, seq) for kind, yen, seq, _ in book.funds if kind == k], "yen")
            for k in FUND_KINDS
        },
        "allocated": allocated,
        "unallocated": figure(
            received["value"] - allocated["value"], "yen", [*received["cites"], *allocated["cites"]]
        ),
        "spent": _merge([p["budget"]["actual"] for p in projects], "yen"),
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


def _board(book: _Book) -> dict[str, Any]:
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


def _member(
    book: _Book, member: str, projects: list[dict[str, Any]], spent: dict
) -> dict[str, Any]:
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
        "payouts_total_yen": _merge(
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
    book = _Book()
    for entry in ledger.entries:
        book.read(entry)
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
    _assign_ids(document, (), set())
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
