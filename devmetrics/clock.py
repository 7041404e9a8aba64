"""The one clock that sync, report, digest and the dependency cache read.

`DEVMETRICS_NOW` (an ISO datetime such as `2026-11-23T12:00:00Z`; `devmetrics --now` sets it)
fixes "now" for reproducible reports and for the test suite; without it, the system clock.
Waits on the forge's rate-limit reset stay on the system clock: those compare with the
forge's own time, not with the window a report covers.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

NOW_ENV = "DEVMETRICS_NOW"


def parse_now(value: str) -> datetime:
    """An ISO datetime (a trailing Z or an offset; naive means UTC), as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO datetime like 2026-11-23T12:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def now_utc() -> datetime:
    """The current time, UTC-aware: `DEVMETRICS_NOW` when set, else the system clock."""
    fixed = os.environ.get(NOW_ENV)
    return parse_now(fixed) if fixed else datetime.now(UTC)
