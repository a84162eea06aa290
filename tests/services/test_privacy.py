"""Privacy through the services: plans refused before training, node admission against
lifetime budgets and agreement caps, per-round spend, and (two simulation runs) a DP job end
to end with the refusal of one that would overspend."""

import math
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from kumiai.adapters.models.logistic import LogisticRegression
from kumiai.domain.budget import RELEASE, RESERVE, SPEND
from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput, JobFailed, StateError
from kumiai.domain.job import JobDocument
from kumiai.domain.preprocessing import merge_summaries
from kumiai.domain.privacy import epsilon_for
from kumiai.domain.training import TrainingSettings
from kumiai.node.home import NodeHome
from kumiai.node.spendlog import SpendLog
from kumiai.node.worker import NodeWorker
from kumiai.services.agreements import request_data_use, sign_request
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import job_detail, list_jobs
from kumiai.services.privacy import budgets, estimate_plan, plan_privacy, set_budget
from kumiai.services.projects import approve_project, propose_project
from kumiai.services.training import train
from kumiai.services.transparency import show_entries
from tests.conftest import make_job
from tests.services.helpers import HOSPITALS, PURPOSE, heart_consortium, log_records

CLEVELAND = "cleveland-clinic"
DS = f"{CLEVELAND}-heart"
DP = TrainingSettings(rounds=3, epsilon=1.0)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    """Three hospitals; only read from (plans and refusals that never reach a node)."""
    consortium, _ = heart_consortium(tmp_path_factory.mktemp("shared") / "c")
    return consortium


@pytest.fixture
def cleveland(tmp_path: Path) -> Consortium:
    consortium, _ = heart_consortium(tmp_path / "c", hospitals=(CLEVELAND,))
    return consortium


def ticket(job: str, project: str = "heart", epsilon: float | None = 1.0) -> JobDocument:
    return make_job(job_id=job, project=project, datasets=(DS,), rounds=3, epsilon=epsilon)


def unchecked(settings: TrainingSettings, **values: object) -> TrainingSettings:
    """Settings that skipped TrainingSettings' own checks (the planner must not rely on them)."""
    for name, value in values.items():
        object.__setattr__(settings, name, value)
    return settings


def train_rows(consortium: Consortium, member: str, settings: TrainingSettings) -> int:
    worker = NodeWorker(consortium.member_home(member))
    return len(worker.split(f"{member}-heart", settings).train_labels)


def registered_rows(consortium: Consortium, member: str) -> int:
    return NodeHome(consortium.member_home(member)).dataset(f"{member}-heart").rows


def spend_log(consortium: Consortium, member: str) -> SpendLog:
    return SpendLog(NodeHome(consortium.member_home(member)), f"{member}-heart")


# -- parameters refused before any training -------------------------------------------
@pytest.mark.parametrize("epsilon", [0.0, -0.5, math.inf, math.nan])
def test_settings_refuse_an_epsilon_that_is_not_a_positive_amount(epsilon: float) -> None:
    with pytest.raises(InvalidInput, match=r"epsilon.* must be a finite number"):
        TrainingSettings(rounds=3, epsilon=epsilon)


@pytest.mark.parametrize("clipping", [0.0, -1.0, math.inf])
def test_settings_refuse_a_clipping_norm_that_is_not_positive(clipping: float) -> None:
    with pytest.raises(InvalidInput, match=r"clipping.norm.* must be a finite number"):
        TrainingSettings(rounds=3, epsilon=1.0, clipping_norm=clipping)


@pytest.mark.parametrize("noise", [0.0, -1.0, math.nan])
def test_settings_refuse_a_noise_multiplier_that_is_not_positive(noise: float) -> None:
    with pytest.raises(InvalidInput, match=r"noise.multiplier.* must be a finite number"):
        TrainingSettings(rounds=3, noise_multiplier=noise)


def test_settings_without_epsilon_or_noise_are_not_private(shared: Consortium) -> None:
    assert not TrainingSettings(rounds=3).private
    assert TrainingSettings(rounds=3, noise_multiplier=1.0).private and DP.private
    assert plan_privacy(shared, "heart", TrainingSettings(rounds=3)) == {}


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ({"epsilon": 0.0}, r"epsilon_cap must be a finite number greater than 0"),
        ({"epsilon": -1.0}, r"epsilon_cap must be a finite number greater than 0"),
        ({"clipping_norm": 0.0}, r"clipping_norm must be a finite number greater than 0"),
        ({"clipping_norm": -2.0}, r"clipping_norm must be a finite number greater than 0"),
    ],
)
def test_the_planner_refuses_bad_settings_on_its_own(
    shared: Consortium, values: dict, pattern: str
) -> None:
    settings = unchecked(TrainingSettings(rounds=3, epsilon=1.0), **values)
    rows = registered_rows(shared, CLEVELAND)
    with pytest.raises(InvalidInput, match=rf"dataset '{DS}' \({rows} rows\): {pattern}"):
        plan_privacy(shared, "heart", settings)


@pytest.mark.parametrize("factor", [1.0, 2.0])
def test_a_delta_of_one_over_n_or_more_is_refused_naming_the_dataset_and_1_over_rows(
    shared: Consortium, factor: float
) -> None:
    rows = train_rows(shared, CLEVELAND, DP)
    settings = replace(DP, delta=factor / rows)
    with pytest.raises(InvalidInput) as caught:
        plan_privacy(shared, "heart", settings)
    message = str(caught.value)
    assert f"dataset '{DS}'" in message
    assert f"less than 1/rows = 1/{rows} = {1 / rows:g}" in message
    assert f"default is 1/(10·rows) = {1 / (10 * rows):g}" in message


def test_a_delta_just_below_one_over_n_everywhere_is_accepted(shared: Consortium) -> None:
    fixed = TrainingSettings(rounds=3, noise_multiplier=2.0)  # no calibration: quick
    smallest = min(train_rows(shared, h, fixed) for h in HOSPITALS)
    largest = max(train_rows(shared, h, fixed) for h in HOSPITALS)
    plans = plan_privacy(shared, "heart", replace(fixed, delta=0.99 / largest))
    assert set(plans) == {f"{h}-heart" for h in HOSPITALS}
    assert {p.delta for p in plans.values()} == {0.99 / largest}
    with pytest.raises(InvalidInput, match="delta"):
        plan_privacy(shared, "heart", replace(fixed, delta=1.0 / smallest))


def test_a_noise_multiplier_too_small_for_the_cap_names_the_noise_needed(
    shared: Consortium,
) -> None:
    rows = registered_rows(shared, CLEVELAND)
    calibrated = estimate_plan(rows, DP).noise_multiplier
    needed = math.ceil(calibrated * 1000) / 1000
    with pytest.raises(InvalidInput) as caught:
        plan_privacy(shared, "heart", replace(DP, noise_multiplier=1.0))
    message = str(caught.value)
    assert f"dataset '{DS}'" in message and "over the epsilon cap 1" in message
    assert f"noise_multiplier must be at least {needed:g}" in message
    # the figure printed, typed back in, meets the cap at that dataset
    typed_back = estimate_plan(rows, replace(DP, noise_multiplier=needed))
    assert typed_back.epsilon <= 1.0


def test_bad_parameters_stop_train_before_any_job_or_node(shared: Consortium) -> None:
    rows = train_rows(shared, CLEVELAND, DP)
    with pytest.raises(InvalidInput, match=r"delta .* is too large"):
        train(shared, "heart", replace(DP, delta=1.0 / rows))
    with pytest.raises(InvalidInput, match=r"noise_multiplier must be at least"):
        train(shared, "heart", replace(DP, noise_multiplier=1.0))
    assert list_jobs(shared) == []
    assert all(log_records(spend_log(shared, h)) == [] for h in HOSPITALS)


# -- the ε reported is dp_accounting's ---------------------------------------------------
def direct_epsilon(sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    engine = PLDAccountant() if accountant == "pld" else RdpAccountant()
    return float(engine.compose(event).get_epsilon(delta))


@pytest.mark.parametrize(
    "settings",
    [
        DP,
        TrainingSettings(rounds=3, noise_multiplier=2.0),
        TrainingSettings(
            rounds=2, noise_multiplier=1.1, batch_size=16, delta=1e-4, accountant="rdp"
        ),
    ],
    ids=["calibrated", "fixed-noise", "rdp"],
)
def test_the_nodes_epsilon_is_dp_accountings_own(
    shared: Consortium, settings: TrainingSettings
) -> None:
    worker = NodeWorker(shared.member_home(CLEVELAND))
    plan, per_round = worker.privacy_plan(DS, settings)
    rows = len(worker.split(DS, settings).train_labels)
    assert plan.steps == settings.rounds * per_round
    assert per_round == settings.local_epochs * round(rows / settings.batch_size)
    assert plan.sample_rate == pytest.approx(settings.batch_size / rows)
    assert plan.delta == pytest.approx(settings.delta or 1 / (10 * rows))
    expected = direct_epsilon(
        plan.noise_multiplier, plan.sample_rate, plan.steps, plan.delta, settings.accountant
    )
    assert plan.epsilon == pytest.approx(expected, rel=1e-6)
    if settings.epsilon is not None:
        assert plan.epsilon <= settings.epsilon
    # the coordinator's estimate before the job is the plan the node will make
    assert plan_privacy(shared, "heart", settings)[DS] == plan


# -- admission at the node ---------------------------------------------------------------
def test_admission_reserves_until_the_lifetime_budget_is_held(cleveland: Consortium) -> None:
    assert set_budget(cleveland, DS, 1.5) == 1.5
    worker = NodeWorker(cleveland.member_home(CLEVELAND))

    allowed, reason, numbers = worker.admit(DS, DP, ticket("job-1"), None)
    assert allowed, reason
    planned = numbers["epsilon"]
    assert 0.9 < planned <= 1.0
    assert numbers["steps"] == worker.privacy_plan(DS, DP)[0].steps

    allowed, reason, numbers = worker.admit(DS, DP, ticket("job-2"), None)
    assert not allowed
    assert f"only {1.5 - planned:.3f} of the dataset's lifetime budget ε=1.5 is left" in reason
    assert numbers["epsilon"] == planned  # the plan is still reported to the coordinator
    view = spend_log(cleveland, CLEVELAND).view()
    assert list(view.jobs) == ["job-1"] and view.committed == pytest.approx(planned)

    assert spend_log(cleveland, CLEVELAND).release("job-1")  # ended without spending
    allowed, reason, _ = worker.admit(DS, DP, ticket("job-2"), None)
    assert allowed, reason
    view = spend_log(cleveland, CLEVELAND).view()
    assert view.spent == 0.0 and view.committed == pytest.approx(planned)
    [line] = budgets(cleveland)
    assert (line.dataset, line.lifetime) == (DS, 1.5)


def test_a_second_admission_of_the_same_job_is_refused(cleveland: Consortium) -> None:
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    assert worker.admit(DS, DP, ticket("job-1"), None)[0]
    allowed, reason, _ = worker.admit(DS, DP, ticket("job-1"), None)
    assert not allowed and "already holds a reservation" in reason
    assert len(log_records(spend_log(cleveland, CLEVELAND))) == 1


def test_admission_refuses_bad_parameters_without_reserving(cleveland: Consortium) -> None:
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    allowed, reason, numbers = worker.admit(DS, replace(DP, delta=0.5), ticket("job-1"), None)
    assert not allowed and "delta 0.5 is too large" in reason and numbers == {}
    assert log_records(spend_log(cleveland, CLEVELAND)) == []


def test_a_budget_below_what_is_held_is_refused(cleveland: Consortium) -> None:
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    assert worker.admit(DS, DP, ticket("job-1"), None)[0]
    entries = len(show_entries(cleveland))
    with pytest.raises(InvalidInput, match="cannot be set below"):
        set_budget(cleveland, DS, 0.5)
    for meaningless in (0.0, -2.0, math.nan, math.inf):
        with pytest.raises(InvalidInput, match="the lifetime ε must be a finite number"):
            set_budget(cleveland, DS, meaningless)
    [line] = budgets(cleveland)
    assert line.lifetime is None  # the mirror did not change either
    assert len(show_entries(cleveland)) == entries  # nor the ledger
    assert spend_log(cleveland, CLEVELAND).view().lifetime is None  # nor the node


def test_a_budget_is_signed_into_the_ledger_by_the_stewards_node(cleveland: Consortium) -> None:
    """One kind for both modes: the one-directory `kumiai budget set` writes the same
    `privacy.budget-set` entry a node on its own machine signs (`kumiai node budget`)."""
    entries = len(show_entries(cleveland))
    assert set_budget(cleveland, DS, 2.5) == 2.5
    [entry] = show_entries(cleveland)[entries:]
    assert (entry.kind, entry.actor) == ("privacy.budget-set", CLEVELAND)
    assert show_entries(cleveland, dataset=DS)[-1] == entry
    assert entry.payload == {"dataset": DS, "member": CLEVELAND, "epsilon": 2.5}
    assert spend_log(cleveland, CLEVELAND).view().lifetime == 2.5


def add_capped_project(consortium: Consortium, name: str, cap: float) -> float:
    """Another project on Cleveland's data, whose signed agreement caps ε; returns the cap."""
    propose_project(
        consortium, name=name, title="", purpose=PURPOSE, proposed_by="lab", members=(CLEVELAND,)
    )
    approve_project(consortium, name, approved_by=CLEVELAND)
    request = request_data_use(
        consortium,
        project=name,
        dataset=DS,
        requested_by="lab",
        max_rounds=20,
        expires_at=utc_now() + timedelta(days=30),
        epsilon_cap=cap,
    )
    sign_request(consortium, request.id)
    node = NodeHome(consortium.member_home(CLEVELAND))
    [agreement] = [a for a in node.agreements() if a.terms.project == name]
    assert agreement.terms.epsilon_cap is not None
    return agreement.terms.epsilon_cap


def test_an_agreement_cap_is_enforced_per_project(cleveland: Consortium) -> None:
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    cap_a = add_capped_project(cleveland, "heart-a", 1.5)
    cap_b = add_capped_project(cleveland, "heart-b", 1.5)

    allowed, reason, numbers = worker.admit(DS, DP, ticket("a-1", "heart-a"), cap_a)
    assert allowed, reason
    planned = numbers["epsilon"]
    allowed, reason, _ = worker.admit(DS, DP, ticket("a-2", "heart-a"), cap_a)
    assert not allowed
    assert "caps project 'heart-a' at ε=1.5" in reason
    assert f"at most {1.5 - planned:.3f} is left" in reason
    # another project's cap counts only its own spend: project b still has its whole 1.5
    allowed, reason, _ = worker.admit(DS, DP, ticket("b-1", "heart-b"), cap_b)
    assert allowed, reason
    # and the project without a cap is held only by the (unset) lifetime budget
    assert worker.admit(DS, DP, ticket("h-1"), None)[0]
    view = spend_log(cleveland, CLEVELAND).view()
    assert sorted(view.jobs) == ["a-1", "b-1", "h-1"]
    assert view.project_committed("heart-a") == pytest.approx(planned)


# -- private training at the node ----------------------------------------------------------
def test_private_training_records_cumulative_spend_each_round(cleveland: Consortium) -> None:
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    plan = merge_summaries({DS: worker.summary(DS, DP)})
    arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays

    with pytest.raises(StateError, match="holds no privacy reservation"):
        worker.train(DS, DP, plan, arrays, 1, "job-1")
    assert log_records(spend_log(cleveland, CLEVELAND)) == []

    allowed, reason, numbers = worker.admit(DS, DP, ticket("job-1"), None)
    assert allowed, reason
    dp_plan, per_round = worker.privacy_plan(DS, DP)
    spent = []
    for server_round in (1, 2, 3):
        arrays, examples, loss, epsilon = worker.train(DS, DP, plan, arrays, server_round, "job-1")
        assert epsilon is not None and math.isfinite(loss) and examples > 0
        assert all(np.isfinite(a).all() for a in arrays)
        assert epsilon == pytest.approx(
            epsilon_for(
                dp_plan.noise_multiplier,
                dp_plan.sample_rate,
                server_round * per_round,
                dp_plan.delta,
            )
        )
        spent.append(epsilon)
    assert spent[0] < spent[1] < spent[2]
    assert spent[2] == pytest.approx(numbers["epsilon"], rel=1e-9) and spent[2] <= 1.0 + 1e-9

    with pytest.raises(StateError, match=r"reserved 3 rounds .* has trained them all"):
        worker.train(DS, DP, plan, arrays, 4, "job-1")
    records = log_records(spend_log(cleveland, CLEVELAND))
    assert [(r["kind"], r["round"]) for r in records] == [
        (RESERVE, 0),
        (SPEND, 1),
        (SPEND, 2),
        (SPEND, 3),
    ]
    assert [r["epsilon"] for r in records[1:]] == spent

    assert spend_log(cleveland, CLEVELAND).release("job-1")
    with pytest.raises(StateError, match="holds no privacy reservation"):
        worker.train(DS, DP, plan, arrays, 1, "job-1")


def test_training_a_round_again_is_refused_or_paid_for(cleveland: Consortium) -> None:
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    plan = merge_summaries({DS: worker.summary(DS, DP)})
    arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
    assert worker.admit(DS, DP, ticket("job-1"), None)[0]
    dp_plan, per_round = worker.privacy_plan(DS, DP)
    arrays, *_ = worker.train(DS, DP, plan, arrays, 1, "job-1")
    worker.train(DS, DP, plan, arrays, 1, "job-1")  # the same round number, a second time
    two_rounds = epsilon_for(
        dp_plan.noise_multiplier, dp_plan.sample_rate, 2 * per_round, dp_plan.delta
    )
    assert spend_log(cleveland, CLEVELAND).view().spent >= two_rounds - 1e-9


def test_a_non_private_job_neither_needs_nor_writes_a_reservation(cleveland: Consortium) -> None:
    settings = TrainingSettings(rounds=3)
    worker = NodeWorker(cleveland.member_home(CLEVELAND))
    plan = merge_summaries({DS: worker.summary(DS, settings)})
    arrays = LogisticRegression(len(plan.feature_names), len(plan.classes)).arrays
    *_, epsilon = worker.train(DS, settings, plan, arrays, 1, "job-1")
    assert epsilon is None
    assert log_records(spend_log(cleveland, CLEVELAND)) == []


# -- end to end on Flower's simulation engine (two runs) ---------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A DP job at ε=1 over 3 rounds, on three datasets with a lifetime budget of 1.5 each."""
    consortium, _ = heart_consortium(tmp_path_factory.mktemp("e2e") / "c")
    for hospital in HOSPITALS:
        set_budget(consortium, f"{hospital}-heart", 1.5)
    return consortium, train(consortium, "heart", DP)


@pytest.mark.simulation
def test_a_private_job_spends_round_by_round_and_releases(finished) -> None:  # type: ignore[no-untyped-def]
    consortium, outcome = finished
    assert sorted(outcome.sites) == sorted(f"{h}-heart" for h in HOSPITALS)
    mirror = {line.dataset: line for line in budgets(consortium)}
    for hospital in HOSPITALS:
        dataset = f"{hospital}-heart"
        records = log_records(spend_log(consortium, hospital))
        assert [r["kind"] for r in records] == [RESERVE, SPEND, SPEND, SPEND, RELEASE]
        assert {r["job"] for r in records} == {outcome.job_id}
        reserved = records[0]["epsilon"]
        spends = [r["epsilon"] for r in records[1:4]]
        assert [r["round"] for r in records[1:4]] == [1, 2, 3]
        assert spends[0] < spends[1] < spends[2]
        assert spends[2] == pytest.approx(reserved, rel=1e-9) and spends[2] <= 1.0 + 1e-9
        details = records[0]["details"]
        for server_round, value in enumerate(spends, start=1):
            steps = server_round * details["steps_per_round"]
            assert value == pytest.approx(
                epsilon_for(
                    details["noise_multiplier"], details["sample_rate"], steps, details["delta"]
                )
            )
        assert records[4]["epsilon"] == spends[2]
        assert outcome.epsilons[dataset] == pytest.approx(spends[2])
        assert outcome.planned[dataset]["epsilon"] == pytest.approx(reserved)

        view = spend_log(consortium, hospital).view()
        assert view.committed == 0.0 and view.left == pytest.approx(1.5 - spends[2])
        line = mirror[dataset]
        assert line.lifetime == 1.5
        assert line.spent == pytest.approx(spends[2]) and line.committed == 0.0
        assert line.by_project == {"heart": pytest.approx(spends[2])}

    job = job_detail(consortium, outcome.job_id)
    assert job.status == "completed" and [r["round"] for r in job.rounds] == [1, 2, 3]
    per_round = [r["epsilon"][DS] for r in job.rounds]
    assert per_round[0] < per_round[1] < per_round[2] == pytest.approx(outcome.epsilons[DS])
    # The record kept step with every node's log: nothing to recover at the job's end.
    assert show_entries(consortium, kind="privacy.recovered") == []


@pytest.mark.simulation
def test_a_job_that_would_overspend_the_lifetime_is_refused_before_round_one(finished) -> None:  # type: ignore[no-untyped-def]
    consortium, first = finished
    before = {h: spend_log(consortium, h).log.read_text() for h in HOSPITALS}
    with pytest.raises(JobFailed, match="every node refused the job"):
        train(consortium, "heart", DP)

    [failed] = [j for j in list_jobs(consortium) if j.id != first.job_id]
    job = job_detail(consortium, failed.id)
    assert job.status == "failed" and job.completed_rounds == 0 and job.rounds == ()
    for site in job.sites:
        member = site.member
        spent = spend_log(consortium, member).view().spent
        assert site.status == "refused"
        assert f"{member} refused job {failed.id}" in (site.reason or "")
        assert f"only {1.5 - spent:.3f} of the dataset's lifetime budget" in (site.reason or "")
    after = {h: spend_log(consortium, h).log.read_text() for h in HOSPITALS}
    assert after == before  # nothing reserved, spent or released for the refused job
    for line in budgets(consortium):
        assert line.spent == pytest.approx(first.epsilons[line.dataset]) and line.committed == 0.0
