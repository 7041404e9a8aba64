"""Build small record frames by hand for the metric tests (columns = model fields)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from devmetrics.metrics import Frames, ReportSettings, Window
from devmetrics.metrics.summary import link, summarise
from devmetrics.report import COLUMNS as READ_COLUMNS

# The columns the report reads, plus a few that explain-style tests may want.
COLUMNS = {kind: list(columns) for kind, (_, columns) in READ_COLUMNS.items()}
COLUMNS["pull_requests"] += ["title", "head_branch"]
COLUMNS["deployment_commits"] += ["id"]
COLUMNS["pipeline_runs"] += ["run_id"]
DEFAULTS: dict[str, dict[str, Any]] = {
    "repositories": {
        "forge": "github",
        "host": "github.com",
        "default_branch": "main",
        "deployment_signal": "environments",
    },
    "pull_requests": {
        "title": "",
        "author": "alice",
        "author_is_bot": False,
        "draft": False,
        "base_branch": "main",
        "labels": [],
        "reverts_number": None,
    },
    "deployments": {"source": "environments", "environment": "production", "status": "success"},
    "deployment_commits": {"source": "environments"},
    "pipeline_runs": {"name": "ci", "duration_seconds": None},
    "incidents": {"source": "issues", "linked_sha": None, "linked_pr": None},
}


def t(text: str) -> pd.Timestamp:
    """A UTC time from 'YYYY-MM-DD HH:MM'."""
    return pd.Timestamp(text, tz="UTC")


def frame(kind: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows with defaults filled in and numbered ids, as the store would return them."""
    filled = []
    for i, row in enumerate(rows, start=1):
        base = {"id": i, "repo_id": 1} | DEFAULTS[kind] | row
        filled.append({column: base.get(column) for column in COLUMNS[kind]})
    out = pd.DataFrame(filled, columns=COLUMNS[kind])
    for column in out.columns:
        if column.endswith("_at"):
            out[column] = pd.to_datetime(out[column], utc=True)
    return out


def frames(**tables: list[dict[str, Any]]) -> Frames:
    repos = tables.pop("repositories", [{"id": 1, "full_name": "acme/api"}])
    return Frames(
        frame("repositories", repos),
        **{kind: frame(kind, tables.get(kind, [])) for kind in COLUMNS if kind != "repositories"},
    )


def report(
    since: str = "2026-11-02",
    until: str = "2026-11-30",
    settings: ReportSettings | None = None,
    per_repo: bool = True,
    **tables: list[dict[str, Any]],
) -> dict[Any, dict[str, Any]]:
    """The summarised metrics of the scenario for the window."""
    settings = settings or ReportSettings()
    window = Window.from_dates(date.fromisoformat(since), date.fromisoformat(until), settings.timezone)
    return summarise(link(frames(**tables), settings), window, per_repo)
