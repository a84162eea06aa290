"""Both verifiers recompute every royalty to the yen, and agree code by code.

A licence is granted by vote and revenue reported through kumiai's services; a hostile
coordinator then rewrites one entry, signs it again with its own key (or the node's, for a
licensee's report) and signs every tree head over the rewritten log. Signatures, tree and
heads all verify, so only the recomputation (domain.royalty_audit in Python, its BigInt
port in verifiers/js) can catch it, and both must name the same entry with the same code.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kumiai.domain.audit import report_document
from kumiai.services import licences, royalties, spinouts, transparency
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import export_ledger
from tests.services.licensing import MODEL, association, pass_motion
from tests.services.test_licences import TERMS, _forge
from tests.verifiers.test_js_verifier import _verdicts, run_js


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    """kokoro-ai licensed heart-v1; the charter gives the association 1/4 of each royalty."""
    consortium = association(tmp_path_factory.mktemp("royalties") / "c", association_share="1/4")
    spin = spinouts.propose_spinout(
        consortium,
        name="kokoro-ai",
        founders=("lab", "cleveland-clinic"),
        theme=None,
        project="heart",
        proposer="kokoro-corp",
    )
    pass_motion(consortium, spin.id)
    grant = licences.propose_licence(
        consortium, model=MODEL, licensee="kokoro-ai", proposer="lab", **TERMS
    )
    pass_motion(consortium, grant.id)
    for period, revenue in (("2027-Q1", 12_345_678), ("2027-05", 9_999)):
        royalties.report_revenue(
            consortium, "licence-1", period=period, revenue_yen=revenue, by="kokoro-ai"
        )
    return consortium


def _paid(payload: dict[str, Any]) -> bool:
    return payload["royalty_yen"] > 100_000


def _richer(payload: dict[str, Any]) -> dict[str, Any]:
    payouts = dict(payload["payouts"])
    payouts["va-long-beach"] += 7
    payouts["cleveland-clinic"] -= 7
    return {**payload, "payouts": payouts}


def _cheaper(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "terms": {**payload["terms"], "royalty_rate_bp": 100}}


def _association_keeps_more(payload: dict[str, Any]) -> dict[str, Any]:
    """The 1/5 default instead of the charter's 1/4: the members get the difference."""
    royalty = payload["royalty_yen"]
    return {**payload, "association_yen": royalty // 5}


def _swapped(payload: dict[str, Any]) -> dict[str, Any]:
    shares = payload["shares"]
    return {
        **payload,
        "shares": {
            **shares,
            "va-long-beach-heart": shares["cleveland-clinic-heart"],
            "cleveland-clinic-heart": shares["va-long-beach-heart"],
        },
    }


def _more_revenue(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "revenue_yen": payload["revenue_yen"] + 1}


# name: (kind, change, actor, where, the entry's expected codes)
FORGERIES: dict[str, tuple[str, Callable[..., Any], str | None, Callable[..., bool], list[str]]] = {
    "payout moved between members": (
        "royalties.distributed",
        _richer,
        None,
        _paid,
        ["royalty-payout"],
    ),
    "association share not the charter's": (
        "royalties.distributed",
        _association_keeps_more,
        None,
        _paid,
        ["royalty-payout"],
    ),
    "licence at another rate than voted": (
        "licence.granted",
        _cheaper,
        None,
        lambda p: True,
        ["royalty-licence"],
    ),
    "contribution shares swapped": (
        "model.contributions",
        _swapped,
        None,
        lambda p: True,
        [],  # the shares entry itself is not wrong: the payouts computed from it are
    ),
    "revenue reported by a non-licensee": (
        "revenue.reported",
        lambda p: p,
        "lab",
        lambda p: True,
        ["royalty-report"],
    ),
    "revenue changed in the distribution": (
        "royalties.distributed",
        _more_revenue,
        None,
        _paid,
        ["royalty-payout"],
    ),
}


def _both(export: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    python = report_document(transparency.verify_export(export))
    code, js = run_js(export, None)
    assert _verdicts(js) == _verdicts(python)
    assert code == (0 if python["ok"] else 1)
    return python, js


def test_the_honest_export_passes_both(world: Consortium, tmp_path: Path) -> None:
    export = tmp_path / "ledger.jsonl"
    export_ledger(world, export)
    python, _ = _both(export)
    assert python["ok"], [e for e in python["entries"] if not e["ok"]]
    assert royalties.verify_royalties(export).distributions == 2


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_re_signed_forgery_fails_both_with_the_same_codes(
    world: Consortium, tmp_path: Path, forgery: str
) -> None:
    kind, change, actor, where, codes = FORGERIES[forgery]
    export = tmp_path / "ledger.jsonl"
    export_ledger(world, export)
    records = [json.loads(line) for line in export.read_text().splitlines()]
    seq = _forge(world, export, records, kind, change, actor=actor, where=where)
    python, _ = _both(export)
    assert not python["ok"]
    assert python["entries"][seq]["codes"] == codes
    failing = {e["seq"]: e["codes"] for e in python["entries"] if not e["ok"]}
    assert all(c.startswith("royalty-") for cs in failing.values() for c in cs), failing
    assert all(h["ok"] for h in python["tree_heads"] + python["consistency"])
    if not codes:  # caught at the distributions that used the swapped shares
        assert any("royalty-payout" in cs for cs in failing.values()), failing
