"""Cross-device training: sampling, drop-outs, consent at each sampling, user-level DP."""

import json
from pathlib import Path

import numpy as np
import pytest

from kumiai.domain.clock import utc_now
from kumiai.domain.cross_device import CrossDeviceSettings, answering, sample_users
from kumiai.domain.errors import InvalidInput
from kumiai.domain.privacy import dp_sgd_event, make_accountant
from kumiai.domain.user_dp import clip_update, plan_user_dp
from kumiai.services.agent import device, device_root, train_agent

SMALL = CrossDeviceSettings(rounds=3, fraction=1.0, sampling="fixed", factors=2)
LEARNS = {"factors": 2, "l2_user": 1.0, "l2_item": 1.0}


def test_fixed_and_poisson_sampling_and_dropouts() -> None:
    rng = np.random.default_rng(0)
    assert len(sample_users(rng, 50, 0.2, "fixed")) == 10
    sizes = [len(sample_users(rng, 1000, 0.1, "poisson")) for _ in range(50)]
    assert 90 < np.mean(sizes) < 110 and len(set(sizes)) > 5
    asked = np.arange(1000)
    assert 850 < len(answering(rng, asked, 0.1)) < 950
    assert answering(rng, asked, 0.0) is asked


def test_bad_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidInput, match=r"--fraction must be in \(0, 1\]"):
        CrossDeviceSettings(fraction=0.0)
    with pytest.raises(InvalidInput, match="Poisson sampling only; use --sampling poisson"):
        CrossDeviceSettings(epsilon=8.0, sampling="fixed")


def test_training_learns_and_every_device_takes_part(run: Path) -> None:
    untrained = train_agent(run, CrossDeviceSettings(rounds=1, server_lr=0.0, **LEARNS))
    result = train_agent(
        run, CrossDeviceSettings(rounds=60, fraction=1.0, sampling="fixed", **LEARNS), job="j2"
    )
    assert result.users_per_round == 24 and result.refusals == 0 and result.dropped == 0
    assert untrained.metrics["rmse"] > 1.1
    assert result.metrics["rmse"] < untrained.metrics["rmse"] - 0.3
    assert (run / "model.npz").is_file()


def test_drop_outs_are_counted_and_never_answer(run: Path) -> None:
    result = train_agent(run, CrossDeviceSettings(rounds=5, fraction=1.0, dropout=0.5, factors=2))
    assert result.dropped > 0
    assert result.users_per_round * 5 + result.dropped == sum(h["asked"] for h in result.history)


def test_revoking_consent_stops_the_device_at_its_next_sampling(run: Path) -> None:
    first = train_agent(run, SMALL, job="before", evaluate=False)
    assert first.refusals == 0
    phone = device(device_root(run, 3))
    profile = (run / "devices" / "0000003" / "profile.npz").read_bytes()
    consent = phone.consent_for("agent")
    assert consent is not None
    phone.revoke(consent.terms.agreement_id, now=utc_now(), reason="changed my mind")
    second = train_agent(run, SMALL, job="after", evaluate=False)
    assert second.refusals == 3  # one device, three rounds, refused at each sampling
    assert all(h["took_part"] == 23 for h in second.history)
    assert (run / "devices" / "0000003" / "profile.npz").read_bytes() == profile
    assert "was revoked" in str(phone.refusal("agent", utc_now()))


def test_a_device_without_dp_consent_refuses_a_non_private_job(private_run: Path) -> None:
    result = train_agent(private_run, SMALL, evaluate=False)
    assert result.refusals == 24 * 3 and all(h["took_part"] == 0 for h in result.history)


def test_user_level_dp_spends_on_each_devices_own_log(private_run: Path) -> None:
    settings = CrossDeviceSettings(
        rounds=4, fraction=0.5, epsilon=6.0, clipping_norm=0.2, factors=2
    )
    result = train_agent(private_run, settings, job="dp-1", evaluate=False)
    plan = result.plan
    assert plan is not None and plan.epsilon <= 6.0 and plan.sample_rate == 0.5
    took_part = 0
    for index in range(24):
        view = device(device_root(private_run, index)).spend_log().view()
        job = view.jobs.get("dp-1")
        if job is None:
            continue  # never sampled: nothing recorded on that phone
        took_part += 1
        assert job.reserved == pytest.approx(plan.epsilon)
        assert job.spent == pytest.approx(plan.spent_after(job.rounds))
    assert took_part > 0
    # a second job over the consent's ε cap is refused by every device it samples
    again = train_agent(private_run, settings, job="dp-2", evaluate=False)
    assert again.refusals > 0
    for index in range(24):
        log = device(device_root(private_run, index)).spend_log().view()
        assert "dp-2" not in log.jobs


def test_a_clipped_update_has_norm_at_most_c() -> None:
    update = [np.full((4, 2), 3.0), np.full(4, 4.0)]
    clipped, norm = clip_update(update, 1.0)
    assert norm == pytest.approx(np.sqrt(8 * 9 + 4 * 16))
    assert np.sqrt(sum(float((a * a).sum()) for a in clipped)) == pytest.approx(1.0)
    small, _ = clip_update([np.array([0.1])], 1.0)
    assert small[0].tolist() == [0.1]


def test_user_level_epsilon_agrees_with_flowers_poisson_accountant() -> None:
    """Flower 1.42's RdpAccountant (client-level, Poisson sampling, add-or-remove-one) and
    dp-accounting's RDP on our plan's event give the same ε."""
    from flwr.serverapp import (
        GaussianPrivacyEvent,
        NeighboringRelation,
        PrivacyConfig,
        RdpAccountant,
        SamplingMethod,
    )

    users, per_round, rounds = 671, 67, 100
    plan = plan_user_dp(
        epsilon=8.0,
        users=users,
        sample_rate=per_round / users,
        rounds=rounds,
        clipping_norm=1.0,
        accountant="rdp",
    )
    flower = RdpAccountant(
        PrivacyConfig(
            target_delta=plan.delta,
            population_size=users,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.POISSON,
        )
    )
    flower.compose(GaussianPrivacyEvent(plan.noise_multiplier, per_round, users), rounds)
    ours = make_accountant("rdp")
    ours.compose(dp_sgd_event(plan.noise_multiplier, per_round / users, rounds))
    assert ours.get_epsilon(plan.delta) == pytest.approx(plan.epsilon, rel=1e-9)
    assert flower.get_epsilon(plan.delta) == pytest.approx(plan.epsilon, rel=1e-6)
    assert 7.9 < plan.epsilon <= 8.0


def test_the_run_record_names_the_population_not_the_users(run: Path) -> None:
    record = json.loads((run / "run.json").read_text())
    assert record["devices"] == 24 and "user_ids" not in record


def test_a_device_refuses_rounds_past_those_its_user_allowed(run: Path) -> None:
    from kumiai.adapters.models.fcf import FCF
    from kumiai.services.agent import fcf_settings

    settings = fcf_settings(CrossDeviceSettings(factors=2))
    reply = device(device_root(run, 0)).train_round(
        job="long",
        project="agent",
        round_=101,
        item_arrays=FCF(20, settings).arrays,
        settings=settings,
        clipping_norm=None,
        privacy=None,
        now=utc_now(),
    )
    assert reply.update is None and reply.refusal == "round 101 is past the 100 the user allowed"
    elsewhere = device(device_root(run, 0)).refusal("another-project", utc_now())
    assert elsewhere is not None and elsewhere.startswith(
        "no signed agreement for project 'another-project'"
    )


def test_an_unknown_engine_is_refused(run: Path) -> None:
    with pytest.raises(InvalidInput, match="--engine must be one of local, simulation"):
        train_agent(run, SMALL, engine="cloud")
