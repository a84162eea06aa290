"""The board and the association: charter, motions, themes, funds, milestones, spin-outs,
licences and royalties. Each route calls the service its CLI command calls.
"""

from typing import Annotated

from fastapi import APIRouter

from kumiai.domain.roles import Action
from kumiai.interfaces.api.auth import allow
from kumiai.interfaces.api.context import Home, PlainJSON, reply, stored_int
from kumiai.interfaces.api.openapi import ok
from kumiai.services import (
    charter,
    funds,
    licences,
    milestones,
    motions,
    royalties,
    spinouts,
    themes,
)

router = APIRouter(tags=["association"])


@router.get(
    "/charter",
    summary="`kumiai charter show [--version N] --json`",
    dependencies=[allow(Action.BOARD_READ)],
    responses=ok(charter.CharterInfo),
)
def charter_show(
    home: Home,
    version: Annotated[int | None, stored_int("A version; the latest by default.")] = None,
) -> PlainJSON:
    return reply(charter.show_charter(home, version))


@router.get(
    "/motions",
    summary="`kumiai motion list [--status S] --json`",
    dependencies=[allow(Action.BOARD_READ)],
    responses=ok(list[motions.MotionInfo]),
)
def motion_list(home: Home, status: str | None = None) -> PlainJSON:
    return reply(motions.list_motions(home, status))


@router.get(
    "/motions/{motion_id}",
    summary="`kumiai motion show ID --json`",
    dependencies=[allow(Action.BOARD_READ)],
    responses=ok(motions.MotionInfo),
)
def motion_show(home: Home, motion_id: str) -> PlainJSON:
    return reply(motions.show_motion(home, motion_id))


@router.get(
    "/themes",
    summary="`kumiai theme list --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(list[themes.ThemeInfo]),
)
def theme_list(home: Home) -> PlainJSON:
    return reply(themes.list_themes(home))


@router.get(
    "/themes/{name}",
    summary="`kumiai theme show NAME --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(themes.ThemeInfo),
)
def theme_show(home: Home, name: str) -> PlainJSON:
    return reply(themes.show_theme(home, name))


@router.get(
    "/funds",
    summary="`kumiai funds --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(funds.FundsInfo),
)
def fund_list(home: Home) -> PlainJSON:
    return reply(funds.list_funds(home))


@router.get(
    "/milestones",
    summary="`kumiai milestone list [PROJECT] --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(list[milestones.MilestoneInfo]),
)
def milestone_list(home: Home, project: str | None = None) -> PlainJSON:
    return reply(milestones.list_milestones(home, project))


@router.get(
    "/milestones/{project}/{name}",
    summary="`kumiai milestone show PROJECT NAME --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(milestones.MilestoneInfo),
)
def milestone_show(home: Home, project: str, name: str) -> PlainJSON:
    return reply(milestones.show_milestone(home, project, name))


@router.get(
    "/spinouts",
    summary="`kumiai spinout list --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(list[spinouts.SpinoutInfo]),
)
def spinout_list(home: Home) -> PlainJSON:
    return reply(spinouts.list_spinouts(home))


@router.get(
    "/spinouts/{name}",
    summary="`kumiai spinout show NAME --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(spinouts.SpinoutInfo),
)
def spinout_show(home: Home, name: str) -> PlainJSON:
    return reply(spinouts.show_spinout(home, name))


@router.get(
    "/licences",
    summary="`kumiai licence list --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(list[licences.LicenceInfo]),
)
def licence_list(home: Home) -> PlainJSON:
    return reply(licences.list_licences(home))


@router.get(
    "/licences/{licence}",
    summary="`kumiai licence show ID --json`",
    dependencies=[allow(Action.ASSOCIATION_READ)],
    responses=ok(licences.LicenceInfo),
)
def licence_show(home: Home, licence: str) -> PlainJSON:
    return reply(licences.show_licence(home, licence))


@router.get(
    "/royalties/statement",
    summary="`kumiai royalties statement [--member M] --json`",
    dependencies=[allow(Action.ROYALTIES_READ)],
    responses=ok(royalties.Statements),
)
def royalty_statement(home: Home, member: str | None = None) -> PlainJSON:
    return reply(royalties.statements(home, member))
