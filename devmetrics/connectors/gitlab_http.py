"""The HTTP side of the GitLab connector: request counting and a cap on python-gitlab's waits.

python-gitlab already retries 429s (sleeping for Retry-After / RateLimit-Reset) and 5xx
answers, and we use that loop rather than a second one. It has no cap, though: it sleeps
for whatever the server asks, and with `max_retries=-1` it never gives up. Both clients
(requests for REST, httpx for GraphQL) report every answer to one `RequestBudget`, which
counts it and raises before python-gitlab would sleep past `sync.max_wait` or retry a
failing request more than `sync.retries` times. Before each request (python-gitlab's retries
included) the budget's gate holds it while the last answer said `RateLimit-Remaining: 0`,
until `RateLimit-Reset` (rate_limits.py): a Retry-After shorter than the reset would
otherwise send a retry that is refused again.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import requests

from devmetrics.connectors.rate_limits import RateLimitGate, WaitTooLong, header

RETRYABLE = frozenset({500, 502, 503, 504})  # what python-gitlab retries as transient
WINDOW = "api"  # GitLab's REST and GraphQL calls share the authenticated-API throttle


class RateLimited(Exception):
    """Waiting for this 429 would pass max_wait (translated to RateLimitExhausted)."""

    def __init__(self, wait: float, waited: float) -> None:
        super().__init__(f"rate limited: asked to wait {wait:.0f} s after {waited:.0f} s")
        self.wait, self.waited = wait, waited
        self.retry_at = datetime.now(UTC) + timedelta(seconds=wait)


class GaveUp(Exception):
    """A request kept failing (5xx or no connection) through every allowed retry."""

    def __init__(self, what: str, retries: int) -> None:
        super().__init__(f"{what} after {retries} retries")


def retry_wait(headers: Mapping[str, str], attempt: int) -> float:
    """The sleep python-gitlab chooses for a 429 (utils.Retry.handle_retry_on_status)."""
    if headers.get("Retry-After"):
        return float(int(headers["Retry-After"]))
    if headers.get("RateLimit-Reset"):
        return max(0.0, int(headers["RateLimit-Reset"]) - time.time())
    return 2**attempt * 0.1


class RequestBudget:
    """Counts real HTTP requests; stops a run of 429s at max_wait and of failures at retries."""

    def __init__(self, max_wait: float, retries: int) -> None:
        self.max_wait, self.retries = max_wait, retries
        self.requests = 0
        self.waited = 0.0
        self.failures = 0
        self.attempts = 0
        self.gate = RateLimitGate(max_wait)

    def before_send(self) -> None:
        """Hold a request while the window is used up; past max_wait, refuse to send it."""
        try:
            self.gate.hold(WINDOW)
        except WaitTooLong as exc:
            raise RateLimited(exc.wait, self.waited) from None

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        self.requests += 1
        self.gate.observe(WINDOW, header(headers, "ratelimit-remaining", "x-ratelimit-remaining"),
                          header(headers, "ratelimit-reset", "x-ratelimit-reset"))
        if status == 429:
            self._rate_limited(headers)
        elif status in RETRYABLE:
            self._failed(f"HTTP {status}")
        else:  # an answer: the next rate limit or outage starts a fresh budget
            self.waited, self.failures, self.attempts = 0.0, 0, 0

    def connection_failed(self, exc: Exception) -> None:
        self.requests += 1
        self._failed(f"connection failed ({type(exc).__name__})")

    def _rate_limited(self, headers: Mapping[str, str]) -> None:
        # python-gitlab sleeps for retry_wait, then the gate holds the retry until the reset.
        wait = max(retry_wait(headers, self.attempts), self.gate.wait_needed(WINDOW))
        if self.waited + wait > self.max_wait:
            raise RateLimited(wait, self.waited)
        self.waited += wait
        self.attempts += 1

    def _failed(self, what: str) -> None:
        self.failures += 1
        self.attempts += 1
        if self.failures > self.retries:
            raise GaveUp(what, self.retries)


class BudgetedSession(requests.Session):
    """The requests session python-gitlab sends every REST call through."""

    def __init__(self, budget: RequestBudget) -> None:
        super().__init__()
        self.budget = budget

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.budget.before_send()
        try:
            response = super().send(request, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            self.budget.connection_failed(exc)
            raise
        self.budget.observe(response.status_code, response.headers)
        return response


def graphql_client(budget: RequestBudget, token: str, timeout: float, ca_bundle: str | None) -> httpx.Client:
    """The httpx client for python-gitlab's GraphQL class, reporting to the same budget.

    python-gitlab only adds the token to a client it builds itself, so it is set here;
    httpx wants an SSL context (not a path) for a custom CA bundle.
    """
    verify: bool | ssl.SSLContext = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True

    def hold(request: httpx.Request) -> None:
        budget.before_send()

    def observe(response: httpx.Response) -> None:
        budget.observe(response.status_code, response.headers)

    return httpx.Client(
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        verify=verify,
        event_hooks={"request": [hold], "response": [observe]},
        transport=httpx.HTTPTransport(retries=budget.retries, verify=verify),
    )
