"""The role × action matrix, pair by pair, against a copy written out independently here."""

import pytest

from kumiai.domain.errors import Forbidden
from kumiai.domain.roles import (
    PERMITTED,
    PUBLIC,
    Action,
    Role,
    permits,
    require,
    require_member_record,
    require_own,
    require_project_member,
)

OP, S, R, B, A = "operator", "steward", "researcher", "board", "auditor"
ALL = {OP, S, R, B, A}

# Written out by hand: a change to PERMITTED must be made here too, on purpose.
EXPECTED: dict[str, set[str]] = {
    "ledger.read": ALL,  # public: the transparency log needs no key
    "docs.read": ALL,  # public
    "trust.read": ALL,  # public: what a joining node checks against its invitation
    "member.join": {S},  # public route, authorised by the invitation
    "witness.read": ALL,  # public: the witnesses' cosigned heads
    "witness.cosign": {S},  # public route, authorised by the member's signature on the head
    "members.read": ALL,
    "datasets.read": ALL,
    "projects.read": ALL,
    "requests.read": ALL,
    "agreements.read": ALL,
    "jobs.read": ALL,
    "models.read": ALL,
    "budgets.read": ALL,
    "board.read": ALL,
    "association.read": ALL,
    "royalties.read": ALL,
    "report.read": ALL,  # any registered key: the report is the public ledger, summed
    "whoami": ALL,
    "request.sign": {S},
    "request.refuse": {S},
    "agreement.revoke": {S},
    "dataset.register": {S},
    "request.make": {R},
    "project.propose": {R},
    "motion.vote": {B},
    "budget.set": {S},
    "member.rotate-key": {S, R},  # every member's node holds both
    "privacy.release": {S},  # a steward's node reports the ε it released
    "member.record.read": {OP, B, S},  # a steward only its own (require_member_record)
    "job.start": {OP, R},  # a researcher only for its own projects (require_project_member)
}


def test_the_expected_matrix_names_every_action_and_role() -> None:
    assert set(EXPECTED) == {a.value for a in Action}
    assert {r.value for r in Role} == ALL
    assert set(PERMITTED) == set(Action)


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("action", list(Action), ids=str)
def test_each_role_and_action_pair(role: Role, action: Action) -> None:
    assert permits(role, action) is (role.value in EXPECTED[action.value])


def test_only_the_ledger_the_docs_and_joining_are_public() -> None:
    assert {a.value for a in PUBLIC} == {
        "ledger.read",
        "docs.read",
        "trust.read",
        "member.join",
        "witness.read",
        "witness.cosign",
    }


def test_an_auditor_writing_is_refused_naming_role_action_and_who_may() -> None:
    with pytest.raises(Forbidden) as refused:
        require("kpmg", [Role.AUDITOR], Action.REQUEST_REFUSE)
    assert str(refused.value) == ("kpmg (auditor) may not request.refuse; only steward may")


def test_the_operator_cannot_act_as_a_steward() -> None:
    with pytest.raises(Forbidden, match=r"coordinator \(operator\) may not request.sign"):
        require("coordinator", [Role.OPERATOR], Action.REQUEST_SIGN)


def test_any_held_role_that_permits_suffices() -> None:
    require("st-mary", [Role.RESEARCHER, Role.STEWARD], Action.AGREEMENT_REVOKE)
    with pytest.raises(Forbidden, match=r"nobody \(no role\) may not whoami"):
        require("nobody", [], Action.WHOAMI)


def test_a_steward_acts_only_on_its_own_members_things() -> None:
    require_own("st-mary", "st-mary", "dataset st-mary-heart")
    with pytest.raises(Forbidden) as refused:
        require_own("st-mary", "va-long-beach", "dataset va-heart")
    assert str(refused.value) == (
        "st-mary's node acts only for st-mary; dataset va-heart belongs to va-long-beach, "
        "whose own node must act on it"
    )


@pytest.mark.parametrize(
    ("roles", "own", "allowed"),
    [
        ({Role.OPERATOR}, None, True),
        ({Role.STEWARD, Role.RESEARCHER, Role.BOARD}, "other", True),  # a board seat
        ({Role.STEWARD, Role.RESEARCHER}, "kita", True),  # its own steward
        ({Role.STEWARD, Role.RESEARCHER}, "other", False),  # another member's steward
        ({Role.RESEARCHER}, "kita", False),  # not a steward's role
        ({Role.AUDITOR}, None, False),
        (set(), None, False),
    ],
)
def test_a_member_record_is_its_stewards_the_boards_and_the_operators(
    roles: set[Role], own: str | None, allowed: bool
) -> None:
    if allowed:
        require_member_record("who", own, roles, "kita")
    else:
        with pytest.raises(Forbidden):
            require_member_record("who", own, roles, "kita")


def test_another_members_steward_is_refused_naming_the_rule() -> None:
    with pytest.raises(Forbidden) as refused:
        require_member_record("sato", "sato", [Role.RESEARCHER, Role.STEWARD], "kita")
    assert str(refused.value) == (
        "sato (researcher, steward) may read only its own member record, not kita's; "
        "the board and the operator read every member's"
    )
    with pytest.raises(Forbidden, match=r"kpmg \(auditor\) may not member.record.read; only "):
        require_member_record("kpmg", None, [Role.AUDITOR], "kita")


@pytest.mark.parametrize(
    ("roles", "own", "allowed"),
    [
        ({Role.OPERATOR}, None, True),
        ({Role.STEWARD, Role.RESEARCHER}, "kita", True),  # a researcher of the project
        ({Role.STEWARD, Role.RESEARCHER, Role.BOARD}, "other", False),  # another project's
        ({Role.STEWARD}, "kita", False),  # not a researcher's role
        ({Role.AUDITOR}, None, False),
        (set(), None, False),
    ],
)
def test_a_job_is_started_by_the_projects_researchers_and_the_operator(
    roles: set[Role], own: str | None, allowed: bool
) -> None:
    if allowed:
        require_project_member("caller", own, roles, "heart", ["kita", "minami"])
        return
    with pytest.raises(Forbidden):
        require_project_member("caller", own, roles, "heart", ["kita", "minami"])


def test_another_projects_researcher_is_refused_naming_the_project() -> None:
    with pytest.raises(Forbidden) as refused:
        require_project_member("other", "other", [Role.RESEARCHER], "heart", ["kita"])
    assert str(refused.value) == (
        "other (researcher) may start jobs only for projects its member belongs to, not "
        "'heart'; a member of 'heart' or the operator starts them"
    )
