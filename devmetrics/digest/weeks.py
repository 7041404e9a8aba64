"""ISO weeks in the report timezone: parsing `2026-W47`, labels, the last full week, trend weeks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from devmetrics.clock import now_utc
from devmetrics.errors import ConfigError

TREND_WEEKS = 12  # the trend line: the week and the 11 before it
LEVEL_WEEKS = 4  # DORA levels: the week and the 3 before it (one week's handful flips a level)


def parse_week(text: str) -> date:
    """The Monday of ISO week "2026-W47"; ConfigError (exit 2) for anything else."""
    try:
        year, number = text.strip().upper().split("-W")
        return date.fromisocalendar(int(year), int(number), 1)
    except ValueError:
        raise ConfigError(f"--week: {text!r} is not an ISO week like 2026-W47") from None


def week_label(monday: date) -> str:
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}"


def last_full_week(timezone: str, now: datetime | None = None) -> date:
    """The Monday of the last complete ISO week, read in the report timezone."""
    today = (now or now_utc()).astimezone(ZoneInfo(timezone)).date()
    return today - timedelta(days=today.weekday() + 7)


def trend_mondays(week: date, count: int = TREND_WEEKS) -> list[date]:
    """The Mondays of the `count` weeks that end with `week`, oldest first."""
    return [week - timedelta(weeks=back) for back in range(count - 1, -1, -1)]
