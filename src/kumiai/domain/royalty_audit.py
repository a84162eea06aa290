"""Every royalty recomputed from the ledger alone, to the yen.

Replays an export's entries in log order: charters (for the association share in force),
`dataset.registered` (which member owns which dataset), `model.contributions`,
`licence.granted` (against its passed motion), `revenue.reported` (by the licensee, once
per period, inside the term) and `royalties.distributed`, which is recomputed with
`domain.royalties.distribute` and compared field by field. A coordinator that holds its
own key can re-sign a changed entry and every tree head, so the signatures alone cannot
catch a changed payout; this recomputation does.
"""

from dataclasses import dataclass, field
from typing import Any

from kumiai.domain.charter import Decision
from kumiai.domain.errors import InvalidInput
from kumiai.domain.ledger import COORDINATOR, Entry
from kumiai.domain.licence import LicenceTerms, check_revenue_report
from kumiai.domain.minutes import Minutes
from kumiai.domain.royalties import association_share, distribute


@dataclass(frozen=True)
class Mismatch:
    """One disagreement: where (seq), what field (and member), recorded against recomputed."""

    seq: int
    what: str
    problem: str
    member: str | None = None
    recorded: Any = None
    recomputed: Any = None

    def __str__(self) -> str:
        who = f" for {self.member}" if self.member else ""
        numbers = (
            f": recorded {self.recorded!r}, recomputed {self.recomputed!r}"
            if self.recorded is not None or self.recomputed is not None
            else ""
        )
        return f"entry {self.seq}: {self.what}{who} {self.problem}{numbers}"


_VOTED = ("licence", "licensee", "model", "terms")  # what licence.granted repeats of its motion


@dataclass(frozen=True)
class _Licence:
    licensee: str
    model: str
    terms: LicenceTerms


@dataclass
class RoyaltyReplay:
    """Feed it every entry in order (`read`), then `finish`; `mismatches` holds the findings."""

    minutes: Minutes = field(default_factory=Minutes)
    owners: dict[str, str] = field(default_factory=dict)
    contributions: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> payload
    latest: dict[str, int] = field(default_factory=dict)  # model -> seq of its newest shares
    licences: dict[str, _Licence] = field(default_factory=dict)
    reported: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    distributed: set[tuple[str, str]] = field(default_factory=set)
    checked: int = 0  # royalties.distributed entries recomputed
    mismatches: list[Mismatch] = field(default_factory=list)

    def read(self, entry: Entry) -> None:
        self.minutes.read(entry)  # the charter in force and the motions, as the audit replays
        payload = entry.payload
        if entry.kind == "dataset.registered" and entry.actor == payload.get("member"):
            if isinstance(payload.get("dataset"), str):
                self.owners.setdefault(payload["dataset"], entry.actor)
        elif entry.kind == "model.contributions" and entry.actor == COORDINATOR:
            if isinstance(payload.get("model"), str):
                self.contributions[entry.seq] = payload
                self.latest[payload["model"]] = entry.seq
        elif entry.kind == "licence.granted":
            self._granted(entry, payload)
        elif entry.kind == "revenue.reported":
            self._reported(entry, payload)
        elif entry.kind == "royalties.distributed":
            self._distributed(entry, payload)

    def _flag(self, seq: int, what: str, problem: str, **numbers: Any) -> None:
        self.mismatches.append(Mismatch(seq, what, problem, **numbers))

    def _granted(self, entry: Entry, payload: dict[str, Any]) -> None:
        held = self.minutes.motions.get(_text(payload, "motion"))  # type: ignore[arg-type]
        voted = held is not None and held.motion.payload
        licence = payload.get("licence")
        if (
            entry.actor != COORDINATOR
            or held is None
            or held.outcome != "passed"
            or held.motion.decision is not Decision.GRANT_LICENCE
            or not voted
            or any(voted.get(k) != payload.get(k) for k in _VOTED)
            or not isinstance(licence, str)
            or licence in self.licences
        ):
            self._flag(entry.seq, "licence", "is not what a passed grant-licence motion voted")
            return
        try:
            terms = LicenceTerms.from_document(payload["terms"])
        except InvalidInput as exc:
            self._flag(entry.seq, "licence", f"has terms that do not hold ({exc})")
            return
        self.licences[licence] = _Licence(payload["licensee"], payload["model"], terms)

    def _reported(self, entry: Entry, payload: dict[str, Any]) -> None:
        licence = self.licences.get(_text(payload, "licence"))  # type: ignore[arg-type]
        if licence is None:
            self._flag(entry.seq, "report", "reports revenue under no granted licence")
            return
        name, period = payload["licence"], payload.get("period")
        done = {p for (lic, p) in self.reported if lic == name}
        try:
            check_revenue_report(
                licence.terms,
                licensee=licence.licensee,
                reporter=entry.actor,
                period=period,
                revenue_yen=payload.get("revenue_yen"),
                reported_periods=done,
            )
        except InvalidInput as exc:
            self._flag(entry.seq, "report", f"is refused: {exc}")
            return
        self.reported[(name, str(period))] = (entry.seq, payload["revenue_yen"])

    def _distributed(self, entry: Entry, payload: dict[str, Any]) -> None:
        self.checked += 1
        seq = entry.seq
        key = (_text(payload, "licence"), _text(payload, "period"))
        report = self.reported.get(key)  # type: ignore[arg-type]
        licence = self.licences.get(key[0])  # type: ignore[arg-type]
        if entry.actor != COORDINATOR or None in (report, licence) or key in self.distributed:
            self._flag(seq, "distribution", "follows no valid revenue report of its own")
            return
        self.distributed.add(key)  # type: ignore[arg-type]
        revenue = report[1]
        if not _same(payload.get("revenue_yen"), revenue):
            recorded = payload.get("revenue_yen")
            self._flag(seq, "revenue_yen", "differs", recorded=recorded, recomputed=revenue)
        used = self.latest.get(licence.model)
        if used is None:
            self._flag(seq, "contributions_seq", "names shares, but the model has none recorded")
            return
        if not _same(payload.get("contributions_seq"), used):
            self._flag(
                seq,
                "contributions_seq",
                "is not the model's newest contributions entry",
                recorded=payload.get("contributions_seq"),
                recomputed=used,
            )
        try:
            result = distribute(
                revenue,
                licence.terms.royalty_rate_bp,
                association_share(self.minutes.current),
                dict(self.contributions[used].get("shares") or {}),
                self.owners,
            )
        except (InvalidInput, TypeError, ValueError) as exc:
            self._flag(seq, "contributions", f"cannot be used ({exc})")
            return
        expected = result.document()
        for name in ("royalty_yen", "association_yen", "rule"):
            if not _same(payload.get(name), expected[name]):
                self._flag(
                    seq, name, "differs", recorded=payload.get(name), recomputed=expected[name]
                )
        recorded = payload.get("payouts")
        if not isinstance(recorded, dict):
            self._flag(seq, "payouts", "is not an object of member -> yen")
            return
        for member in sorted(set(recorded) | set(expected["payouts"])):
            mine, theirs = recorded.get(member), expected["payouts"].get(member)
            if not _same(mine, theirs):
                self._flag(
                    seq, "payout", "differs", member=member, recorded=mine, recomputed=theirs
                )

    def finish(self) -> list[Mismatch]:
        """Every report must have its distribution; returns all mismatches, in log order."""
        for key, (seq, _) in self.reported.items():
            if key not in self.distributed:
                self._flag(seq, "distribution", f"of {key[0]} {key[1]} is missing")
        return sorted(self.mismatches, key=lambda m: (m.seq, m.what, m.member or ""))


def _text(payload: dict[str, Any], name: str) -> str | None:
    """A string field, or None: a forged list or object must not break the replay."""
    value = payload.get(name)
    return value if isinstance(value, str) else None


def _same(value: object, expected: object) -> bool:
    """Equal and of the same JSON type (True is not 1)."""
    return type(value) is type(expected) and value == expected
