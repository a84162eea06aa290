"""Overview, projects, jobs, models and privacy: each page calls the services its CLI
command calls (`member list`, `project show`, `job`, `model`, `budget`, …)."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kumiai.domain.contribution_charge import CONTRIBUTION
from kumiai.domain.epsilon_history import BUDGET_KINDS, budget_history
from kumiai.domain.job import JobStatus
from kumiai.domain.personalisation import PERSONALISATION
from kumiai.domain.roles import Action
from kumiai.interfaces.web.charts import BUDGET_SERIES, budget_chart, round_chart, share_chart
from kumiai.interfaces.web.context import Home, Viewer, needs, page
from kumiai.services import (
    head_status,
    jobs,
    licences,
    members,
    milestones,
    models,
    privacy,
    projects,
    spend,
    themes,
    transparency,
    views,
)
from kumiai.services.consortium import Consortium

router = APIRouter()
RUNNING = (JobStatus.PENDING.value, JobStatus.RUNNING.value)  # the page polls while so
# Jobs that mirror a charge the nodes made (Shapley coalitions, fine-tuning at each site):
# they run no federated rounds, so "0 of 30 rounds" would misread as a job that never ran.
CHARGED_KINDS = frozenset({CONTRIBUTION, PERSONALISATION})


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.LEDGER_READ)]
) -> HTMLResponse:
    """The latest head with its cosignatures (public, like the ledger); signed in, also
    `member list`, `theme list` and `project list`, each shown only to a role that may read it."""
    shows_projects = viewer.may(Action.PROJECTS_READ)
    listed = themes.list_themes(home) if shows_projects else None
    return page(
        request,
        "overview.html",
        viewer,
        members=members.list_members(home) if viewer.may(Action.MEMBERS_READ) else None,
        status=head_status.head_status(home),
        themes=listed,
        projects=projects.list_projects(home) if shows_projects else None,
        theme_of=_theme_of(listed or []),
    )


def _theme_of(listed: list[themes.ThemeInfo]) -> dict[str, str]:
    """Each project's theme, from `theme list` (a project names no theme of its own)."""
    return {project: theme.name for theme in listed for project in theme.projects}


@router.get("/projects", response_class=HTMLResponse)
def project_list(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.PROJECTS_READ)]
) -> HTMLResponse:
    """`project list`, with each project's theme from `theme list`."""
    return page(
        request,
        "projects.html",
        viewer,
        projects=projects.list_projects(home),
        theme_of=_theme_of(themes.list_themes(home)),
    )


@router.get("/projects/{name}", response_class=HTMLResponse)
def project_show(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.PROJECTS_READ)], name: str
) -> HTMLResponse:
    """`project show`, `spend PROJECT` and `milestone list PROJECT`."""
    return page(
        request,
        "project.html",
        viewer,
        view=views.project_view(home, name),
        budget=spend.project_budget(home, name),
        milestones=milestones.list_milestones(home, name),
        charged_kinds=CHARGED_KINDS,
    )


METRICS = ("auc", "accuracy")  # AUC first; a round without it (one class) still has accuracy


def _job_context(home: Consortium, job_id: str) -> dict[str, Any]:
    job = jobs.job_detail(home, job_id)
    reported = {m for r in job.rounds for m in (r.get("overall") or {}) if m in METRICS}
    federated = job.kind not in CHARGED_KINDS
    return {
        "job": job,
        "live": job.status in RUNNING,
        "federated": federated,
        "charts": (
            [round_chart(job.rounds, m) for m in METRICS if m in reported]
            or [round_chart((), "auc")]
        )
        if federated
        else [],
    }


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_show(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.JOBS_READ)], job_id: str
) -> HTMLResponse:
    """`kumiai job ID`: the sites admitted and refused with reasons, and every round."""
    return page(request, "job.html", viewer, **_job_context(home, job_id))


@router.get("/jobs/{job_id}/progress", response_class=HTMLResponse)
def job_progress(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.JOBS_READ)], job_id: str
) -> HTMLResponse:
    """The fragment htmx polls while the job runs; once it ends, it stops asking."""
    return page(request, "job_progress.html", viewer, **_job_context(home, job_id))


@router.get("/models", response_class=HTMLResponse)
def model_list(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.MODELS_READ)]
) -> HTMLResponse:
    return page(request, "models.html", viewer, models=models.list_models(home))


def _contributions(home: Consortium, model_id: str) -> tuple[int, dict[str, Any]] | None:
    """The newest `model.contributions` entry for the model: its seq and payload."""
    for entry in reversed(transparency.show_entries(home, kind="model.contributions")):
        if entry.payload.get("model") == model_id:
            return entry.seq, entry.payload
    return None


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_show(
    request: Request,
    home: Home,
    viewer: Annotated[Viewer, needs(Action.MODELS_READ)],
    model_id: str,
) -> HTMLResponse:
    """`kumiai model ID`, its contribution shares from the ledger, and `licence list`."""
    model = models.model_detail(home, model_id)
    found = _contributions(home, model_id)
    chart = None
    if found is not None:
        shares = found[1].get("shares")
        if isinstance(shares, dict):
            metric = str(found[1].get("metric", ""))
            numeric = {str(k): v for k, v in shares.items() if isinstance(v, int | float)}
            chart = share_chart(model_id, metric, numeric)
    return page(
        request,
        "model.html",
        viewer,
        model=model,
        contributions=found,
        chart=chart,
        licences=[lic for lic in licences.list_licences(home) if lic.model == model_id],
    )


@router.get("/privacy", response_class=HTMLResponse)
def privacy_page(
    request: Request, home: Home, viewer: Annotated[Viewer, needs(Action.BUDGETS_READ)]
) -> HTMLResponse:
    """`kumiai budget`, and each dataset's ε spent, committed and left over time, replayed
    from the ledger; a dataset the catalogue does not hold is not charted."""
    entries = [
        (e.seq, e.time, e.kind, e.payload)
        for kind in BUDGET_KINDS
        for e in transparency.show_entries(home, kind=kind)
    ]
    history = budget_history(sorted(entries, key=lambda e: e[0]))
    budgets = privacy.budgets(home)
    charts = [budget_chart(b.dataset, history[b.dataset]) for b in budgets if b.dataset in history]
    return page(
        request,
        "privacy.html",
        viewer,
        budgets=budgets,
        history=history,
        charts=charts,
        series=BUDGET_SERIES,
    )
