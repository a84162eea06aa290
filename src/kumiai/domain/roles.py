"""Who may do what through the coordinator's API: one table, checked in one place.

Every route declares exactly one `Action`; `PERMITTED` says which roles may take it. A caller
holds one or more roles (a member's node key is its `steward` and `researcher`, and its
`board` seat where the charter gives it one); an act is allowed when any of them permits it.
The ledger (entries, proofs, the signed head, the export) is public on purpose: a
transparency log anyone can check needs no key. Everything else needs a signed request.
"""

from collections.abc import Iterable
from enum import StrEnum

from kumiai.domain.errors import Forbidden, InvalidInput


class Role(StrEnum):
    OPERATOR = "operator"  # the coordinator's own key: runs the service, invites members
    STEWARD = "steward"  # a member's node: its datasets, agreements, refusals, revocations
    RESEARCHER = "researcher"  # a member's node, asking for data for its projects
    BOARD = "board"  # a member holding a board seat under the charter
    AUDITOR = "auditor"  # auditors and investors: read-only keys the operator registers


class Action(StrEnum):
    """One per route of the API (`tests/interfaces/test_api_roles.py` walks the routes)."""

    # -- public: the transparency ledger and the API's own documentation ---------------------
    LEDGER_READ = "ledger.read"
    DOCS_READ = "docs.read"
    TRUST_READ = "trust.read"  # the CA certificate and coordinator key a joining node checks
    JOIN = "member.join"  # authorised by the invitation token, not by a registered key
    WITNESS_READ = "witness.read"  # every witness's latest cosigned head
    COSIGN = "witness.cosign"  # authorised by the member's signature on the head itself
    # -- records: any registered key may read ------------------------------------------------
    MEMBERS_READ = "members.read"
    DATASETS_READ = "datasets.read"
    PROJECTS_READ = "projects.read"
    REQUESTS_READ = "requests.read"
    AGREEMENTS_READ = "agreements.read"
    JOBS_READ = "jobs.read"
    MODELS_READ = "models.read"
    BUDGETS_READ = "budgets.read"
    BOARD_READ = "board.read"  # charter and motions
    ASSOCIATION_READ = "association.read"  # themes, funds, milestones, spin-outs, licences
    ROYALTIES_READ = "royalties.read"
    REPORT_READ = "report.read"  # the investor, member or board report, from the ledger
    WHOAMI = "whoami"
    # -- the steward's acts, signed at its node ----------------------------------------------
    REQUEST_SIGN = "request.sign"
    REQUEST_REFUSE = "request.refuse"
    AGREEMENT_REVOKE = "agreement.revoke"
    DATASET_REGISTER = "dataset.register"
    # -- a member's other acts, signed at its node -------------------------------------------
    REQUEST_MAKE = "request.make"  # a researcher asks a steward for data
    PROJECT_PROPOSE = "project.propose"
    MOTION_VOTE = "motion.vote"  # a board seat votes; the charter decides who is eligible
    BUDGET_SET = "budget.set"  # the steward's node mirrors the ε budget its own home enforces
    KEY_ROTATE = "member.rotate-key"  # a member's node replaces its key, the old one vouching
    PRIVACY_RELEASE = "privacy.release"  # a steward's node reports the ε it released
    # -- one member's own record: its steward, the board and the operator ------------------
    MEMBER_RECORD_READ = "member.record.read"  # a steward reads its own (require_member_record)
    # -- a project's training job on the coordinator's SuperLink ---------------------------
    JOB_START = "job.start"  # the project's researchers (require_project_member), the operator


PUBLIC: frozenset[Action] = frozenset(
    {
        Action.LEDGER_READ,
        Action.DOCS_READ,
        Action.TRUST_READ,
        Action.JOIN,
        Action.WITNESS_READ,
        Action.COSIGN,
    }
)
"""Actions that need no signed request: the join carries its invitation, a cosignature its
member's signature on the head, and the rest is the transparency log's public side."""

_EVERYONE = frozenset(Role)
_STEWARD = frozenset({Role.STEWARD})

PERMITTED: dict[Action, frozenset[Role]] = {
    Action.LEDGER_READ: _EVERYONE,
    Action.DOCS_READ: _EVERYONE,
    Action.TRUST_READ: _EVERYONE,
    Action.JOIN: frozenset({Role.STEWARD}),
    Action.WITNESS_READ: _EVERYONE,
    Action.COSIGN: frozenset(
        {Role.STEWARD}
    ),  # a member's node, witnessing  # the new member's node, holding an invitation
    Action.MEMBERS_READ: _EVERYONE,
    Action.DATASETS_READ: _EVERYONE,
    Action.PROJECTS_READ: _EVERYONE,
    Action.REQUESTS_READ: _EVERYONE,
    Action.AGREEMENTS_READ: _EVERYONE,
    Action.JOBS_READ: _EVERYONE,
    Action.MODELS_READ: _EVERYONE,
    Action.BUDGETS_READ: _EVERYONE,
    Action.BOARD_READ: _EVERYONE,
    Action.ASSOCIATION_READ: _EVERYONE,
    Action.ROYALTIES_READ: _EVERYONE,
    Action.REPORT_READ: _EVERYONE,
    Action.WHOAMI: _EVERYONE,
    Action.REQUEST_SIGN: _STEWARD,
    Action.REQUEST_REFUSE: _STEWARD,
    Action.AGREEMENT_REVOKE: _STEWARD,
    Action.DATASET_REGISTER: _STEWARD,
    Action.REQUEST_MAKE: frozenset({Role.RESEARCHER}),
    Action.PROJECT_PROPOSE: frozenset({Role.RESEARCHER}),
    Action.MOTION_VOTE: frozenset({Role.BOARD}),
    Action.BUDGET_SET: _STEWARD,
    Action.KEY_ROTATE: frozenset({Role.STEWARD, Role.RESEARCHER}),
    Action.PRIVACY_RELEASE: _STEWARD,
    Action.MEMBER_RECORD_READ: frozenset({Role.OPERATOR, Role.BOARD, Role.STEWARD}),
    Action.JOB_START: frozenset({Role.OPERATOR, Role.RESEARCHER}),
}


def permits(role: Role, action: Action) -> bool:
    return role in PERMITTED[action]


def require(who: str, roles: Iterable[Role], action: Action) -> None:
    """Refuse, naming the caller, its roles, the action and the roles that may take it."""
    held = frozenset(roles)
    if any(permits(role, action) for role in held):
        return
    allowed = ", ".join(sorted(PERMITTED[action])) or "no role"
    has = ", ".join(sorted(held)) or "no role"
    raise Forbidden(f"{who} ({has}) may not {action.value}; only {allowed} may")


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {text!r}; choose one of {names}") from None


def require_own(member: str, owner: str, what: str) -> None:
    """A member's node acts only for that member: a steward of A never acts on B's dataset."""
    if member != owner:
        raise Forbidden(
            f"{member}'s node acts only for {member}; {what} belongs to {owner}, "
            f"whose own node must act on it"
        )


def require_member_record(who: str, own: str | None, roles: Iterable[Role], member: str) -> None:
    """A member's record — its datasets' ε, agreements, decisions, royalties — is read by the
    board and the operator, and by that member's own steward: never by another member's.

    `own` is the member whose key `who` signed in with (None for the operator, an auditor).
    """
    held = frozenset(roles)
    require(who, held, Action.MEMBER_RECORD_READ)
    if held & {Role.OPERATOR, Role.BOARD} or own == member:
        return
    raise Forbidden(
        f"{who} ({', '.join(sorted(held))}) may read only its own member record, not "
        f"{member}'s; the board and the operator read every member's"
    )


def require_project_member(
    who: str, own: str | None, roles: Iterable[Role], project: str, members: Iterable[str]
) -> None:
    """A job of a project is started by the operator, or by a researcher of a member OF that
    project: a researcher of another project never spends this project's quota or ε.

    `own` is the member whose key `who` signed in with (None for the operator, an auditor).
    """
    held = frozenset(roles)
    require(who, held, Action.JOB_START)
    if Role.OPERATOR in held or own in frozenset(members):
        return
    raise Forbidden(
        f"{who} ({', '.join(sorted(held))}) may start jobs only for projects its member "
        f"belongs to, not {project!r}; a member of {project!r} or the operator starts them"
    )
