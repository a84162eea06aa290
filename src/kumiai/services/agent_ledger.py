"""The personal agent's acts on the ledger: who may use whose ratings, and what training used.

A run's ledger lives in its own consortium home (`RUN/consortium`). Each device signs its
consent and its revocation itself (`Device.sign_entry`, actor `device:<key fingerprint>`);
the coordinator signs a training run's start and completion with its user-level ε and
sampling rate. The coordinator keeps no row per user: the ledger is the only record, and a
device appears there only by its key, never by its user's id.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from kumiai.adapters.storage.database import transaction
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import to_iso
from kumiai.domain.cross_device import CrossDeviceSettings
from kumiai.domain.ledger import COORDINATOR, Entry, SignedEntry
from kumiai.domain.user_dp import UserDpPlan
from kumiai.services.consortium import Consortium, init_consortium
from kumiai.services.ledger import Act


class Device(Protocol):
    """What the ledger needs of a user's device (kumiai.node.device.Device)."""

    @property
    def actor(self) -> str: ...

    def public_key(self) -> str: ...

    def sign_entry(self, entry: Entry) -> SignedEntry: ...


LEDGER_HOME = "consortium"


def run_consortium(run: Path) -> Consortium:
    """The run's own consortium home, holding its ledger (created on first use)."""
    return init_consortium(run / LEDGER_HOME)


def _device_acts(run: Path, acts: Iterable[tuple[Device, str, dict[str, Any]]]) -> int:
    """Append acts each signed by its own device, all in one transaction."""
    consortium = run_consortium(run)
    count = 0
    with transaction(consortium.sessions) as session:
        for phone, kind, payload in acts:
            actor = phone.actor
            body = {"device_key": phone.public_key(), **payload}
            with consortium.acting(actor, phone):  # type: ignore[arg-type]  # signs entries only
                consortium.ledger.append(session, Act(actor, kind, body))
            count += 1
    return count


def _consent_terms(consent: SignedAgreement) -> dict[str, Any]:
    terms = consent.terms
    # Not the agreement's id nor its signature: both would tie the key to the user's id.
    return {
        "project": terms.project,
        "purpose": terms.purpose,
        "max_rounds": terms.max_rounds,
        "epsilon_cap": terms.epsilon_cap,
        "expires_at": to_iso(terms.expires_at),
    }


def record_consents(run: Path, consents: Iterable[tuple[Device, SignedAgreement]]) -> int:
    """`consent.signed` for each device's consent, signed by that device; returns the count."""
    return _device_acts(
        run, ((phone, "consent.signed", _consent_terms(c)) for phone, c in consents)
    )


def record_revocation(run: Path, phone: Device, consent: SignedAgreement, reason: str) -> None:
    """`consent.revoked`, signed by the device withdrawing it."""
    payload = {"project": consent.terms.project, "reason": reason}
    _device_acts(run, [(phone, "consent.revoked", payload)])


def _coordinator_act(run: Path, kind: str, payload: dict[str, Any]) -> None:
    consortium = run_consortium(run)
    with transaction(consortium.sessions) as session:
        consortium.ledger.append(session, Act(COORDINATOR, kind, payload))


def record_training_started(
    run: Path, *, job: str, project: str, devices: int, settings: CrossDeviceSettings
) -> None:
    """`agent.training-started`: the job, its population, sampling rate and ε asked for."""
    _coordinator_act(
        run,
        "agent.training-started",
        {
            "job": job,
            "project": project,
            "devices": devices,
            "rounds": settings.rounds,
            "sampling": settings.sampling,
            "sampling_rate": settings.fraction,
            "epsilon": settings.epsilon,
            "clipping_norm": settings.clipping_norm if settings.epsilon is not None else None,
        },
    )


def record_training_completed(
    run: Path,
    *,
    job: str,
    project: str,
    settings: CrossDeviceSettings,
    plan: UserDpPlan | None,
    updates: int,
    refusals: int,
) -> None:
    """`agent.training-completed`: the user-level ε and δ spent, and how many updates came."""
    _coordinator_act(
        run,
        "agent.training-completed",
        {
            "job": job,
            "project": project,
            "rounds": settings.rounds,
            "sampling_rate": settings.fraction,
            "epsilon": plan.epsilon if plan is not None else None,
            "delta": plan.delta if plan is not None else None,
            "noise_multiplier": plan.noise_multiplier if plan is not None else None,
            "updates": updates,
            "refusals": refusals,
        },
    )
