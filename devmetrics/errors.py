"""The errors devmetrics shows users: one line, a documented exit status, never a traceback."""

from __future__ import annotations

# Exit statuses (documented in README.md, "Exit statuses").
EXIT_OK = 0
EXIT_RUNTIME = 1  # a sync or report failed at run time (forge, network, database)
EXIT_USAGE = 2  # bad command line or bad configuration
EXIT_LOCKED = 3  # another sync holds the lock and --no-wait was given
EXIT_PARTIAL = 4  # sync finished but some repo/stream failed; the rest is stored


class DevmetricsError(Exception):
    """An error shown to the user as one line, with an exit status."""

    exit_code = EXIT_RUNTIME


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
