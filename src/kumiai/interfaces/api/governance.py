"""Members, datasets, projects, requests, agreements, jobs, models and privacy budgets.

Each route calls the service its CLI command calls (`member list`, `dataset show`, …).
"""

from fastapi import APIRouter

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import Home, PlainJSON, reply
from kumiai.interfaces.api.openapi import ok
from kumiai.interfaces.cli.budget import budget_document
from kumiai.interfaces.cli.jobs import job_document
from kumiai.interfaces.cli.show import project_document
from kumiai.services import (
    agreements,
    contribution,
    datasets,
    jobs,
    members,
    model_cards,
    models,
    odrl,
    privacy,
    projects,
    spend,
    views,
)

router = APIRouter(tags=["governance"])


@router.get(
    "/members",
    summary="`kumiai member list --json`",
    dependencies=[allow(Action.MEMBERS_READ)],
    responses=ok(list[members.MemberInfo]),
)
def member_list(home: Home) -> PlainJSON:
    return reply(members.list_members(home))


@router.get(
    "/datasets",
    summary="`kumiai dataset list --json`",
    dependencies=[allow(Action.DATASETS_READ)],
    responses=ok(list[datasets.DatasetInfo]),
)
def dataset_list(home: Home) -> PlainJSON:
    return reply(datasets.list_datasets(home))


@router.get(
    "/datasets/{name}",
    summary="`kumiai dataset show NAME --json`",
    dependencies=[allow(Action.DATASETS_READ)],
)
def dataset_show(home: Home, name: str) -> PlainJSON:
    return reply(views.dataset_view(home, name))


@router.get(
    "/projects",
    summary="`kumiai project list --json`",
    dependencies=[allow(Action.PROJECTS_READ)],
    responses=ok(list[projects.ProjectInfo]),
)
def project_list(home: Home) -> PlainJSON:
    return reply(projects.list_projects(home))


@router.get(
    "/projects/{name}",
    summary="`kumiai project show NAME --json`",
    dependencies=[allow(Action.PROJECTS_READ)],
)
def project_show(home: Home, name: str) -> PlainJSON:
    return reply(project_document(views.project_view(home, name)))


@router.get(
    "/projects/{name}/spend",
    summary="`kumiai spend NAME --json`",
    dependencies=[allow(Action.PROJECTS_READ)],
    responses=ok(spend.BudgetInfo),
)
def project_spend(home: Home, name: str) -> PlainJSON:
    return reply(spend.project_budget(home, name))


@router.get(
    "/requests",
    summary="`kumiai requests [PROJECT] --json`",
    dependencies=[allow(Action.REQUESTS_READ)],
    responses=ok(list[agreements.RequestInfo]),
)
def request_list(home: Home, project: str | None = None) -> PlainJSON:
    return reply(agreements.list_requests(home, project))


@router.get(
    "/agreements",
    summary="`kumiai agreement list [PROJECT] --json`",
    dependencies=[allow(Action.AGREEMENTS_READ)],
    responses=ok(list[agreements.AgreementInfo]),
)
def agreement_list(home: Home, project: str | None = None) -> PlainJSON:
    return reply(agreements.list_agreements(home, project))


@router.get(
    "/agreements/{agreement_id}",
    summary="`kumiai agreement show ID --json`",
    dependencies=[allow(Action.AGREEMENTS_READ)],
    responses=ok(views.AgreementView),
)
def agreement_show(home: Home, agreement_id: str) -> PlainJSON:
    return reply(views.agreement_view(home, agreement_id))


@router.get(
    "/jobs", summary="`kumiai jobs [PROJECT] --json`", dependencies=[allow(Action.JOBS_READ)]
)
def job_list(home: Home, project: str | None = None) -> PlainJSON:
    return reply([job_document(j, with_rounds=False) for j in jobs.list_jobs(home, project)])


@router.get(
    "/jobs/{job_id}", summary="`kumiai job ID --json`", dependencies=[allow(Action.JOBS_READ)]
)
def job_show(home: Home, job_id: str) -> PlainJSON:
    return reply(job_document(jobs.job_detail(home, job_id), with_rounds=True))


@router.get(
    "/models",
    summary="`kumiai models [PROJECT] --json`",
    dependencies=[allow(Action.MODELS_READ)],
    responses=ok(list[models.ModelInfo]),
)
def model_list(home: Home, project: str | None = None) -> PlainJSON:
    return reply(models.list_models(home, project))


@router.get(
    "/models/{model_id}",
    summary="`kumiai model ID --json`",
    dependencies=[allow(Action.MODELS_READ)],
    responses=ok(models.ModelInfo),
)
def model_show(home: Home, model_id: str) -> PlainJSON:
    return reply(models.model_detail(home, model_id))


@router.get(
    "/models/{model_id}/contributions",
    summary="`kumiai contributions ID --plan --json`",
    dependencies=[allow(Action.MODELS_READ)],
)
def model_contributions(home: Home, model_id: str) -> PlainJSON:
    """The plan: members, method, the extra ε each node would charge, or the refusal."""
    return reply(contribution.plan_model_contributions(home, model_id).as_dict())


@router.get(
    "/models/{model_id}/card",
    summary="`kumiai model card ID --json`",
    dependencies=[allow(Action.MODELS_READ)],
)
def model_card(home: Home, model_id: str) -> PlainJSON:
    """The model card, computed from the records and the latest audit (docs/model-cards.md)."""
    return reply(model_cards.model_card(home, model_id))


@router.get(
    "/agreements/{agreement_id}/odrl",
    summary="`kumiai agreement export ID --odrl`",
    dependencies=[allow(Action.AGREEMENTS_READ)],
)
def agreement_odrl(home: Home, agreement_id: str) -> PlainJSON:
    """The agreement as an ODRL 2.2 policy, with its steward's signature (docs/odrl.md)."""
    return reply(odrl.export_odrl(home, agreement_id))


@router.get("/budget", summary="`kumiai budget --json`", dependencies=[allow(Action.BUDGETS_READ)])
def budget(home: Home) -> PlainJSON:
    return reply([budget_document(line) for line in privacy.budgets(home)])
