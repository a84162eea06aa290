"""Every user's device a virtual SuperNode on Flower's simulation engine (Ray)."""

from pathlib import Path

import numpy as np
import pytest

from kumiai.domain.clock import utc_now
from kumiai.domain.cross_device import CrossDeviceSettings
from kumiai.services.agent import device, device_root, load_model, train_agent

pytestmark = pytest.mark.simulation


def test_devices_train_as_virtual_supernodes_and_a_revoked_one_refuses(run: Path) -> None:
    phone = device(device_root(run, 5))
    consent = phone.consent_for("agent")
    assert consent is not None
    phone.revoke(consent.terms.agreement_id, now=utc_now())
    settings = CrossDeviceSettings(
        rounds=2, fraction=1.0, sampling="fixed", factors=2, l2_user=1.0, l2_item=1.0
    )
    result = train_agent(run, settings, job="sim", engine="simulation", evaluate=False)
    assert [h["asked"] for h in result.history] == [24, 24]
    assert [h["took_part"] for h in result.history] == [23, 23]
    assert result.refusals == 2
    arrays, _ = load_model(run)
    assert arrays[0].shape == (20, 2) and np.abs(arrays[1]).max() > 0
    # each device that took part solved and kept its profile; the revoked one did not
    assert (run / "devices" / "0000004" / "profile.npz").is_file()
    assert not (run / "devices" / "0000005" / "profile.npz").exists()
