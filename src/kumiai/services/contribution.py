"""Each member's contribution to a released model: retrain coalitions, then Shapley.

v(S) is the test metric (AUC by default, or accuracy) of the model that coalition S
trains with the released model's own settings and seed, scored on the union of every
participating site's test rows. Coalitions are retrained in-process, on this machine,
from the same local-SGD step the nodes run (`kumiai.node.port.local_sgd`) and FedAvg's
example-weighted average, so the grand coalition reproduces the released model. This is
the single-machine path (demo, tests, benchmark); the rules it obeys are in
`kumiai.domain.contribution_rules` and docs/contribution.md.

A model trained with record-level DP-SGD is retrained with DP-SGD too, at each site's own
σ, q, steps and clipping, and only after every node has charged the extra ε itself
(`NodePort.charge_contribution`): a job row of kind `contribution` mirrors the charges, so
`kumiai budget` shows them and a killed process is recovered like any job's.
"""

import json
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kumiai.adapters.models.families import model_for
from kumiai.adapters.storage.arrays import arrays_from_bytes
from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import JobRow, JobSiteRow, ModelVersionRow
from kumiai.domain.agreement import SignedAgreement
from kumiai.domain.clock import utc_now
from kumiai.domain.contribution import Coalition, Shares, Utility, shapley
from kumiai.domain.contribution_charge import CONTRIBUTION, ReleasedRun
from kumiai.domain.contribution_rules import ContributionPlan, SiteTerms, plan_contribution
from kumiai.domain.errors import InvalidInput, KumiaiError, StateError
from kumiai.domain.job import JobStatus
from kumiai.domain.ledger import COORDINATOR
from kumiai.domain.metrics import score_site
from kumiai.domain.preprocessing import FeaturePlan, merge_summaries, summarise
from kumiai.domain.split import SiteSplit
from kumiai.domain.training import TrainingSettings
from kumiai.node.port import local_dp_sgd, local_sgd
from kumiai.services.agreements import agreements_for_job
from kumiai.services.consortium import Consortium
from kumiai.services.jobs import (
    fail_job,
    recover_interrupted_jobs,
    release_privacy,
    running_job,
)
from kumiai.services.ledger import Act
from kumiai.services.lookup import get, project_datasets
from kumiai.services.privacy import mirror_charge

METRICS = ("auc", "accuracy")


def feature_plan(members: Mapping[str, SiteSplit]) -> FeaturePlan:
    """The plan the federation would build from these members' summaries."""
    return merge_summaries(
        {name: summarise(p.train, p.schema, p.train_labels) for name, p in members.items()}
    )


@dataclass
class PrivateRetraining:
    """How a DP model's coalitions are retrained, within what the nodes were charged for."""

    runs: Mapping[str, ReleasedRun]  # each site's DP-SGD run, as its node logged it
    paid: int  # retrainings each node charged for
    released: list[NDArray[np.float64]]  # the grand coalition's model: never retrained
    done: Counter[str] = field(default_factory=Counter)

    def retrain(self, site: str) -> dict[str, object]:
        """Count one more run of the site's rows; refuse a run its node did not pay for."""
        self.done[site] += 1
        if self.done[site] > self.paid:
            raise StateError(
                f"retraining would run {site!r} {self.done[site]} times, but its node was "
                f"charged for {self.paid} only; nothing more is retrained"
            )
        return self.runs[site].as_dict()


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InvalidInput(f"metric {metric!r} is not known; use one of: {', '.join(METRICS)}")
    return metric


def coalition_utility(
    members: Mapping[str, SiteSplit],
    evaluate_on: Sequence[SiteSplit],
    settings: TrainingSettings,
    plan: FeaturePlan,
    metric: str = "auc",
    private: PrivateRetraining | None = None,
) -> Utility:
    """v(S): FedAvg over S's training rows for settings.rounds rounds, scored on all tests.

    Each member trains with the seed of its own name, exactly as its node would. v(∅) is
    the untrained model every job of that family starts from (all-zero for `logistic`).
    With `private`, each member runs its node's DP-SGD round instead (fresh noise: v(S) is
    a sample, evaluated once), and v(all) is the released model itself, whose privacy the
    job already paid for.
    """
    check_metric(metric)
    data = {
        name: (plan.transform(p.train), plan.encode_labels(p.train_labels, name))
        for name, p in members.items()
    }
    X_test = np.vstack([plan.transform(p.test) for p in evaluate_on])
    y_test = np.concatenate([plan.encode_labels(p.test_labels, p.dataset) for p in evaluate_on])
    width, classes = len(plan.feature_names), len(plan.classes)

    def utility(coalition: Coalition) -> float:
        model = model_for(settings, width, classes)
        names = sorted(coalition)
        if private is not None and set(names) == set(members):
            model.arrays, names = private.released, []
        runs = {name: private.retrain(name) for name in names} if private is not None else {}
        for server_round in range(1, settings.rounds + 1) if names else ():
            updates, weights = [], []
            for name in names:
                X, y = data[name]
                local = model_for(settings, width, classes)
                local.arrays = model.arrays
                if private is not None:
                    local_dp_sgd(local, X, y, settings, runs[name])
                else:
                    local_sgd(local, X, y, settings, name, server_round)
                updates.append(local.arrays)
                weights.append(len(y))
            model.arrays = [
                np.average([u[i] for u in updates], axis=0, weights=weights)
                for i in range(len(updates[0]))
            ]
        score = score_site(model.predict_proba(X_test), y_test)
        value = score.auc if metric == "auc" else score.accuracy
        if value is None:
            raise InvalidInput("the test rows hold one class only; AUC is undefined")
        return float(value)

    return utility


@dataclass(frozen=True)
class Contributions:
    plan: ContributionPlan
    metric: str
    shares: Shares
    released: float | None  # the released model's own metric, for comparison with v(all)
    # A DP model: the contribution job, and the ε each dataset's node charged for it.
    job: str | None = None
    charged_epsilon: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        private = {"job": self.job, "charged_epsilon": self.charged_epsilon} if self.job else {}
        return {
            "model": self.plan.model,
            "metric": self.metric,
            "released_metric": self.released,
            **self.shares.as_dict(),
            "extra_epsilon": self.plan.extra_epsilon,
            **private,
        }


def _model(consortium: Consortium, model_id: str) -> tuple[ModelVersionRow, dict[str, SiteTerms]]:
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        session.expunge(row)
    lineage = json.loads(row.lineage_json)
    with transaction(consortium.sessions) as session:
        documents = agreements_for_job(session, row.project)
    terms = {}
    for dataset in lineage["datasets"]:
        if dataset not in documents:
            raise StateError(f"no agreement of {dataset!r} for project {row.project!r} is on file")
        agreement = SignedAgreement.from_json(documents[dataset]).terms
        terms[dataset] = SiteTerms(dataset, consents=agreement.contribution_analysis)
    return row, terms


def _runs(
    consortium: Consortium, row: ModelVersionRow, settings: TrainingSettings
) -> dict[str, ReleasedRun]:
    """How the released job trained each site, read from its node's own spend log.

    Empty for a model trained without record-level DP; a site whose node holds no such
    record is left out (the plan then refuses, naming it).
    """
    if not (settings.private and settings.dp_level == "record"):
        return {}
    job = json.loads(row.lineage_json)["job"]
    runs = {}
    for dataset, member in _owners(consortium, row.project).items():
        try:
            held = consortium.node(member).budget(dataset).jobs.get(job)
            if held is not None:
                runs[dataset] = ReleasedRun.from_reservation(held.details, held.rounds)
        except KumiaiError:
            continue
    return runs


def _owners(consortium: Consortium, project: str) -> dict[str, str]:
    with transaction(consortium.sessions) as session:
        return {d.name: d.member for d in project_datasets(session, project)}


def plan_model_contributions(consortium: Consortium, model_id: str) -> ContributionPlan:
    """What computing a model's contributions would do and cost, or why it is refused.

    For a DP-SGD model the extra ε per dataset is what its node will charge: the same rule
    (kumiai.domain.contribution_charge) on the same figures, read from the node's log.
    """
    row, terms = _model(consortium, model_id)
    settings = TrainingSettings.from_json(json.dumps(json.loads(row.lineage_json)["settings"]))
    return plan_contribution(model_id, settings, terms, _runs(consortium, row, settings))


def compute_contributions(
    consortium: Consortium, plan: ContributionPlan, metric: str = "auc"
) -> Contributions:
    """Retrain the plan's coalitions, share the value, record it in lineage and ledger.

    A DP model's nodes are all charged first (all or nothing: one refusal and nothing is
    retrained); the retraining then runs DP-SGD at each site's own settings.
    """
    check_metric(metric)
    current = plan_model_contributions(consortium, plan.model)  # the caller's may be stale
    for checked in (plan, current):
        if checked.refusal is not None:
            raise InvalidInput(f"contributions to {plan.model} are refused: {checked.refusal}")
    shape = (current.members, current.coalitions, current.retrainings)
    if (plan.members, plan.coalitions, plan.retrainings) != shape:
        raise InvalidInput(
            f"the plan for {plan.model} no longer holds (its members or retrainings changed); "
            "plan it again"
        )
    row, _ = _model(consortium, plan.model)
    lineage = json.loads(row.lineage_json)
    settings = TrainingSettings.from_json(json.dumps(lineage["settings"]))
    owners = _owners(consortium, row.project)
    parts = {d: consortium.node(owners[d]).split(d, settings) for d in plan.members}
    private, job, charged = None, None, {}
    if settings.private:
        recover_interrupted_jobs(consortium)
        job = _start_charges(consortium, row, plan, settings, owners)
    try:
        if job is not None:
            charged = _charge_all(consortium, row, plan, job, owners)
            runs = _runs(consortium, row, settings)
            private = PrivateRetraining(runs, plan.retrainings, arrays_from_bytes(row.parameters))
        utility = coalition_utility(
            parts,
            list(parts.values()),
            settings,
            FeaturePlan.from_json(row.feature_plan_json),
            metric,
            private,
        )
        shares = shapley(plan.members, utility, budget=plan.coalitions)
        released = json.loads(row.metrics_json)["overall"].get(metric)
        result = Contributions(plan, metric, shares, released, job, charged)
        _record(consortium, row.id, result)
    except BaseException as exc:
        if job is not None:
            refused = isinstance(exc, ChargeRefused)
            fail_job(consortium, job, str(exc) if refused else f"retraining failed: {exc}")
        raise
    finally:
        if job is not None:
            release_privacy(consortium, job)
    return result


class ChargeRefused(StateError):
    """A node refused to charge a DP model's contribution analysis: nothing was retrained."""


def _start_charges(
    consortium: Consortium,
    row: ModelVersionRow,
    plan: ContributionPlan,
    settings: TrainingSettings,
    owners: Mapping[str, str],
) -> str:
    """The contribution job's record, written before any node is charged: a process killed
    after a charge is recovered like a job (its spend raised to the node's log)."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    with transaction(consortium.sessions) as session:
        session.add(running_job(job_id, row.project, CONTRIBUTION, settings))
        session.flush()
        for d in plan.members:
            session.add(JobSiteRow(job_id=job_id, dataset=d, member=owners[d], status="pending"))
        payload = {
            "job": job_id,
            "model": plan.model,
            "released_job": json.loads(row.lineage_json)["job"],
            "retrainings": plan.retrainings,
            "extra_epsilon": plan.extra_epsilon,
        }
        act = Act(COORDINATOR, "contribution.started", payload, project=row.project)
        consortium.ledger.append(session, act)
    return job_id


def _charge_all(
    consortium: Consortium,
    row: ModelVersionRow,
    plan: ContributionPlan,
    job: str,
    owners: Mapping[str, str],
) -> dict[str, float]:
    """Every node charges its extra ε, or the analysis stops at the first refusal."""
    released_job = json.loads(row.lineage_json)["job"]
    charged: dict[str, float] = {}
    for dataset in plan.members:
        member = owners[dataset]
        try:
            allowed, reason, epsilon = consortium.node(member).charge_contribution(
                dataset,
                project=row.project,
                model=plan.model,
                released_job=released_job,
                retrainings=plan.retrainings,
                charge_id=job,
            )
        except KumiaiError as exc:
            allowed, reason, epsilon = False, str(exc), 0.0
        if not allowed:
            with transaction(consortium.sessions) as session:
                site = session.get(JobSiteRow, (job, dataset))
                if site is not None:
                    site.status, site.reason = "refused", reason
            raise _refused(plan, job, dataset, reason, charged)
        _mirror_charge(consortium, row, job, dataset, member, epsilon, released_job, plan)
        charged[dataset] = epsilon
    return charged


def _mirror_charge(
    consortium: Consortium,
    row: ModelVersionRow,
    job: str,
    dataset: str,
    member: str,
    epsilon: float,
    released_job: str,
    plan: ContributionPlan,
) -> None:
    """The node's charge as the job's privacy spend (`kumiai budget`), signed by its member."""
    with transaction(consortium.sessions) as session:
        mirror_charge(consortium, session, member, dataset, job, row.project)
        site = session.get(JobSiteRow, (job, dataset))
        if site is not None:
            site.status = "participating"
        payload = {
            "job": job,
            "dataset": dataset,
            "model": plan.model,
            "released_job": released_job,
            "retrainings": plan.retrainings,
            "epsilon": epsilon,
        }
        act = Act(
            member, "privacy.charged", payload, member=member, dataset=dataset, project=row.project
        )
        consortium.ledger.append(session, act)


def _refused(
    plan: ContributionPlan, job: str, dataset: str, reason: str, charged: Mapping[str, float]
) -> ChargeRefused:
    """The refusal, recorded on the job's site, naming what stays charged."""
    kept = (
        "the charges already recorded at the nodes of "
        + ", ".join(f"{d} (ε={e:.3f})" for d, e in charged.items())
        + " stay recorded: each node's spend log is the record"
        if charged
        else "no node was charged"
    )
    return ChargeRefused(
        f"contributions to {plan.model} are refused: the node of {dataset} refused its "
        f"charge: {reason}. Nothing was retrained; {kept}"
    )


def _record(consortium: Consortium, model_id: str, result: Contributions) -> None:
    """Lineage and ledger in one transaction, signed by the coordinator that computed it;
    a DP model's contribution job completes in the same transaction.

    Any member holding the same rows can recompute the shares of a model trained without
    DP: training is deterministic. A DP model's retrainings draw fresh noise.
    """
    payload = result.as_dict()
    with transaction(consortium.sessions) as session:
        row = get(session, ModelVersionRow, model_id)
        lineage = json.loads(row.lineage_json)
        lineage["contributions"] = payload
        row.lineage_json = json.dumps(lineage)
        if result.job is not None:
            job = get(session, JobRow, result.job)
            job.status, job.finished_at = JobStatus.COMPLETED.value, utc_now()
        consortium.ledger.append(
            session,
            Act(COORDINATOR, "model.contributions", payload, project=row.project),
        )
