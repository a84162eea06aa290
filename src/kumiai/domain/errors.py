"""One exception family. Every message names the thing that is wrong and how to fix it."""


class KumiaiError(Exception):
    """A user-facing error: the CLI prints it on one line and exits non-zero."""

    exit_code = 1


class NotFound(KumiaiError):
    """A member, project, dataset, request, agreement, job or model that does not exist."""

    exit_code = 2


class InvalidInput(KumiaiError):
    """An argument or file the user gave that cannot be used as given."""

    exit_code = 2


class DataError(InvalidInput):
    """A data file that cannot be read: names the file, row and column."""


class SchemaMismatch(DataError):
    """Sites whose columns differ cannot train one model together."""


class Unreachable(InvalidInput):
    """The coordinator did not answer (refused, timed out): the address to check is named.
    Still a mistake to check on the command line; a node page answers it with 502."""


class StateError(KumiaiError):
    """An act that the object's lifecycle does not allow now (e.g. approving a closed project)."""


class Unauthenticated(KumiaiError):
    """An API request whose signature, key, body, time or nonce does not check out."""


class Forbidden(KumiaiError):
    """An authenticated caller whose role does not permit the act, or who acts for another."""


class JobFailed(KumiaiError):
    """A job that could not run: every node refused, or the federation broke."""


class JobStopped(JobFailed):
    """A job stopped on request (SIGTERM, Ctrl-C): failed with the reason, nothing released."""

    exit_code = 130


class Stopped(KeyboardInterrupt):
    """Raised by the CLI's SIGTERM handler: a process manager's stop ends a job as Ctrl-C does."""


class UnsupportedVersion(InvalidInput):
    """A signed document in a format version this kumiai does not read (older or newer)."""


class NotCanonical(InvalidInput, ValueError):
    """A value canonical JSON (RFC 8785) cannot hold: NaN, Infinity, an inexact integer.

    Also a ValueError, as json.dumps(allow_nan=False) raised before RFC 8785 came in.
    """
