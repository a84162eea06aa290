"""Authenticating signed requests on SQLite and PostgreSQL: two coordinator workers (two
engines on one database) share the nonce table, so a replay is refused by either."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumiai.adapters.storage.database import transaction
from kumiai.adapters.storage.schema import RequestNonceRow
from kumiai.domain.clock import frozen_at, utc_now
from kumiai.domain.errors import Unauthenticated
from kumiai.domain.request_auth import HttpRequest, sign_request
from kumiai.domain.roles import Role
from kumiai.node.home import NodeHome
from kumiai.services.access import authenticate
from kumiai.services.consortium import init_consortium, open_consortium
from kumiai.services.members import add_member

pytestmark = pytest.mark.usefixtures("backend")  # on SQLite and on PostgreSQL


def signed(key, at) -> HttpRequest:  # type: ignore[no-untyped-def]
    headers = sign_request(key, method="GET", path="/members", query="", body=b"", now=at)
    return HttpRequest("GET", "/members", "", b"", {k.lower(): v for k, v in headers.items()})


def test_two_workers_refuse_the_same_replay(home: Path) -> None:
    first = init_consortium(home)
    add_member(first, "st-mary", "hospital")
    second = open_consortium(home)  # another coordinator process on the same database
    key = NodeHome(first.member_home("st-mary")).private_key()
    request = signed(key, utc_now())
    principal = authenticate(first, request)
    assert principal.member == "st-mary" and Role.STEWARD in principal.roles
    for worker in (second, first):
        with pytest.raises(Unauthenticated, match="was already used: a replayed request"):
            authenticate(worker, request)
    with transaction(second.sessions) as session:
        assert session.scalar(select(func.count()).select_from(RequestNonceRow)) == 1


def test_a_nonce_is_kept_until_its_signature_expires_then_pruned(home: Path) -> None:
    consortium = init_consortium(home)
    add_member(consortium, "st-mary", "hospital")
    key = NodeHome(consortium.member_home("st-mary")).private_key()
    start = utc_now()
    authenticate(consortium, signed(key, start), now=start)
    later = start + timedelta(seconds=61)  # the first signature (60 s) has expired
    with frozen_at(later):
        authenticate(consortium, signed(key, later), now=later)
    with transaction(consortium.sessions) as session:
        assert session.scalar(select(func.count()).select_from(RequestNonceRow)) == 1
