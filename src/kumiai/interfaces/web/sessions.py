"""The dashboard's sign-in challenges and sessions, held in the coordinator's memory.

Why in memory, not a table: the coordinator serves from one process (`create_app` runs its
routes one at a time), so one dict is the whole truth; a restart signs everyone out, which
is the safe way to fail; and no live session id ever reaches the disk, a backup or a copied
home. Each id is 256 random bits and only its SHA-256 is kept, so even a memory dump shows
no cookie that works.

A pre-session (the sign-in page) holds the challenge and the CSRF token its form must post
back; a session holds the principal and its own CSRF token. Both expire; both are spent or
dropped explicitly (sign-in spends the pre-session whatever the outcome; sign-out drops the
session).
"""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kumiai.domain.clock import utc_now
from kumiai.domain.sign_in import CHALLENGE_LIFETIME, SESSION_LIFETIME, new_challenge
from kumiai.services.access import Principal

SESSION_COOKIE = "kumiai_session"
PRESESSION_COOKIE = "kumiai_sign_in"


@dataclass(frozen=True)
class Pending:
    """A sign-in page shown: its challenge, when it was issued, and its form's CSRF token."""

    challenge: str
    issued: datetime
    csrf: str


@dataclass(frozen=True)
class Session:
    principal: Principal
    expires: datetime
    csrf: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a posted CSRF token with the one on record."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class SessionStore:
    clock: Callable[[], datetime] = utc_now  # a test moves it to expire what it holds
    _pending: dict[str, Pending] = field(default_factory=dict)
    _sessions: dict[str, Session] = field(default_factory=dict)

    def begin(self) -> tuple[str, Pending]:
        """A new pre-session: its cookie value and what the page shows."""
        now = self.clock()
        self._prune(now)
        token = secrets.token_urlsafe(32)
        pending = Pending(new_challenge(), now, secrets.token_urlsafe(32))
        self._pending[_digest(token)] = pending
        return token, pending

    def spend(self, token: str | None) -> Pending | None:
        """The pre-session behind a cookie, removed: a challenge is answered once."""
        return self._pending.pop(_digest(token), None) if token else None

    def open(self, principal: Principal) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(principal, self.clock() + SESSION_LIFETIME, secrets.token_urlsafe(32))
        self._sessions[_digest(token)] = session
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session behind a cookie; an unknown or expired id is no session."""
        if not token:
            return None
        session = self._sessions.get(_digest(token))
        if session is None or session.expires <= self.clock():
            self._sessions.pop(_digest(token), None)
            return None
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def _prune(self, now: datetime) -> None:
        # Kept a while past expiry, so a late answer hears "expired", not "unknown".
        kept = 2 * CHALLENGE_LIFETIME
        self._pending = {k: p for k, p in self._pending.items() if now - p.issued <= kept}
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
