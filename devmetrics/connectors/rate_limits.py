"""Honour a forge's rate-limit budget before sending, not after being refused.

GitHub and GitLab say on every answer how many requests the window has left and when it
resets (epoch seconds): `X-RateLimit-Remaining` / `X-RateLimit-Reset` on GitHub (one budget
per `X-RateLimit-Resource`: core, graphql, search), `RateLimit-Remaining` / `RateLimit-Reset`
on GitLab. Once an answer said 0, every request to that budget would be refused until the
reset, and refused requests still count against some limits. So the connectors ask the gate
before each request (first attempts and retries alike): it sleeps until the reset plus a
little jitter (collectors sharing a token should not all send in the same instant), or, when
that is further away than `sync.max_wait`, raises `WaitTooLong` without sending anything.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

JITTER = (0.1, 1.0)  # seconds after the reset: the reset is an epoch second, with no fraction


class WaitTooLong(Exception):
    """The budget resets later than max_wait allows waiting (each connector words it)."""

    def __init__(self, resource: str, wait: float, reset: int) -> None:
        super().__init__(f"{resource} rate limit resets in {wait:.0f} s")
        self.resource, self.wait, self.reset = resource, wait, reset

    @property
    def retry_at(self) -> datetime:
        return datetime.fromtimestamp(self.reset, UTC)


def header(headers: Mapping[str, str] | None, *names: str) -> str | None:
    """The first of `names` present in `headers`, whatever the case of the header names."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return next((str(lowered[n]) for n in names if n in lowered), None)


class RateLimitGate:
    """The last known state of each budget, and the wait before the next request to it."""

    def __init__(self, max_wait: float, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.max_wait = max_wait
        self._clock, self._sleep = clock, sleep
        self._empty_until: dict[str, int] = {}  # resource -> reset (epoch s) of a used-up window
        self._lock = threading.Lock()

    def observe(self, resource: str, remaining: str | None, reset: str | None) -> None:
        """Record what an answer said about `resource`'s window (headers may be missing)."""
        if remaining is None or not remaining.strip().isdigit():
            return
        with self._lock:
            if int(remaining) > 0:
                self._empty_until.pop(resource, None)
            elif reset is not None and reset.strip().isdigit():
                self._empty_until[resource] = int(reset)

    def empty_until(self, resource: str, reset: int) -> None:
        """Treat `resource` as used up until `reset` (an answer refused it without saying 0)."""
        with self._lock:
            self._empty_until[resource] = max(reset, self._empty_until.get(resource, 0))

    def wait_needed(self, resource: str) -> float:
        """Seconds until `resource`'s window resets (0 when it is not known to be used up)."""
        reset = self._reset(resource)
        return 0.0 if reset is None else max(0.0, reset - self._clock())

    def hold(self, resource: str) -> float:
        """Before a request: sleep past the reset of a used-up window; the seconds slept.

        Raises WaitTooLong (nothing sent) when the reset is more than max_wait away.
        """
        reset = self._reset(resource)
        wait = 0.0 if reset is None else reset - self._clock()
        if reset is None or wait <= 0:
            return 0.0
        if wait > self.max_wait:
            raise WaitTooLong(resource, wait, reset)
        wait += random.uniform(*JITTER)
        self._sleep(wait)
        return wait

    def _reset(self, resource: str) -> int | None:
        with self._lock:
            return self._empty_until.get(resource)
