"""Link the record frames once, then summarise them for any window, per repo or overall."""

from __future__ import annotations

from typing import Any

import pandas as pd

from devmetrics.metrics import Frames, Linked, ReportSettings, Window
from devmetrics.metrics.delivery import (
    commit_shipments,
    deployment_signals,
    flag_deployments,
    has_no_range,
    link_incidents,
    production_deployments,
    summarise_deployments,
    summarise_incidents,
)
from devmetrics.metrics.flow import link_pull_requests, merged_into_default, summarise_flow
from devmetrics.metrics.pipelines import completed_runs, summarise_pipelines
from devmetrics.metrics.stats import Summary, as_distribution, clean, group_keys, utc_times

# Counts that are 0, not unknown, when a repo has no rows (deployments stay None: no data
# from a deployment signal means the number is unknown).
ZERO_WHEN_EMPTY = ("incidents", "pull_requests_merged")
DISTRIBUTION = ["median", "p90", "n"]


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """UTC nanosecond times and integer repo ids, so joins and merge_asof agree on dtypes."""
    frame = utc_times(frame)
    if "repo_id" in frame.columns:
        frame["repo_id"] = frame["repo_id"].astype("int64")
    return frame


def link(frames: Frames, settings: ReportSettings) -> Linked:
    """Production deployments, PR -> deployment, incident -> deployment, failure flags."""
    repos = frames.repositories
    commits = prepare(frames.deployment_commits)
    deployments = prepare(frames.deployments)
    signals = deployment_signals(repos, deployments, settings)
    prod = production_deployments(deployments, repos, signals, settings)
    prod["no_range"] = has_no_range(prod[prod["successful"]], commits)
    prod["no_range"] = prod["no_range"].fillna(False).astype(bool)
    successful = prod[prod["successful"]]
    shipments = commit_shipments(commits, successful)
    prs = merged_into_default(prepare(frames.pull_requests), repos, settings.bots)
    prs = link_pull_requests(prs, prod, shipments)
    incidents = link_incidents(
        prepare(frames.incidents),
        successful,
        with_prs(shipments, prs),
        prs,
        settings.incident_window_hours,
    )
    return Linked(
        repositories=repos.assign(deployment_signal=repos["id"].map(signals)),
        deployments=flag_deployments(prod, incidents, prs, settings.hotfix_labels),
        pull_requests=prs,
        incidents=incidents,
        pipeline_runs=completed_runs(prepare(frames.pipeline_runs)),
    )


def with_prs(shipments: pd.DataFrame, prs: pd.DataFrame) -> pd.DataFrame:
    """Shipments plus each linked PR's merge commit (also those linked by time)."""
    merged = prs.loc[
        prs["deployment"].notna() & prs["merge_commit_sha"].notna(),
        ["repo_id", "merge_commit_sha", "deployment", "deployed_at"],
    ]
    merged = merged.rename(columns={"merge_commit_sha": "sha"})
    return pd.concat([shipments, merged], ignore_index=True).drop_duplicates(["repo_id", "sha"])


def summarise_all(linked: Linked, window: Window, per_repo: bool) -> Summary:
    """Every metric of metrics.md §3-§5 per group (repo id, or "all")."""
    parts: Summary = {}
    frames = [
        (summarise_deployments, linked.deployments),
        (summarise_incidents, linked.incidents),
        (summarise_flow, linked.pull_requests),
        (summarise_pipelines, linked.pipeline_runs),
    ]
    for summarise_part, frame in frames:
        parts |= summarise_part(frame, window, group_keys(frame, per_repo))
    return parts


def summarise(linked: Linked, window: Window, per_repo: bool = True) -> dict[Any, dict[str, Any]]:
    """group -> {metric: value}, JSON-ready (None for no data)."""
    groups = list(linked.repositories["id"]) if per_repo else ["all"]
    rows: dict[Any, dict[str, Any]] = {group: {} for group in groups}
    for name, part in summarise_all(linked, window, per_repo).items():
        for group, value in zip(groups, values(name, part, groups), strict=True):
            rows[group][name] = value
    for row in rows.values():
        for name in ZERO_WHEN_EMPTY:
            row[name] = row[name] or 0
        row["incidents_per_deploy"] = (
            row["incidents"] / row["deployments"] if row["deployments"] else None
        )
    return rows


def values(name: str, part: pd.Series | pd.DataFrame, groups: list[Any]) -> list[Any]:
    """The metric's value for each group, in order."""
    if isinstance(part, pd.Series):
        return [clean(value) for value in part.reindex(groups).tolist()]
    if name == "pipelines":
        return per_workflow(part, groups)
    table = part.reindex(groups)
    if list(part.columns) == DISTRIBUTION:
        return [as_distribution(row) for _, row in table.iterrows()]
    return [medians(row) for _, row in table.iterrows()]


def medians(row: pd.Series) -> dict[str, Any] | None:
    """Stage medians; None when the group has none."""
    found = {key: clean(value) for key, value in row.items()}
    return found if any(value is not None for value in found.values()) else None


def per_workflow(part: pd.DataFrame, groups: list[Any]) -> list[Any]:
    """group -> {workflow name: {median, p90, n, success_rate}} (None when no runs)."""
    found: dict[Any, dict[str, Any]] = {}
    for (group, name), row in part.iterrows():
        entry = as_distribution(row) or {"median": None, "p90": None, "n": 0}
        found.setdefault(group, {})[name] = entry | {"success_rate": clean(row["success_rate"])}
    return [found.get(group) for group in groups]
