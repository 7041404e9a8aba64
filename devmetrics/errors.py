"""The errors devmetrics shows users: one line, a documented exit status, never a traceback.

Every message passes the one masking rule (devmetrics/secrets.py) when the error is made, so
no token, URL password or query token can travel in an exception, whoever prints it.
"""

from __future__ import annotations

import socket
import ssl
from http import HTTPStatus

from devmetrics.secrets import redact

# Exit statuses (documented in README.md, "Exit statuses").
EXIT_OK = 0
EXIT_RUNTIME = 1  # a sync or report failed at run time (forge, network, database)
EXIT_USAGE = 2  # bad command line or bad configuration
EXIT_LOCKED = 3  # another sync holds the lock and --no-wait was given
EXIT_PARTIAL = 4  # sync finished but some repo/stream failed; the rest is stored
EXIT_BREACHED = 5  # `devmetrics check`: a target is breached (the CI gate / cron alert)

MESSAGE_LIMIT = 300  # a forge's own message longer than this is cut (it is one line of ours)


class DevmetricsError(Exception):
    """An error shown to the user as one line, with an exit status."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(redact(str(message)), *args)


class ConfigError(DevmetricsError):
    """The configuration file or a command-line option is wrong."""

    exit_code = EXIT_USAGE


class ForgeError(DevmetricsError):
    """A forge API failed in a way retries could not fix (names the repo and stream)."""


class RateLimitExhausted(ForgeError):
    """The rate-limit budget is gone and waiting longer than max_wait is not allowed."""

    def __init__(self, message: str, retry_at: object | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class StoreError(DevmetricsError):
    """The database could not be opened or written."""


class LockedError(DevmetricsError):
    """Another sync is running."""

    exit_code = EXIT_LOCKED


# ------------------------------------------------------------------ wording for users

def http_status(status: int) -> str:
    """`502 Bad Gateway`: the status and its reason phrase, never the body that came with it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def forge_message(text: object) -> str:
    """A forge's own error message (JSON `message`) as one short line; HTML or other bodies
    are not messages and give ""."""
    line = " ".join(str(text or "").split())
    if line.lstrip().startswith("<") or line.startswith(("b'<", 'b"<')):
        return ""
    return line if len(line) <= MESSAGE_LIMIT else line[:MESSAGE_LIMIT - 1] + "…"


def network_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words ("connection refused", "timed out"), from the
    innermost cause requests and urllib3 wrap it in (their own text is a paragraph)."""
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "host not found"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause.__class__.__name__}"
        if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
            return "timed out"
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
    return type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (causes, contexts, urllib3's `reason`, args)."""
    found: list[BaseException] = []
    pending: list[object] = [exc]
    while pending and len(found) < 20:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
    return found
