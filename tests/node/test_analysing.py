"""The node's side of an analysis: its noise has the stated scale, it refuses what its own
agreement, cohort and budget do not allow (whatever the coordinator signed), and it never
charges or draws twice for one job."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from kumiai.adapters.storage.database import transaction
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.analysis import Analysis, Query, make_analysis
from kumiai.domain.clock import utc_now
from kumiai.domain.job import JobDocument, JobKind, sign_job
from kumiai.domain.secure_sum import unmask
from kumiai.domain.training import TrainingSettings
from kumiai.node.analysing import noise_share
from kumiai.node.port import NodePort
from kumiai.services.agreements import agreements_for_job
from kumiai.services.consortium import Consortium
from kumiai.services.peer_evidence import evidence_for_nodes
from tests.conftest import COORDINATOR_KEY
from tests.services.helpers import HOSPITALS, PURPOSE, heart_consortium, spend_records

COUNT_AND_MEAN = make_analysis([Query("count"), Query("mean", "age", low=0.0, high=120.0)], 1.0)


@pytest.mark.parametrize(("scale", "parties"), [(2.0, 1), (2.0, 4), (25.0, 3)])
def test_the_parties_noise_shares_sum_to_discrete_laplace_of_the_stated_scale(
    scale: float, parties: int
) -> None:
    """A variance test: Var = 2α/(1-α)², α = e^(-1/scale), within four standard errors of
    the sample variance (discrete Laplace's fourth moment is about 6σ⁴); and P(0)."""
    rng = np.random.default_rng(12)
    draws = 100_000
    total = np.zeros(draws, dtype=np.int64)
    for _ in range(parties):
        total += np.asarray(noise_share(draws, scale, parties, rng))
    alpha = math.exp(-1 / scale)
    variance = 2 * alpha / (1 - alpha) ** 2
    standard_error = variance * math.sqrt(5 / draws)
    assert abs(total.var() - variance) < 4 * standard_error
    assert abs(total.mean()) < 4 * math.sqrt(variance / draws)
    zero = (1 - alpha) / (1 + alpha)
    assert abs(np.mean(total == 0) - zero) < 4 * math.sqrt(zero * (1 - zero) / draws)
    # a Kolmogorov-Smirnov test against the discrete Laplace CDF, with the DKW bound:
    # P(sup |F_n - F| > t) <= 2 exp(-2 n t^2), here 1e-6
    ks = np.arange(total.min(), total.max() + 1)
    cdf = np.where(ks >= 0, 1 - alpha ** (ks + 1) / (1 + alpha), alpha ** (-ks) / (1 + alpha))
    empirical = np.searchsorted(np.sort(total), ks, side="right") / draws
    assert np.max(np.abs(empirical - cdf)) < math.sqrt(math.log(2 / 1e-6) / (2 * draws))
    if parties > 1:  # one share alone carries less noise than the whole
        share = np.asarray(noise_share(draws, scale, parties, rng))
        assert share.var() < variance / parties * 1.2


def _job(
    consortium: Consortium,
    analysis: Analysis,
    *,
    secure: bool,
    job_id: str = "job-analysis-1",
    key=COORDINATOR_KEY,  # type: ignore[no-untyped-def]
    kind: JobKind = JobKind.STATISTICS,
) -> str:
    """A statistics job document as a coordinator would sign it (or a forger, with `key`)."""
    with transaction(consortium.sessions) as session:
        agreements = agreements_for_job(session, "heart")
    settings = TrainingSettings(
        rounds=1, epsilon=analysis.epsilon, secure_aggregation=secure, analysis=analysis.to_json()
    )
    doc = JobDocument(
        job_id=job_id,
        project="heart",
        purpose=PURPOSE,
        kind=kind,
        datasets=tuple(f"{h}-heart" for h in HOSPITALS),
        settings=settings,
        agreements={
            d: SignedAgreement.from_json(a).terms.agreement_id for d, a in agreements.items()
        },
        issued_at=utc_now(),
    )
    return sign_job(doc, key).to_json()


def _node(consortium: Consortium, hospital: str) -> tuple[NodePort, str]:
    return consortium.node(hospital), f"{hospital}-heart"


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def plain(tmp_path: Path) -> Consortium:
    consortium, _ = heart_consortium(
        tmp_path / "c", kinds="statistics", plain_aggregation=True, epsilon_cap=3.0
    )
    return consortium


def _sign_own(consortium: Consortium, analysis: Analysis, **kw) -> str:  # type: ignore[no-untyped-def]
    return _job(consortium, analysis, key=consortium.coordinator_key(), **kw)


def test_a_rerun_of_the_same_job_is_charged_once_and_releases_the_same_figures(
    plain: Consortium,
) -> None:
    node, dataset = _node(plain, HOSPITALS[0])
    job = _sign_own(plain, COUNT_AND_MEAN, secure=False)
    first = [node.admit_analysis(dataset, job), node.release_analysis(dataset, job, {})]
    again = [node.admit_analysis(dataset, job), node.release_analysis(dataset, job, {})]
    assert first[0][0] and again[0][0] and "not charged again" in again[0][1]
    assert first[1][0] and again[1][2] == first[1][2]  # never drawn twice
    records = [(r["kind"], r["epsilon"]) for r in spend_records(plain, HOSPITALS[0])]
    assert records == [("reserve", 1.0), ("spend", 1.0)]
    assert node.budget(dataset).spent == pytest.approx(1.0)


def test_the_node_refuses_epsilon_over_its_cap_even_when_the_coordinator_signed_it(
    plain: Consortium,
) -> None:
    node, dataset = _node(plain, HOSPITALS[0])
    home = plain.member_home(HOSPITALS[0])
    before = _files(home)
    greedy = make_analysis([Query("count")], 5.0)  # the agreement caps ε at 3
    allowed, reason, key = node.admit_analysis(dataset, _sign_own(plain, greedy, secure=False))
    assert not allowed and key == ""
    assert "the job plans ε=5, over agreement" in reason and "cap ε=3" in reason
    assert _files(home) == before  # nothing reserved, nothing written


def test_the_node_counts_earlier_analyses_against_its_cap_and_its_budget(
    plain: Consortium,
) -> None:
    node, dataset = _node(plain, HOSPITALS[0])
    two = make_analysis([Query("count")], 2.0)
    for job_id in ("job-a", "job-b"):  # each within the cap of 3 on its own
        job = _sign_own(plain, two, secure=False, job_id=job_id)
        allowed, reason, _ = node.admit_analysis(dataset, job)
        if job_id == "job-a":
            assert allowed and node.release_analysis(dataset, job, {})[0]
    assert not allowed
    assert "caps project 'heart' at ε=3 and 2.000 is already spent" in reason
    node.set_budget(dataset, 2.5)  # the steward's lifetime budget: only 0.5 left
    half = make_analysis([Query("count")], 0.9)
    allowed, reason, _ = node.admit_analysis(
        dataset, _sign_own(plain, half, secure=False, job_id="job-c")
    )
    assert not allowed and "only 0.500 of the dataset's lifetime budget ε=2.5 is left" in reason
    assert [r["job"] for r in spend_records(plain, HOSPITALS[0])] == ["job-a", "job-a"]


def test_the_node_refuses_a_forged_job_and_a_release_it_never_admitted(plain: Consortium) -> None:
    from kumiai.domain import keys

    node, dataset = _node(plain, HOSPITALS[0])
    forged = _job(plain, COUNT_AND_MEAN, secure=False, key=keys.new_private_key())
    allowed, reason, _ = node.admit_analysis(dataset, forged)
    assert not allowed and "not signed by the coordinator key this node pinned" in reason
    training = _sign_own(plain, COUNT_AND_MEAN, secure=False, kind=JobKind.TRAIN)
    allowed, reason, _ = node.admit_analysis(dataset, training)
    assert not allowed and "an analysis runs only as a statistics job" in reason
    job = _sign_own(plain, COUNT_AND_MEAN, secure=False)
    allowed, reason, vector = node.release_analysis(dataset, job, {})
    assert not allowed and vector == [] and "holds no reservation" in reason
    assert spend_records(plain, HOSPITALS[0]) == []


def test_a_site_below_the_minimum_cohort_is_refused_and_nothing_is_charged(tmp_path: Path) -> None:
    consortium, _ = heart_consortium(
        tmp_path / "c", kinds="statistics", plain_aggregation=True, min_cohort=250
    )
    node, dataset = _node(consortium, "va-long-beach")
    home = consortium.member_home("va-long-beach")
    before = _files(home)
    allowed, reason, _ = node.admit_analysis(
        dataset, _sign_own(consortium, COUNT_AND_MEAN, secure=False)
    )
    assert not allowed
    assert (
        "site 'va-long-beach-heart' holds 200 rows, below the minimum cohort of 250 in agreement"
        in reason
    )
    assert _files(home) == before


def test_under_secure_aggregation_only_masked_vectors_leave_and_their_sum_is_the_total(
    tmp_path: Path,
) -> None:
    consortium, _ = heart_consortium(tmp_path / "c", kinds="statistics")
    job = _sign_own(consortium, COUNT_AND_MEAN, secure=True)
    keys = {}
    for hospital in HOSPITALS:
        node, dataset = _node(consortium, hospital)
        allowed, reason, key = node.admit_analysis(dataset, job)
        assert allowed, reason
        keys[dataset] = key
    sites = {f"{h}-heart": (consortium.node(h), h) for h in HOSPITALS}
    evidence = evidence_for_nodes(consortium, sites)
    node, dataset = _node(consortium, HOSPITALS[0])
    # the coordinator may not shrink the noise by naming a party the job does not hold
    inflated = {**keys, "stranger-heart": keys[dataset]}
    allowed, reason, _ = node.release_analysis(dataset, job, inflated, evidence[dataset])
    assert not allowed and "masks for exactly the sites the signed job document names" in reason
    alone = node.release_analysis(dataset, job, {dataset: keys[dataset]}, evidence[dataset])
    assert not alone[0]
    masked, noisy = [], []
    for hospital in HOSPITALS:
        node, dataset = _node(consortium, hospital)
        allowed, reason, vector = node.release_analysis(dataset, job, keys, evidence[dataset])
        assert allowed, reason
        kept = json.loads(
            (
                consortium.member_home(hospital) / "analyses" / f"job-analysis-1.{dataset}.json"
            ).read_text()
        )
        assert kept["parties"] == 3
        assert vector != kept["noisy"]  # what leaves is masked
        masked.append(vector)
        noisy.append(kept["noisy"])
    assert unmask(masked) == [sum(column) for column in zip(*noisy, strict=True)]
    # asked again with the same keys: the same masked vector; with a key swapped (here one
    # that a peer's member signed anew for the same job, colluding with the coordinator),
    # refused: masked anew, this node's share could be unmasked
    node, dataset = _node(consortium, HOSPITALS[0])
    assert node.release_analysis(dataset, job, keys, evidence[dataset])[2] == masked[0]
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kumiai.domain.masking_key import MaskingKey, sign_masking_key
    from kumiai.domain.secure_sum import public_key_b64
    from kumiai.node.home import NodeHome

    peer = HOSPITALS[1]
    statement = MaskingKey(
        "job-analysis-1", f"{peer}-heart", peer, public_key_b64(X25519PrivateKey.generate())
    )
    resigned = sign_masking_key(statement, NodeHome(consortium.member_home(peer)).private_key())
    swapped = {**keys, f"{peer}-heart": resigned.to_json()}
    allowed, reason, vector = node.release_analysis(dataset, job, swapped, evidence[dataset])
    assert not allowed and vector == []
    assert "a release is drawn, and masked, for one set of participants" in reason


def test_a_job_id_reused_for_other_queries_is_refused_without_a_new_draw(
    plain: Consortium,
) -> None:
    node, dataset = _node(plain, HOSPITALS[0])
    job = _sign_own(plain, COUNT_AND_MEAN, secure=False)
    assert node.admit_analysis(dataset, job)[0]
    first = node.release_analysis(dataset, job, {})
    assert first[0]
    other = make_analysis([Query("count")], 1.0)  # same id, same ε, other queries
    replayed = _sign_own(plain, other, secure=False)
    for allowed, reason, _ in (
        node.admit_analysis(dataset, replayed),
        node.release_analysis(dataset, replayed, {}),
    ):
        assert not allowed
        assert "already charged 'cleveland-clinic-heart' under that job id" in reason
    assert [r["kind"] for r in spend_records(plain, HOSPITALS[0])] == ["reserve", "spend"]
