"""The report window and its periods in the report timezone (metrics.md §2)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from devmetrics.metrics import Window
from devmetrics.report import periods


def test_window_is_half_open_in_the_report_timezone() -> None:
    window = Window.from_dates(date(2026, 11, 2), date(2026, 11, 9), "Europe/Berlin")
    times = pd.Series(pd.to_datetime(["2026-11-01 23:00", "2026-11-08 22:59", "2026-11-08 23:00"], utc=True))
    # Berlin is UTC+1: the window is [Nov 1 23:00 UTC, Nov 8 23:00 UTC)
    assert window.contains(times).tolist() == [True, True, False]
    assert window.days == 7


def test_a_midnight_skipped_by_daylight_saving_starts_at_the_next_hour() -> None:
    # Chile moves its clocks from 00:00 to 01:00 on 2026-09-06: that day has no midnight
    window = Window.from_dates(date(2026, 9, 6), date(2026, 9, 13), "America/Santiago")
    assert window.since == pd.Timestamp("2026-09-06 01:00", tz="America/Santiago")
    assert window.days == 7  # calendar days, although the window is 167 hours long
    assert [label for label, _ in periods(window, "week")] == ["2026-W36", "2026-W37"]


def test_week_periods_are_iso_weeks_clipped_to_the_window() -> None:
    window = Window.from_dates(date(2026, 12, 30), date(2027, 1, 6))  # Wed .. Wed
    found = [
        (label, part.since.date().isoformat(), part.until.date().isoformat()) for label, part in periods(window, "week")
    ]
    # Mon Dec 28 2026 starts ISO week 53 of 2026; Mon Jan 4 2027 week 1 of 2027
    assert found == [("2026-W53", "2026-12-30", "2027-01-04"), ("2027-W01", "2027-01-04", "2027-01-06")]
