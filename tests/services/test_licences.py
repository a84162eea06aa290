"""Spin-outs, licences, revenue and royalties through the services.

Every act is checked with its ledger entry; every refusal changes nothing (rows and ledger
counted before and after); the yen are exact and recomputed from an export offline.
"""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.schema import (
    LicenceRow,
    MemberRow,
    MotionRow,
    RevenueReportRow,
    SpinoutRow,
)
from kumiai.domain.errors import InvalidInput, KumiaiError, NotFound, StateError
from kumiai.services import licences, motions, royalties, spinouts
from kumiai.services.consortium import Consortium
from kumiai.services.transparency import export_ledger, show_entries
from tests.services.licensing import MODEL, association, pass_motion, record_shares

TERMS = {
    "field_of_use": "cardiology triage",
    "territory": "JP",
    "starts": "2027-01-01",
    "ends": "2028-12-31",
    "royalty_bp": 500,
    "restrictions": ("no clinical decision without regulatory approval",),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    """kokoro-ai spun out of `heart` and licensed heart-v1 (shared: read-only tests use it)."""
    consortium = association(tmp_path_factory.mktemp("world") / "c")
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
    return consortium


def _state(consortium: Consortium) -> tuple:
    with consortium.sessions() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (MemberRow, SpinoutRow, LicenceRow, RevenueReportRow, MotionRow)
        )
    return counts, consortium.ledger.tree().size


def _refused(consortium: Consortium, error: type[KumiaiError], match: str, act) -> None:  # type: ignore[no-untyped-def]
    before = _state(consortium)
    with pytest.raises(error, match=match):
        act()
    assert _state(consortium) == before


def test_a_passed_spinout_motion_creates_the_member_and_its_entry(world: Consortium) -> None:
    info = spinouts.show_spinout(world, "kokoro-ai")
    assert (info.founders, info.project, info.theme) == (("cleveland-clinic", "lab"), "heart", None)
    [entry] = show_entries(world, kind="spinout.created")
    assert entry.actor == "coordinator"
    assert entry.payload == {
        "spinout": "kokoro-ai",
        "founders": ["cleveland-clinic", "lab"],
        "theme": None,
        "project": "heart",
        "motion": info.motion,
    }
    joined = [e for e in show_entries(world, kind="member.joined") if e.actor == "kokoro-ai"]
    assert joined[0].payload["kind"] == "spinout"
    assert joined[0].seq < entry.seq
    motion = motions.show_motion(world, info.motion)
    assert "lab" not in motion.eligible and "cleveland-clinic" not in motion.eligible
    assert world.node("kokoro-ai").public_key()  # its own node made its key


def test_spinout_refusals_change_nothing(world: Consortium) -> None:
    def propose(**changes: object):  # type: ignore[no-untyped-def]
        values: dict = {
            "name": "heart-labs",
            "founders": ("lab",),
            "theme": "medical",
            "project": None,
            "proposer": "lab",
            **changes,
        }
        return lambda: spinouts.propose_spinout(world, **values)

    _refused(world, StateError, "'kokoro-ai' is already a member", propose(name="kokoro-ai"))
    _refused(world, NotFound, "unknown member 'ghost'", propose(founders=("lab", "ghost")))
    _refused(world, NotFound, "unknown project 'lungs'", propose(theme=None, project="lungs"))
    _refused(world, InvalidInput, "a theme or a project", propose(theme=None))
    with pytest.raises(NotFound, match="unknown spin-out 'heart-labs'"):
        spinouts.show_spinout(world, "heart-labs")


def test_a_passed_licence_motion_grants_the_licence(world: Consortium) -> None:
    [info] = licences.list_licences(world)
    assert (info.licence, info.licensee, info.model) == ("licence-1", "kokoro-ai", MODEL)
    assert info.terms["royalty_rate_bp"] == 500
    [entry] = show_entries(world, kind="licence.granted")
    assert entry.payload == {
        "licence": "licence-1",
        "licensee": "kokoro-ai",
        "model": MODEL,
        "terms": {
            "field_of_use": "cardiology triage",
            "territory": "JP",
            "starts": "2027-01-01",
            "ends": "2028-12-31",
            "royalty_rate_bp": 500,
            "restrictions": ["no clinical decision without regulatory approval"],
        },
        "motion": info.motion,
    }
    assert "kokoro-ai" not in motions.show_motion(world, info.motion).eligible


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"model": "heart-v9"}, NotFound, "unknown model version 'heart-v9'"),
        ({"licensee": "ghost"}, NotFound, "unknown member 'ghost'"),
        ({"royalty_bp": 0}, InvalidInput, "outside 1..10000"),
        ({"royalty_bp": 10_001}, InvalidInput, "outside 1..10000"),
        ({"ends": "2026-12-31"}, InvalidInput, "ends .2026-12-31. before it starts"),
        ({"field_of_use": ""}, InvalidInput, "field of use is empty"),
        ({"territory": " "}, InvalidInput, "territory is empty"),
        ({"proposer": "kokoro-ai"}, InvalidInput, "seat"),
    ],
)
def test_licence_refusals_change_nothing(
    world: Consortium, change: dict, error: type[KumiaiError], message: str
) -> None:
    values = {"model": MODEL, "licensee": "kokoro-ai", "proposer": "lab", **TERMS, **change}
    _refused(world, error, message, lambda: licences.propose_licence(world, **values))


def test_a_licence_by_the_generic_motion_must_carry_its_terms(world: Consortium) -> None:
    payload = {"licensee": "kokoro-ai", "model": MODEL}
    _refused(
        world,
        InvalidInput,
        "kumiai licence propose",
        lambda: motions.propose_motion(
            world, decision="grant-licence", payload=payload, proposer="lab"
        ),
    )


def test_revenue_distributes_royalties_to_the_yen(tmp_path: Path, world: Consortium) -> None:
    line = royalties.report_revenue(
        world, "licence-1", period="2027-Q1", revenue_yen=12_345_678, by="kokoro-ai"
    )
    # floor(12,345,678 × 5 %) = 617,283; the association's 1/5 = 123,456; 493,827 left,
    # by 0.05 : 0.03 : 0 (va-long-beach's share is negative) = 308,641.875 and 185,185.125;
    # the floors leave 1 yen, which goes to the larger remainder (.875), cleveland-clinic.
    assert (line.royalty_yen, line.association_yen) == (617_283, 123_456)
    assert line.payouts == {
        "cleveland-clinic": 308_642,
        "hungarian-cardiology": 185_185,
        "va-long-beach": 0,
    }
    reported, distributed = (
        show_entries(world, kind="revenue.reported")[-1],
        show_entries(world, kind="royalties.distributed")[-1],
    )
    assert reported.actor == "kokoro-ai"  # signed by the licensee's node
    assert reported.payload == {
        "licence": "licence-1",
        "period": "2027-Q1",
        "revenue_yen": 12_345_678,
    }
    [contributions] = show_entries(world, kind="model.contributions")
    assert distributed.actor == "coordinator" and distributed.seq == reported.seq + 1
    assert distributed.payload["contributions_seq"] == contributions.seq
    assert distributed.payload["payouts"] == line.payouts
    export = tmp_path / "ledger.jsonl"
    export_ledger(world, export)
    verdict = royalties.verify_royalties(export)
    assert verdict.ok and verdict.distributions == 1 and verdict.mismatches == []


def test_revenue_refusals_change_nothing(world: Consortium) -> None:
    def report(**changes: object):  # type: ignore[no-untyped-def]
        values: dict = {"period": "2027-Q3", "revenue_yen": 1000, "by": "kokoro-ai", **changes}
        return lambda: royalties.report_revenue(world, "licence-1", **values)

    _refused(world, InvalidInput, "only the licensee 'kokoro-ai'", report(by="lab"))
    _refused(world, InvalidInput, "outside the licence's term", report(period="2029-Q1"))
    _refused(world, InvalidInput, "not a quarter or a month", report(period="2027"))
    _refused(world, InvalidInput, "whole yen from 0", report(revenue_yen=-1))
    _refused(world, InvalidInput, "whole yen from 0", report(revenue_yen=10**15 + 1))
    _refused(world, NotFound, "unknown member 'ghost'", report(by="ghost"))
    _refused(
        world,
        NotFound,
        "unknown licence 'licence-9'",
        lambda: royalties.report_revenue(
            world, "licence-9", period="2027-Q3", revenue_yen=1, by="kokoro-ai"
        ),
    )
    royalties.report_revenue(world, "licence-1", period="2027-Q2", revenue_yen=0, by="kokoro-ai")
    _refused(world, InvalidInput, "already reported", report(period="2027-Q2"))


def test_a_model_without_contributions_is_refused(tmp_path: Path) -> None:
    from tests.services.licensing import release

    consortium = association(tmp_path / "c")
    release(consortium, "heart-v2")
    grant = licences.propose_licence(
        consortium, model="heart-v2", licensee="kokoro-corp", proposer="lab", **TERMS
    )
    pass_motion(consortium, grant.id)
    _refused(
        consortium,
        StateError,
        "no contributions recorded.*kumiai contributions heart-v2",
        lambda: royalties.report_revenue(
            consortium, "licence-1", period="2027-Q1", revenue_yen=100, by="kokoro-corp"
        ),
    )
    # The newest contributions entry is the one used, and the charter's own share applies.
    record_shares(consortium, "heart-v2", {"cleveland-clinic-heart": 1})
    line = royalties.report_revenue(
        consortium, "licence-1", period="2027-Q1", revenue_yen=1_000, by="kokoro-corp"
    )
    assert (line.royalty_yen, line.association_yen) == (50, 10)
    assert line.payouts == {"cleveland-clinic": 40}


def test_the_charter_states_the_association_share(tmp_path: Path) -> None:
    consortium = association(tmp_path / "c", association_share="0/1")
    grant = licences.propose_licence(
        consortium, model=MODEL, licensee="kokoro-corp", proposer="lab", **TERMS
    )
    pass_motion(consortium, grant.id)
    line = royalties.report_revenue(
        consortium, "licence-1", period="2027-05", revenue_yen=200_000, by="kokoro-corp"
    )
    assert (line.royalty_yen, line.association_yen) == (10_000, 0)
    assert line.payouts == {
        "cleveland-clinic": 6_250,
        "hungarian-cardiology": 3_750,
        "va-long-beach": 0,
    }


def test_statements(world: Consortium) -> None:
    mine = royalties.statements(world, "hungarian-cardiology")
    [statement] = mine.statements
    assert statement.member == "hungarian-cardiology"
    by_period = {line.period: line.payout_yen for line in statement.lines}
    assert by_period == {"2027-Q1": 185_185, "2027-Q2": 0}
    assert statement.total_yen == sum(by_period.values())
    everyone = royalties.statements(world)
    assert [s.member for s in everyone.statements] == [
        "cleveland-clinic",
        "hungarian-cardiology",
        "va-long-beach",
    ]
    assert everyone.association_yen + sum(s.total_yen for s in everyone.statements) == (
        everyone.royalty_yen
    )
    with pytest.raises(NotFound, match="unknown member 'ghost'"):
        royalties.statements(world, "ghost")
    assert json.dumps(everyone.revenue_yen)  # whole yen, plain JSON


# -- offline recomputation against a dishonest coordinator ------------------------------


def _verified_export(world: Consortium, tmp_path: Path) -> tuple[Path, list[dict]]:
    """An export holding at least one distribution, and its records."""
    if not show_entries(world, kind="royalties.distributed"):
        royalties.report_revenue(
            world, "licence-1", period="2027-Q4", revenue_yen=9_999, by="kokoro-ai"
        )
    path = tmp_path / "ledger.jsonl"
    export_ledger(world, path)
    return path, [json.loads(line) for line in path.read_text().splitlines()]


def _forge(  # type: ignore[no-untyped-def]
    world: Consortium,
    path: Path,
    records: list[dict],
    kind: str,
    change,
    actor: str | None = None,
    where=lambda payload: True,
) -> int:
    """Rewrite the last entry of `kind` (whose payload `where` accepts) and re-sign it, with
    the coordinator's own key or the key of `actor`'s node; re-sign every tree head over the
    rewritten log, so that signatures and tree verify. Witness cosignatures are dropped."""
    from dataclasses import replace

    from kumiai.domain import merkle
    from kumiai.domain.ledger import SignedEntry, TreeHead, sign_head

    header, rest = records[0], records[1:]
    leaves = [r for r in rest if r["record"] == "entry"]
    entries = [SignedEntry.from_leaf_bytes(r["leaf"]).entry for r in leaves]
    seq = max(i for i, e in enumerate(entries) if e.kind == kind and where(e.payload))
    entry = SignedEntry.from_leaf_bytes(leaves[seq]["leaf"]).entry
    forged = replace(entry, payload=change(dict(entry.payload)), actor=actor or entry.actor)
    leaves[seq] = {"record": "entry", "leaf": world.sign_entry(forged).leaf_bytes().decode()}
    tree = merkle.MerkleTree(merkle.leaf_hash(r["leaf"].encode()) for r in leaves)
    heads = []
    for record in rest:
        if record["record"] == "tree-head":
            old = TreeHead.from_document(record)
            head = sign_head(
                TreeHead(old.size, tree.root(old.size).hex(), old.time), world.coordinator_key()
            )
            heads.append({"record": "tree-head", **json.loads(head.to_json())})
    lines = [header, *leaves, *heads]
    path.write_text("\n".join(json.dumps(r, sort_keys=True) for r in lines) + "\n")
    return seq


def _paid(payload: dict) -> bool:
    return payload["royalty_yen"] > 0


def _mismatches(path: Path) -> list[dict]:
    verdict = royalties.verify_royalties(path)
    assert verdict.ledger_ok, verdict.ledger_findings  # the forgery passes the ledger audit
    assert not verdict.ok
    return verdict.mismatches


def test_an_honest_export_matches_to_the_yen(world: Consortium, tmp_path: Path) -> None:
    path, _ = _verified_export(world, tmp_path)
    verdict = royalties.verify_royalties(path)
    assert verdict.ok and verdict.ledger_ok and verdict.mismatches == []
    assert verdict.distributions == len(show_entries(world, kind="royalties.distributed"))


def test_a_payout_re_signed_with_the_coordinator_key_is_caught(
    world: Consortium, tmp_path: Path
) -> None:
    path, records = _verified_export(world, tmp_path)

    def richer(payload: dict) -> dict:
        payouts = dict(payload["payouts"])
        payouts["va-long-beach"] += 7
        payouts["cleveland-clinic"] -= 7
        return {**payload, "payouts": payouts}

    seq = _forge(world, path, records, "royalties.distributed", richer, where=_paid)
    found = {(m["what"], m["member"]): m for m in _mismatches(path)}
    assert set(found) == {("payout", "cleveland-clinic"), ("payout", "va-long-beach")}
    va = found[("payout", "va-long-beach")]
    assert (va["seq"], va["recorded"], va["recomputed"]) == (seq, 7, 0)


def test_a_changed_rate_is_caught(world: Consortium, tmp_path: Path) -> None:
    path, records = _verified_export(world, tmp_path)

    def cheaper(payload: dict) -> dict:
        return {**payload, "terms": {**payload["terms"], "royalty_rate_bp": 100}}

    seq = _forge(world, path, records, "licence.granted", cheaper)
    mismatches = _mismatches(path)
    assert mismatches[0]["seq"] == seq and mismatches[0]["what"] == "licence"
    assert "not what a passed grant-licence motion voted" in mismatches[0]["problem"]


def test_a_royalty_at_another_rate_is_caught(world: Consortium, tmp_path: Path) -> None:
    path, records = _verified_export(world, tmp_path)

    def lower(payload: dict) -> dict:
        return {**payload, "royalty_yen": payload["revenue_yen"] // 100}

    _forge(world, path, records, "royalties.distributed", lower, where=_paid)
    [mismatch] = _mismatches(path)
    assert mismatch["what"] == "royalty_yen" and mismatch["recomputed"] > mismatch["recorded"]


def test_a_changed_share_is_caught(world: Consortium, tmp_path: Path) -> None:
    path, records = _verified_export(world, tmp_path)

    def swapped(payload: dict) -> dict:
        shares = payload["shares"]
        return {
            **payload,
            "shares": {
                **shares,
                "va-long-beach-heart": shares["cleveland-clinic-heart"],
                "cleveland-clinic-heart": shares["va-long-beach-heart"],
            },
        }

    _forge(world, path, records, "model.contributions", swapped)
    mismatches = _mismatches(path)
    assert {m["member"] for m in mismatches if m["what"] == "payout"} >= {
        "cleveland-clinic",
        "va-long-beach",
    }


def test_a_revenue_report_by_a_non_licensee_is_caught(world: Consortium, tmp_path: Path) -> None:
    path, records = _verified_export(world, tmp_path)
    seq = _forge(world, path, records, "revenue.reported", lambda p: p, actor="lab")
    mismatches = _mismatches(path)
    assert mismatches[0]["seq"] == seq and mismatches[0]["what"] == "report"
    assert "only the licensee 'kokoro-ai' reports revenue" in mismatches[0]["problem"]
    assert any(m["what"] == "distribution" for m in mismatches)  # its royalties follow nothing


def test_a_tampered_export_fails_the_ledger_audit_first(world: Consortium, tmp_path: Path) -> None:
    path, _ = _verified_export(world, tmp_path)
    text = path.read_text()
    assert "12345678" in text
    path.write_text(text.replace("12345678", "12345679"))  # not re-signed
    verdict = royalties.verify_royalties(path)
    assert not verdict.ledger_ok and not verdict.ok
    assert any("signature does not verify" in f for f in verdict.ledger_findings)


def test_conflicted_parties_do_not_vote_and_spinouts_do_not_join_by_hand(
    world: Consortium,
) -> None:
    from kumiai.services.members import add_member

    licence = licences.propose_licence(
        world, model=MODEL, licensee="hungarian-cardiology", proposer="lab", **TERMS
    )
    _refused(
        world,
        InvalidInput,
        "conflicted",
        lambda: motions.cast_vote(world, licence.id, "hungarian-cardiology", "yes"),
    )
    spin = spinouts.propose_spinout(
        world, name="va-labs", founders=("va-long-beach",), theme="medical", project=None,
        proposer="lab",
    )  # fmt: skip
    _refused(
        world,
        InvalidInput,
        "conflicted",
        lambda: motions.cast_vote(world, spin.id, "va-long-beach", "yes"),
    )
    _refused(
        world,
        InvalidInput,
        "kumiai spinout create other-labs",
        lambda: add_member(world, "other-labs", "spinout"),
    )


def test_the_whole_flow_on_sqlite_and_postgresql(backend: str, tmp_path: Path) -> None:
    """Spin-out, licence, a report of ¥10^15 (the largest allowed: BIGINT), verified offline."""
    consortium = association(tmp_path / "c")
    spin = spinouts.propose_spinout(
        consortium, name="kokoro-ai", founders=("lab",), theme="medical", project=None,
        proposer="kokoro-corp",
    )  # fmt: skip
    pass_motion(consortium, spin.id)
    grant = licences.propose_licence(
        consortium, model=MODEL, licensee="kokoro-ai", proposer="lab", **TERMS
    )
    pass_motion(consortium, grant.id)
    line = royalties.report_revenue(
        consortium, "licence-1", period="2028-12", revenue_yen=10**15, by="kokoro-ai"
    )
    assert (line.royalty_yen, line.association_yen) == (5 * 10**13, 10**13)
    assert line.payouts == {
        "cleveland-clinic": 25 * 10**12,
        "hungarian-cardiology": 15 * 10**12,
        "va-long-beach": 0,
    }
    assert licences.show_licence(consortium, "licence-1").revenue[0].revenue_yen == 10**15
    path = tmp_path / "ledger.jsonl"
    export_ledger(consortium, path)
    assert royalties.verify_royalties(path).ok
