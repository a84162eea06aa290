"""The verified ledger's entries replayed into the records a report is drawn from.

Pure. Each record keeps the seqs of the entries it was read from. A payload the ledger
contract does not allow (yen that are not whole, an unknown category, revenue for a licence
never granted) is refused, naming the entry, rather than guessed at.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import Entry
from kumiai.domain.minutes import Minutes

CATEGORIES = ("personnel", "compute", "data", "equipment", "other")
FUND_KINDS = ("dues", "grant", "investor")
_DAY = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


@dataclass(frozen=True)
class VerifiedLedger:
    """What a report may use: entries under a verified, signed tree head."""

    entries: tuple[Entry, ...]  # seq order, exactly the `size` entries under the head
    leaf_hashes: tuple[str, ...]  # hex RFC 6962 leaf hash of each entry, by seq
    root: str
    size: int
    head_time: datetime
    witnesses: tuple[str, ...] = ()  # members whose nodes cosigned this head


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


def as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class MilestoneRecord:
    name: str
    title: str = ""
    due: date | None = None
    cites: list[int] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    accepted: tuple[date, str] | None = None  # (day, motion)
    rejected: list[str] = field(default_factory=list)  # motions


@dataclass
class ProjectRecord:
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
    milestones: dict[str, MilestoneRecord] = field(default_factory=dict)
    used: list[tuple[int, int]] = field(default_factory=list)  # site-rounds of each round


@dataclass
class LicenceRecord:
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
class Book:
    """The entries replayed into the records the report is drawn from."""

    members: dict[str, int] = field(default_factory=dict)  # member -> seq of its joining
    datasets: dict[str, tuple[str, int]] = field(default_factory=dict)  # -> (member, seq)
    themes: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    ranking: tuple[list[str], int] | None = None
    projects: dict[str, ProjectRecord] = field(default_factory=dict)
    funds: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)
    jobs: dict[str, str] = field(default_factory=dict)  # job -> project
    # (job, dataset) -> [(cumulative ε, seq, from a privacy.recovered entry)]
    epsilon: dict[tuple[str, str], list[tuple[float, int, bool]]] = field(default_factory=dict)
    models: dict[str, tuple[str, dict[str, Any], int]] = field(default_factory=dict)
    contributions: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    contribution_seqs: set[int] = field(default_factory=set)
    licences: dict[str, LicenceRecord] = field(default_factory=dict)
    spinouts: list[dict[str, Any]] = field(default_factory=list)
    minutes: Minutes = field(default_factory=Minutes)
    motion_seqs: dict[str, list[int]] = field(default_factory=dict)

    def project(self, name: str) -> ProjectRecord:
        return self.projects.setdefault(name, ProjectRecord(name, title=name))

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

    def _milestone(self, entry: Entry) -> MilestoneRecord:
        project = self.project(_text(entry, "project"))
        name = _text(entry, "milestone")
        milestone = project.milestones.setdefault(name, MilestoneRecord(name, title=name))
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
            if (number := as_number(value)) is not None:
                self.epsilon.setdefault((job, dataset), []).append((number, entry.seq, False))
        participants = p.get("participants")
        if job in self.jobs and isinstance(participants, list):
            self.project(self.jobs[job]).used.append((len(participants), entry.seq))

    def _analysed(self, entry: Entry, p: dict[str, Any]) -> None:
        """A DP analysis: the ε each participating dataset's node spent on it."""
        job = _text(entry, "job")
        spent = p.get("spent") or {}
        for dataset, value in spent.items() if isinstance(spent, dict) else ():
            if (number := as_number(value)) is not None:
                self.epsilon.setdefault((job, dataset), []).append((number, entry.seq, False))

    def _recovered(self, entry: Entry, p: dict[str, Any]) -> None:
        self._stated(entry, p, recovered=True)

    def _charged(self, entry: Entry, p: dict[str, Any]) -> None:
        """A contribution job's extra ε, charged by the dataset's own node."""
        self._stated(entry, p, recovered=False)

    def _stated(self, entry: Entry, p: dict[str, Any], recovered: bool) -> None:
        if (number := as_number(p.get("epsilon"))) is not None:
            key = (_text(entry, "job"), _text(entry, "dataset"))
            self.epsilon.setdefault(key, []).append((number, entry.seq, recovered))

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
        self.licences[name] = LicenceRecord(
            name,
            _text(entry, "licensee"),
            _text(entry, "model"),
            terms,
            str(p.get("motion") or ""),
            entry.seq,
        )

    def _held_licence(self, entry: Entry) -> LicenceRecord:
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
    "member.joined": Book._joined,
    "dataset.registered": Book._dataset,
    "project.proposed": Book._proposed,
    "project.approved": Book._status,
    "project.closed": Book._status,
    "theme.created": Book._theme,
    "theme.ranked": Book._ranked,
    "project.themed": Book._themed,
    "funds.received": Book._received,
    "funds.allocated": Book._allocated,
    "spend.recorded": Book._spent,
    "milestone.set": Book._milestone_set,
    "milestone.evidence": Book._evidence,
    "milestone.accepted": Book._decided,
    "milestone.rejected": Book._decided,
    "job.started": Book._job,
    "round.completed": Book._round,
    "privacy.recovered": Book._recovered,
    "privacy.charged": Book._charged,
    "analysis.released": Book._analysed,
    "model.released": Book._released,
    "model.contributions": Book._contributions,
    "spinout.created": Book._spinout,
    "licence.granted": Book._licence,
    "revenue.reported": Book._revenue,
    "royalties.distributed": Book._distributed,
    "motion.proposed": Book._motion,
    "motion.voted": Book._motion,
    "motion.closed": Book._motion,
}


def read_ledger(entries: tuple[Entry, ...]) -> Book:
    book = Book()
    for entry in entries:
        book.read(entry)
    return book
