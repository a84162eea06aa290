"""Who the caller is, as the coordinator sees it: a node checks its key works and its roles."""

from typing import Annotated

from fastapi import APIRouter

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import PlainJSON, reply
from kumiai.services.access import Principal

router = APIRouter(tags=["access"])


@router.get("/whoami", summary="The signed caller's name, roles and member")
def whoami(caller: Annotated[Principal, allow(Action.WHOAMI)]) -> PlainJSON:
    return reply(caller.as_dict())
