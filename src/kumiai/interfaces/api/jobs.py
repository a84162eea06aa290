"""`POST /jobs`: a project's researcher (or the operator) starts a training job remotely.

The body is `kumiai train`'s settings, as `TrainingSettings` names them, checked by the same
domain rules; the job runs on the SuperLink `coordinator serve --superlink-port` supervises,
and `GET /jobs/{id}` reads its rounds, sites, status and error (`services.job_launch`).
"""

import json
from typing import Annotated, Any, get_args, get_type_hints

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from kumiai.domain.errors import InvalidInput
from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import SignedBeforeBody, allow
from kumiai.interfaces.api.context import Home, PlainJSON
from kumiai.interfaces.api.openapi import error_responses
from kumiai.services.access import Principal

router = APIRouter(tags=["jobs"], route_class=SignedBeforeBody)


class JobBody(BaseModel):
    project: str
    settings: dict[str, Any] = Field(
        default={},
        description="TrainingSettings fields (strategy, rounds, local_epochs, learning_rate, "
        "epsilon, …), as `kumiai train` sets them; the rest keep their defaults.",
    )
    admission_timeout: float | None = Field(
        default=None, gt=0, description="Seconds to wait for the nodes (default 120)."
    )
    round_timeout: float | None = Field(
        default=None, gt=0, description="Seconds to wait for a round's replies."
    )


class StartedReply(BaseModel):
    job: str
    by: str | None = Field(description="The member recorded as starting it.")
    status: str


def training_settings(fields: dict[str, Any]) -> Any:
    """The body's settings as `TrainingSettings`, refused by its own checks (one source)."""
    from dataclasses import fields as dataclass_fields

    from kumiai.domain.disclosure import PublicDomain
    from kumiai.domain.training import NOT_TRAIN_OPTIONS, TrainingSettings

    known = {f.name for f in dataclass_fields(TrainingSettings)} - NOT_TRAIN_OPTIONS
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InvalidInput(
            f"unknown training setting(s) {', '.join(unknown)}; the settings are "
            f"{', '.join(sorted(known))}"
        )
    values = dict(fields)
    domain = values.get("public_domain")
    if isinstance(domain, dict):  # the object itself, as the CLI's --public-domain file holds it
        values["public_domain"] = PublicDomain.from_json(
            json.dumps(domain), "settings.public_domain"
        ).to_json()
    hints = get_type_hints(TrainingSettings)
    for name, value in values.items():
        values[name] = typed(name, value, hints[name])
    return TrainingSettings(**values)


def typed(name: str, value: Any, hint: Any) -> Any:
    """`value` as the setting's declared type (an integer is a float too), or refused naming
    the setting: the domain's checks compare numbers, and a string there is no number."""
    allowed = get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return value
    if float in allowed and type(value) in (int, float):
        return float(value)
    if type(value) in allowed:
        return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise InvalidInput(f"training setting {name} must be {names}, got {json.dumps(value)}")


@router.post(
    "/jobs",
    summary="`kumiai train PROJECT --coordinator URL`: start a job on the coordinator's SuperLink",
    status_code=202,
    responses={
        202: {"model": StartedReply, "description": "Started: read it at /jobs/{job}."},
        **error_responses(403, 409),
    },
)
def job_start(
    request: Request,
    home: Home,
    body: JobBody,
    caller: Annotated[Principal, allow(Action.JOB_START)],
) -> PlainJSON:
    from kumiai.services.job_launch import start_training_job

    settings = training_settings(body.settings)
    started = start_training_job(
        home,
        caller,
        body.project,
        settings,
        request.app.state.superlink,
        admission_timeout=body.admission_timeout,
        round_timeout=body.round_timeout,
        runner=request.app.state.job_runner,
    )
    reply = {"job": started.job_id, "by": started.by, "status": "running"}
    return PlainJSON(reply, status_code=202)
