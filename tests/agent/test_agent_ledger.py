"""The agent's acts on the run's ledger: consents signed and revoked by each device's own
key, training started and completed with its user-level ε and sampling rate."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import LedgerEntryRow
from kumiai.domain.clock import utc_now
from kumiai.domain.cross_device import CrossDeviceSettings
from kumiai.domain.device_acts import device_actor, device_signer
from kumiai.domain.errors import InvalidInput, NotFound, StateError
from kumiai.domain.ledger import Entry
from kumiai.services.agent import device, device_root, revoke_consent, train_agent
from kumiai.services.agent_ledger import run_consortium
from kumiai.services.transparency import export_ledger, verify_export, verify_ledger
from tests.verifiers.test_js_verifier import run_js

DP = CrossDeviceSettings(rounds=2, fraction=0.5, epsilon=8.0, clipping_norm=0.3, factors=2)


def entries(run: Path) -> list[dict]:
    consortium = run_consortium(run)
    with transaction(consortium.sessions) as session:
        rows = session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.seq)).all()
        return [json.loads(row.leaf)["entry"] for row in rows]


def test_the_ledger_verifies_after_training_and_shows_a_revoked_consent(
    private_run: Path,
) -> None:
    result = train_agent(private_run, DP, job="films", evaluate=False)
    assert revoke_consent(private_run, "user3", reason="changed my mind") == ("consent-agent-user3")
    audit = verify_ledger(run_consortium(private_run))
    assert audit.ok, audit.findings
    log = entries(private_run)
    assert [e["kind"] for e in log] == [
        "consortium.created",
        *["consent.signed"] * 24,
        "agent.training-started",
        "agent.training-completed",
        "consent.revoked",
    ]
    phone = device(device_root(private_run, 3))
    revoked = log[-1]
    assert revoked["actor"] == phone.actor == device_actor(phone.public_key())
    assert revoked["payload"] == {
        "device_key": phone.public_key(),
        "project": "agent",
        "reason": "changed my mind",
    }
    assert log[4]["actor"] == phone.actor and log[4]["payload"]["epsilon_cap"] == 10.0
    assert result.plan is not None
    started, completed = log[25]["payload"], log[26]["payload"]
    assert started["sampling_rate"] == 0.5 and started["epsilon"] == 8.0
    assert started["devices"] == 24 and started["job"] == "films"
    assert completed["epsilon"] == result.plan.epsilon
    assert completed["delta"] == result.plan.delta
    assert completed["updates"] == round(result.users_per_round * 2)
    # The coordinator's ledger never names a user: only their devices' keys.
    assert not any("user3" in json.dumps(e) for e in log)


def test_a_device_signs_only_its_own_acts(run: Path) -> None:
    phone, other = device(device_root(run, 0)), device(device_root(run, 1))
    entry = Entry(99, utc_now(), other.actor, "consent.revoked", {})
    with pytest.raises(InvalidInput, match="signs its own acts"):
        phone.sign_entry(entry)


def test_an_entry_naming_another_devices_key_is_a_finding(run: Path) -> None:
    phone, other = device(device_root(run, 0)), device(device_root(run, 1))
    key, problem = device_signer(phone.actor, {"device_key": other.public_key()})
    assert (
        key is None and problem == f"{phone.actor!r} is not the name of the device key it carries"
    )
    assert device_signer(phone.actor, {}) == (
        None,
        "does not name the device's public key (device_key)",
    )
    assert device_signer(phone.actor, {"device_key": phone.public_key()}) == (
        phone.public_key(),
        None,
    )


def test_a_refused_or_repeated_revocation_writes_nothing(run: Path) -> None:
    consortium = run_consortium(run)
    with transaction(consortium.sessions) as session:
        before = session.scalar(select(func.count()).select_from(LedgerEntryRow))
    with pytest.raises(NotFound, match="user 'nobody' has no device"):
        revoke_consent(run, "nobody")
    revoke_consent(run, "user3")
    record = run / "devices" / "0000003" / "revoked" / "consent-agent-user3.json"
    first = record.read_bytes()
    with pytest.raises(StateError, match="user 'user3' already revoked consent-agent-user3"):
        revoke_consent(run, "user3")
    with transaction(consortium.sessions) as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntryRow)) == before + 1 == 26
    assert record.read_bytes() == first  # the device keeps its first revocation's time


def test_both_verifiers_accept_the_agents_ledger_and_catch_a_misnamed_device(
    run: Path, tmp_path: Path
) -> None:
    revoke_consent(run, "user3")
    export = tmp_path / "ledger.jsonl"
    export_ledger(run_consortium(run), export)
    code, verdict = run_js(export, None)
    assert code == 0 and verdict["ok"] is True, verdict
    # Tamper: the revocation claims to come from device 0, yet carries device 3's key.
    other = device(device_root(run, 0)).actor
    mine = device(device_root(run, 3)).actor
    lines = export.read_text().splitlines()
    tampered = [line.replace(mine, other) if "consent.revoked" in line else line for line in lines]
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join(tampered) + "\n")
    code, verdict = run_js(forged, None)
    assert code != 0 and "device-signer" in json.dumps(verdict), verdict
    report = verify_export(forged)
    assert not report.ok
    assert "device-signer" in {f.code for f in report.findings}, report.findings
