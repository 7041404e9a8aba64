"""What the noise tests need of one week, taken from the same linked rows as the report.

    week_samples(linked, window) -> {repo full name | "all": {comparison key: sample}}

A sample is a count (deployments, incidents, PRs merged), `(events, trials)` for a rate,
or the list of values behind a median. The masks are the report's own (metrics/delivery.py,
flow.py, pipelines.py), so each sample's size is the n the report prints.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from devmetrics.metrics import Linked, Window


def week_samples(linked: Linked, window: Window) -> dict[str, dict[str, Any]]:
    """Samples per repo (by full name) and over all repos ("all") for `window`."""
    names = dict(zip(linked.repositories["id"], linked.repositories["full_name"], strict=True))
    found = {name: _samples(linked, window, repo_id) for repo_id, name in names.items()}
    found["all"] = _samples(linked, window, None)
    return found


def _rows(frame: pd.DataFrame, repo_id: Any) -> pd.DataFrame:
    return frame if repo_id is None else frame[frame["repo_id"] == repo_id]


def _values(series: pd.Series) -> list[float]:
    return [float(value) for value in series.dropna()]


def _samples(linked: Linked, window: Window, repo_id: Any) -> dict[str, Any]:
    return (_deployment_samples(_rows(linked.deployments, repo_id), window)
            | _incident_samples(_rows(linked.incidents, repo_id), window)
            | _flow_samples(_rows(linked.pull_requests, repo_id), window)
            | _pipeline_samples(_rows(linked.pipeline_runs, repo_id), window))


def _deployment_samples(prod: pd.DataFrame, window: Window) -> dict[str, Any]:
    inside = window.contains(prod["finished_at"])
    done = prod["successful"] & inside
    finished = inside & (prod["successful"] | prod["failed_status"])
    deployments = int(done.sum())
    return {"deployments": deployments,
            "deployment_success_rate": (deployments, int(finished.sum())),
            "change_failure_rate": (int((done & prod["failed"]).sum()), deployments)}


def _incident_samples(incidents: pd.DataFrame, window: Window) -> dict[str, Any]:
    resolved = window.contains(incidents["resolved_at"])
    return {"incidents": int(window.contains(incidents["created_at"]).sum()),
            "time_to_restore_hours.median": _values(incidents.loc[resolved, "restore_hours"])}


def _flow_samples(prs: pd.DataFrame, window: Window) -> dict[str, Any]:
    merged = prs["counted"] & window.contains(prs["merged_at"])
    deployed = prs["counted"] & window.contains(prs["deployed_at"])
    return {"pull_requests_merged": int(merged.sum()),
            "lead_time_hours.median": _values(prs.loc[deployed, "lead_time_hours"]),
            "cycle_time_hours.median": _values(prs.loc[merged, "cycle_time_hours"])}


def _pipeline_samples(runs: pd.DataFrame, window: Window) -> dict[str, Any]:
    inside = window.contains(runs["finished_at"])
    return {"pipeline_duration_minutes.median": _values(runs.loc[inside, "minutes"]),
            "pipeline_success_rate": (int((inside & runs["succeeded"]).sum()), int(inside.sum()))}
