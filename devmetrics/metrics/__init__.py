"""Pure metric functions over pandas DataFrames (metrics.md §2-§5, §7).

Nothing here reads a database or the network: `devmetrics.report` loads the record tables
into frames (one column per model field, times as tz-aware UTC) and calls these functions.
The work happens in two steps so every number can be explained:

1. `summary.link(frames, settings)` works out, once and for every row, which deployments
   count as production, which deployment shipped each PR, which deployment each incident
   belongs to, and which deployments failed or were rework.
2. `summary.summarise(linked, window, per_repo)` counts and measures those rows inside one
   window, grouped per repo or over all repos, with pandas groupby (no loop per row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

DEFAULT_PRODUCTION_PATTERN = r"(?i)^prod(uction)?$"
SIGNALS = ("environments", "workflow", "releases", "merges")


@dataclass(frozen=True)
class ReportSettings:
    """What the metrics need from the config; keys of the mappings are repo full names."""

    timezone: str = "UTC"
    production_pattern: str = DEFAULT_PRODUCTION_PATTERN
    production_patterns: Mapping[str, str] = field(default_factory=dict)
    # Overrides Repository.deployment_signal (environments|workflow|releases|merges|auto).
    deployment_signals: Mapping[str, str] = field(default_factory=dict)
    incident_window_hours: float = 72.0
    hotfix_labels: tuple[str, ...] = ("hotfix",)
    bots: tuple[str, ...] = ()
    levels: str = "dora-2023"
    stale_after_days: float = 14.0  # an open PR without activity this long is stale


def midnight(day: pd.Timestamp, timezone: Any) -> pd.Timestamp:
    """The start of a local day; where a DST change skips midnight, the first hour after."""
    return day.tz_localize(timezone, nonexistent="shift_forward", ambiguous=False)


@dataclass(frozen=True)
class Window:
    """`[since, until)`, both midnight in the report timezone."""

    since: pd.Timestamp
    until: pd.Timestamp

    @classmethod
    def from_dates(cls, since: date, until: date, timezone: str = "UTC") -> Window:
        return cls(
            midnight(pd.Timestamp(since.isoformat()), timezone), midnight(pd.Timestamp(until.isoformat()), timezone)
        )

    @property
    def days(self) -> int:
        """Calendar days, so a window across a DST change still has whole days."""
        return (self.until.date() - self.since.date()).days

    @property
    def first_day(self) -> pd.Timestamp:
        """The local calendar day `since` falls on, as a naive midnight."""
        return self.since.tz_localize(None).normalize()

    def contains(self, times: pd.Series) -> pd.Series:
        return (times >= self.since) & (times < self.until)


@dataclass(frozen=True)
class Frames:
    """The record tables as frames; columns are the model field names."""

    repositories: pd.DataFrame
    pull_requests: pd.DataFrame
    deployments: pd.DataFrame
    deployment_commits: pd.DataFrame
    pipeline_runs: pd.DataFrame
    incidents: pd.DataFrame


@dataclass(frozen=True)
class Linked:
    """The rows behind every metric, linked once (see `summary.link`)."""

    repositories: pd.DataFrame
    deployments: pd.DataFrame
    pull_requests: pd.DataFrame
    incidents: pd.DataFrame
    pipeline_runs: pd.DataFrame
    open_pull_requests: pd.DataFrame  # candidates for work in progress (metrics/wip.py)
