"""Reading the sandbox's timeline: was any request sent while its rate-limit budget was 0?"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from devmetrics.sandbox.server import Exchange

GITHUB_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-reset")
GITLAB_HEADERS = ("ratelimit-remaining", "ratelimit-reset")


def github_budget(exchange: Exchange) -> str:
    return "graphql" if exchange.target.split("?")[0].endswith("/graphql") else "core"


def early_requests(timeline: Sequence[Exchange], names: tuple[str, str] = GITHUB_HEADERS,
                   budget: Callable[[Exchange], str] = lambda _: "api") -> list[str]:
    """Requests that arrived after an answer of their budget said 0 remaining, before its reset.

    Each is named with how early it came; an empty list means the budget was honoured.
    """
    remaining_header, reset_header = names
    empty_until: dict[str, int] = {}
    early = []
    for exchange in sorted(timeline, key=lambda e: e.at):
        name = budget(exchange)
        reset = empty_until.get(name)
        if reset is not None and exchange.at < reset:
            early.append(f"{exchange.method} {exchange.target} {reset - exchange.at:.2f} s before the reset")
        remaining = exchange.headers.get(remaining_header)
        if remaining == "0":
            empty_until[name] = int(exchange.headers[reset_header])
        elif remaining is not None:
            empty_until.pop(name, None)
    return early
