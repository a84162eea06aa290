"""`kumiai model card MODEL`: a released model's card, computed on demand from the records.

Reads only, and loads no NumPy: the model version, its project, the agreements in its
lineage, the job's privacy-spend records, and the latest `model.audited` ledger entry
(kumiai.services.model_audit) for the figures only the nodes can measure. Computed on
demand rather than stored at release, so a card never disagrees with the records it cites:
a revoked agreement or a new audit shows on the next read.
"""

import json
from typing import Any

from sqlalchemy import select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import (
    AgreementRow,
    DatasetRow,
    ModelVersionRow,
    PrivacySpendRow,
    ProjectRow,
)
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import to_iso
from kumiai.domain.model_card import AUDITED, add, audit_verdict, fairness, gap, reliability
from kumiai.domain.training import TrainingSettings
from kumiai.services.consortium import Consortium
from kumiai.services.lookup import get
from kumiai.services.transparency import show_entries


def model_card(consortium: Consortium, model_id: str) -> dict[str, Any]:
    """The card as one JSON document (`domain.model_card.card_markdown` renders it)."""
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        project = get(session, ProjectRow, row.project)
        lineage, metrics = json.loads(row.lineage_json), json.loads(row.metrics_json)
        settings = TrainingSettings(**lineage.get("settings", {}))
        data = [
            _site(session.get(AgreementRow, agreement), dataset)
            for dataset, agreement in sorted(lineage["agreements"].items())
        ]
        spend = session.scalars(
            select(PrivacySpendRow)
            .where(PrivacySpendRow.job_id == row.job_id)
            .order_by(PrivacySpendRow.dataset)
        ).all()
        privacy = [
            {
                "dataset": s.dataset,
                "member": get(session, DatasetRow, s.dataset).member,
                "epsilon": s.spent,
                "planned": s.planned,
                "delta": s.delta,
                "level": s.level,
            }
            for s in spend
        ]
        released_at, job, strategy = to_iso(row.created_at), row.job_id, row.strategy
    sites = metrics.get("sites", {})
    audited = [
        e
        for e in show_entries(consortium, kind=AUDITED, project=project.name)
        if e.payload.get("model") == model_id
    ]
    charges = [
        {
            "dataset": e.payload["dataset"],
            "member": e.actor,
            "epsilon": e.payload["epsilon"],
            "for": f"contribution analysis ({e.payload['retrainings']} retrainings)",
            "entry": e.seq,
        }
        for e in show_entries(consortium, kind="privacy.charged", project=project.name)
        if e.payload.get("model") == model_id
    ]
    card: dict[str, Any] = {
        "model": model_id,
        "project": project.name,
        "job": job,
        "released_at": released_at,
        "intended_use": {
            "purpose": project.purpose,
            "title": project.title,
            "limits": "Every site's agreement permits this purpose only: any other use of the "
            "model is outside what the stewards consented to.",
        },
        "training": {
            "family": settings.model,
            "strategy": strategy,
            "rounds": settings.rounds,
            "privacy": _privacy_line(settings),
            "secure_aggregation": settings.secure_aggregation,
        },
        "data": data,
        "refused": lineage.get("refused", {}),
        "metrics": {
            "overall": metrics.get("overall", {}),
            "sites": sites,
            "gaps": {
                name: gap({s: m.get(name) for s, m in sites.items()})
                for name in ("accuracy", "auc", "loss")
            },
        },
        "privacy": privacy,
        "privacy_charged_after": charges,  # extra ε the nodes paid for this model's analyses
        "audit": _audit(audited[-1].seq, audited[-1].time, audited[-1].payload)
        if audited
        else None,
        "audit_missing": ""
        if audited
        else (
            f"No node has measured this model yet: `kumiai model audit {model_id}` asks every "
            "site for calibration, per-group figures, importance and the membership-inference "
            "audit."
        ),
    }
    return card


def _site(agreement: AgreementRow | None, dataset: str) -> dict[str, Any]:
    if agreement is None:  # the lineage names it, so the row exists; but never crash a read
        return {"dataset": dataset, "agreement": "?", "steward": "?", "job_kinds": [],
                "epsilon_cap": None, "aggregate_statistics": "?", "min_cohort": 0,
                "expires_at": "?", "revoked": False}  # fmt: skip
    terms = SignedAgreement.from_json(agreement.document).terms
    return {
        "dataset": dataset,
        "agreement": terms.agreement_id,
        "steward": terms.steward,
        "job_kinds": [k.value for k in terms.job_kinds],
        "epsilon_cap": terms.epsilon_cap,
        "aggregate_statistics": terms.aggregate_statistics,
        "min_cohort": terms.min_cohort,
        "expires_at": to_iso(terms.expires_at),
        "revoked": agreement.revoked_at is not None,
    }


def _privacy_line(settings: TrainingSettings) -> str:
    if not settings.private:
        return "none"
    target = f"ε = {settings.epsilon:g} per dataset" if settings.epsilon else "a fixed σ"
    return f"{settings.dp_level}-level, {target}"


def _audit(seq: int, time: str, payload: dict[str, Any]) -> dict[str, Any]:
    sites: dict[str, dict[str, Any]] = payload["sites"]
    histograms = [s["histograms"] for s in sites.values()]
    attribute = payload.get("attribute")
    return {
        "entry": seq,
        "at": time,
        "refused": payload["refused"],
        "calibration": reliability(add(histograms)) if histograms else None,
        "fairness": None
        if attribute is None
        else {
            "attribute": attribute,
            **fairness({d: s["groups"] for d, s in sites.items() if "groups" in s}),
        },
        "importance": payload["importance"],
        "membership": {
            d: {
                "auc": s["membership"]["auc"],
                "members": s["membership"]["members"],
                "non_members": s["membership"]["non_members"],
                "epsilon_lower_bound": s["epsilon_lower_bound"],
                "accounted_epsilon": s["accounted_epsilon"],
                # Recomputed from the two numbers, not taken from the entry's word for it.
                "verdict": audit_verdict(s["epsilon_lower_bound"], s["accounted_epsilon"]),
                "thresholds": s["membership"]["thresholds"],
            }
            for d, s in sorted(sites.items())
        },
    }
