"""A hand-built ledger holding every kind the report reads, with the seqs the tests cite.

The payloads follow the ledger contract (docs/report.md): A's themes, funds, spend and
milestones, B's spin-outs, licences, revenue and royalties, and main's jobs and models.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from kumiai.domain.bookkeeping import VerifiedLedger
from kumiai.domain.ledger import Entry

START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
DAY = date(2026, 11, 30)  # the report's day in these tests
EVIL = "<script>alert('x')</script> & <b>bold</b> | [link](http://x.test)"


def entries(*acts: tuple[str, str, dict[str, Any]], start: datetime = START) -> list[Entry]:
    return [
        Entry(seq, start + timedelta(days=seq), actor, kind, payload)
        for seq, (actor, kind, payload) in enumerate(acts)
    ]


def verified(items: list[Entry], witnesses: tuple[str, ...] = ("lab",)) -> VerifiedLedger:
    return VerifiedLedger(
        entries=tuple(items),
        leaf_hashes=tuple(f"{e.seq:064x}" for e in items),
        root="ab" * 32,
        size=len(items),
        head_time=items[-1].time,
        witnesses=witnesses,
    )


def job(job_id: str, project: str) -> dict[str, Any]:
    return {"job": job_id, "document": {"job": {"job_id": job_id, "project": project}}}


ACTS: list[tuple[str, str, dict[str, Any]]] = [
    ("coordinator", "consortium.created", {"coordinator_key": "k"}),  # 0
    ("lab", "member.joined", {"member": "lab", "kind": "university", "public_key": "a"}),  # 1
    ("kita", "member.joined", {"member": "kita", "kind": "hospital", "public_key": "b"}),  # 2
    ("minami", "member.joined", {"member": "minami", "kind": "hospital", "public_key": "c"}),
    ("kita", "dataset.registered", {"dataset": "kita-heart", "member": "kita"}),  # 4
    ("minami", "dataset.registered", {"dataset": "minami-heart", "member": "minami"}),  # 5
    ("lab", "theme.created", {"theme": "medical", "title": "Medical AI", "description": "x"}),
    ("lab", "theme.created", {"theme": "industrial", "title": "Industrial", "description": ""}),
    ("coordinator", "theme.ranked", {"ranking": ["industrial", "medical"], "motion": "m-1"}),
    (
        "lab",
        "project.proposed",
        {"project": "heart", "title": EVIL, "purpose": "diagnosis", "members": ["kita", "lab"]},
    ),  # 9
    ("lab", "project.themed", {"project": "heart", "theme": "medical"}),  # 10
    ("coordinator", "project.approved", {"project": "heart", "motion": "m-2"}),  # 11
    ("lab", "project.proposed", {"project": "loose", "title": "Loose", "purpose": "p"}),  # 12
    (
        "lab",
        "funds.received",
        {"source": "s1", "kind": "dues", "from": "kita", "amount_yen": 1_000_000, "note": "n"},
    ),  # 13
    (
        "lab",
        "funds.received",
        {"source": "s2", "kind": "grant", "from": "nedo", "amount_yen": 5_000_000, "note": EVIL},
    ),  # 14
    (
        "lab",
        "funds.received",
        {"source": "s3", "kind": "investor", "from": "vc", "amount_yen": 2_500_000, "note": ""},
    ),  # 15
    (
        "coordinator",
        "funds.allocated",
        {
            "project": "heart",
            "amount_yen": 3_000_000,
            "source": "s2",
            "motion": "m-3",
            "site_rounds": 60,
        },
    ),  # 16
    (
        "coordinator",
        "funds.allocated",
        {
            "project": "heart",
            "amount_yen": 500_000,
            "source": "s1",
            "motion": "m-4",
            "site_rounds": None,
        },
    ),  # 17
    (
        "lab",
        "spend.recorded",
        {
            "project": "heart",
            "category": "personnel",
            "amount_yen": 1_200_000,
            "description": "postdoc",
            "spent_on": "2026-10-31",
        },
    ),  # 18
    (
        "lab",
        "spend.recorded",
        {
            "project": "heart",
            "category": "compute",
            "amount_yen": 300_001,
            "description": EVIL,
            "spent_on": "2026-11-01",
        },
    ),  # 19
    (
        "lab",
        "spend.recorded",
        {
            "project": "heart",
            "category": "personnel",
            "amount_yen": 99_999,
            "description": "travel",
            "spent_on": "2026-11-02",
        },
    ),  # 20
    (
        "lab",
        "milestone.set",
        {"project": "heart", "milestone": "m1", "title": "Model", "due": "2026-11-15"},
    ),  # 21
    (
        "lab",
        "milestone.set",
        {"project": "heart", "milestone": "m2", "title": "Paper", "due": "2026-11-20"},
    ),  # 22
    (
        "lab",
        "milestone.set",
        {"project": "heart", "milestone": "m3", "title": "Trial", "due": "2026-12-01"},
    ),  # 23
    ("lab", "job.started", job("job-1", "heart")),  # 24
    (
        "coordinator",
        "round.completed",
        {
            "job": "job-1",
            "round": 1,
            "participants": ["kita-heart", "minami-heart"],
            "epsilon": {"kita-heart": 0.5, "minami-heart": 0.25},
        },
    ),  # 25
    (
        "coordinator",
        "round.completed",
        {
            "job": "job-1",
            "round": 2,
            "participants": ["kita-heart", "minami-heart"],
            "epsilon": {"kita-heart": 0.75, "minami-heart": 0.5},
        },
    ),  # 26
    (
        "kita",
        "privacy.recovered",
        {
            "job": "job-1",
            "dataset": "kita-heart",
            "epsilon": 1.0,
            "recorded_epsilon": 0.75,
            "rounds": [3],
        },
    ),  # 27
    (
        "lab",
        "model.released",
        {"model": "heart-v1", "job": "job-1", "metrics": {"accuracy": 0.8125, "auc": 0.875}},
    ),  # 28
    (
        "coordinator",
        "model.contributions",
        {
            "model": "heart-v1",
            "metric": "auc",
            "method": "exact",
            "shares": {"kita-heart": 0.25, "minami-heart": -0.0625},
        },
    ),  # 29
    (
        "lab",
        "milestone.evidence",
        {"project": "heart", "milestone": "m1", "evidence": [{"kind": "model", "ref": "heart-v1"}]},
    ),  # 30
    (
        "coordinator",
        "milestone.accepted",
        {"project": "heart", "milestone": "m1", "motion": "m-5"},
    ),  # 31
    (
        "coordinator",
        "milestone.rejected",
        {"project": "heart", "milestone": "m2", "motion": "m-6"},
    ),  # 32
    ("lab", "job.started", job("job-2", "heart")),  # 33
    (
        "coordinator",
        "round.completed",
        {
            "job": "job-2",
            "round": 1,
            "participants": ["kita-heart"],
            "epsilon": {"kita-heart": 0.125},
        },
    ),  # 34
    (
        "coordinator",
        "spinout.created",
        {
            "spinout": "heart-co",
            "founders": ["lab", "kita"],
            "theme": "medical",
            "project": "heart",
            "motion": "m-7",
        },
    ),  # 35
    (
        "coordinator",
        "licence.granted",
        {
            "licence": "lic-1",
            "licensee": "heart-co",
            "model": "heart-v1",
            "motion": "m-8",
            "terms": {
                "field_of_use": "triage",
                "territory": "JP",
                "starts": "2026-11-01",
                "ends": "2027-10-31",
                "royalty_rate_bp": 500,
                "restrictions": ["no clinical decision without regulatory approval"],
            },
        },
    ),  # 36
    (
        "heart-co",
        "revenue.reported",
        {"licence": "lic-1", "period": "2026-11", "revenue_yen": 10_000_001},
    ),  # 37
    (
        "coordinator",
        "royalties.distributed",
        {
            "licence": "lic-1",
            "period": "2026-11",
            "revenue_yen": 10_000_001,
            "royalty_yen": 500_000,
            "association_yen": 100_000,
            "payouts": {"kita": 400_000, "minami": 0},
            "contributions_seq": 29,
            "rule": "largest remainder",
        },
    ),  # 38
    (
        "heart-co",
        "revenue.reported",
        {"licence": "lic-1", "period": "2026-12", "revenue_yen": 2_000},
    ),  # 39
]


def full_ledger() -> VerifiedLedger:
    return verified(entries(*ACTS))
