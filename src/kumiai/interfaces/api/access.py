"""Who the caller is, as the coordinator sees it: a node checks its key works and its roles."""

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import PlainJSON, reply
from kumiai.interfaces.api.openapi import ok
from kumiai.services.access import Principal

router = APIRouter(tags=["access"])


class Caller(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    roles: list[str]
    member: str | None


@router.get("/whoami", summary="The signed caller's name, roles and member", responses=ok(Caller))
def whoami(caller: Annotated[Principal, allow(Action.WHOAMI)]) -> PlainJSON:
    return reply(caller.as_dict())
