"""Acts a user's device signs for the ledger with its own key: consent signed and revoked.

A device is not a member: it never joins, and the coordinator keeps no row for it. Its
actor name is derived from its key (`device:` + the key's fingerprint) and each of its
entries carries that key, so the entry proves itself: an auditor checks the signature
under the key the payload names, and that the name fits the key. The user's own id is not
on the ledger; only their device's key is.
"""

from typing import Any

from kumiai.domain import keys

DEVICE_KINDS = ("consent.signed", "consent.revoked")
"""The ledger kinds a device signs itself."""

PREFIX = "device:"


def device_actor(public_key: str) -> str:
    """The ledger actor name of the device holding this public key."""
    return PREFIX + keys.fingerprint(public_key)


def device_signer(actor: str, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the key the entry must verify under, the problem if the entry misnames it)."""
    key = payload.get("device_key")
    if not isinstance(key, str):
        return None, "does not name the device's public key (device_key)"
    if actor != device_actor(key):
        return None, f"{actor!r} is not the name of the device key it carries"
    return key, None
