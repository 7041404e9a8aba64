"""Link the record frames once, then summarise them for any window, per repo or overall."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    shipped_shas,
    summarise_deployments,
    summarise_incidents,
)
from devmetrics.metrics.flow import link_pull_requests, merged_into_default, summarise_flow
from devmetrics.metrics.keys import deployment_keys, sha_keys
from devmetrics.metrics.pipelines import completed_runs, summarise_pipelines
from devmetrics.metrics.stats import (
    DISTRIBUTION_COLUMNS,
    Summary,
    as_distribution,
    clean,
    group_keys,
    utc_times,
)
from devmetrics.metrics.wip import summarise_work_in_progress, work_in_progress

# Counts that are 0, not unknown, when a repo has no rows (deployments stay None: no data
# from a deployment signal means the number is unknown).
ZERO_WHEN_EMPTY = (
    "incidents",
    "pull_requests_merged",
    "open_pull_requests",
    "stale_pull_requests",
    "waiting_for_review",
)
COUNTS = ("deployments", *ZERO_WHEN_EMPTY)
RUN_COLUMNS = ["repo_id", "name", "conclusion", "started_at", "finished_at", "duration_seconds"]


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """UTC nanosecond times and integer repo ids, so joins and merge_asof agree on dtypes."""
    frame = utc_times(frame)
    if "repo_id" in frame.columns and frame["repo_id"].dtype != "int64":
        frame = frame.assign(repo_id=frame["repo_id"].astype("int64"))
    return frame


@dataclass(frozen=True)
class Shipping:
    """The deployment side, linked before pull requests are needed (see `link`)."""

    repositories: pd.DataFrame
    signals: pd.Series
    deployments: pd.DataFrame  # production deployments, with outcome and `no_range`
    commits: pd.DataFrame
    shipments: pd.DataFrame  # sha_key -> first successful deployment that shipped it


def link_deployments(
    repos: pd.DataFrame, deployments: pd.DataFrame, commits: pd.DataFrame, settings: ReportSettings
) -> Shipping:
    """Production deployments of each repo's signal and the commits each one shipped."""
    deployments, commits = prepare(deployments), prepare(commits)
    deployment_sha, commit_sha = sha_keys(
        (deployments["repo_id"], deployments["sha"]), (commits["repo_id"], commits["sha"])
    )
    deployment_key, commit_key = deployment_keys(deployments, commits)
    deployments = deployments.assign(sha_key=deployment_sha, deployment_key=deployment_key)
    commits = commits.assign(sha_key=commit_sha, deployment_key=commit_key)
    signals = deployment_signals(repos, deployments, settings)
    prod = production_deployments(deployments, repos, signals, settings)
    no_range = has_no_range(prod[prod["successful"]], commits)
    prod = prod.assign(no_range=no_range.reindex(prod.index, fill_value=False).astype(bool))
    shipments = commit_shipments(commits, prod[prod["successful"]])
    return Shipping(repos, signals, prod, commits, shipments)


def link_changes(
    shipping: Shipping, pull_requests: pd.DataFrame, incidents: pd.DataFrame, settings: ReportSettings
) -> Linked:
    """PR -> shipping deployment, incident -> deployment, failure and rework flags."""
    prs, incidents = prepare(pull_requests), prepare(incidents)
    pr_sha, incident_sha = sha_keys(
        (prs["repo_id"], prs["merge_commit_sha"]), (incidents["repo_id"], incidents["linked_sha"])
    )
    prod, commits = shipping.deployments, shipping.commits
    successful = prod[prod["successful"]]
    wip = work_in_progress(prs, shipping.repositories, settings.bots, settings.stale_after_days)
    prs = merged_into_default(prs.assign(sha_key=pr_sha), shipping.repositories, settings.bots)
    prs = link_pull_requests(prs, prod, shipping.shipments)
    texts = [
        commits[["sha_key", "sha"]],
        successful[["sha_key", "sha"]],
        prs[["sha_key", "merge_commit_sha"]].rename(columns={"merge_commit_sha": "sha"}),
    ]
    incidents = incidents.assign(sha_key=incident_sha)
    shipped = shipped_shas(shipping.shipments, prs, texts, incidents)
    incidents = link_incidents(incidents, successful, shipped, prs, settings.incident_window_hours)
    repos = shipping.repositories
    return Linked(
        repositories=repos.assign(deployment_signal=repos["id"].map(shipping.signals)),
        deployments=flag_deployments(prod, incidents, prs, settings.hotfix_labels),
        pull_requests=prs,
        incidents=incidents,
        pipeline_runs=completed_runs(prepare(pd.DataFrame(columns=RUN_COLUMNS))),
        open_pull_requests=wip,
    )


def link(frames: Frames, settings: ReportSettings) -> Linked:
    """Production deployments, PR -> deployment, incident -> deployment, failure flags."""
    shipping = link_deployments(frames.repositories, frames.deployments, frames.deployment_commits, settings)
    linked = link_changes(shipping, frames.pull_requests, frames.incidents, settings)
    return replace(linked, pipeline_runs=completed_runs(prepare(frames.pipeline_runs)))


def summarise_all(linked: Linked, window: Window, per_repo: bool) -> Summary:
    """Every metric of metrics.md §3-§5 per group (repo id, or "all")."""
    parts: Summary = {}
    frames = [
        (summarise_deployments, linked.deployments),
        (summarise_incidents, linked.incidents),
        (summarise_flow, linked.pull_requests),
        (summarise_pipelines, linked.pipeline_runs),
        (summarise_work_in_progress, linked.open_pull_requests),
    ]
    for summarise_part, frame in frames:
        parts |= summarise_part(frame, window, group_keys(frame, per_repo))
    return parts


def summarise(linked: Linked, window: Window, per_repo: bool = True) -> dict[Any, dict[str, Any]]:
    """repo id (or "all") -> {metric: value}, JSON-ready (None for no data)."""
    groups = list(linked.repositories["id"]) if per_repo else [0]
    rows: dict[Any, dict[str, Any]] = {group: {} for group in groups}
    for name, part in summarise_all(linked, window, per_repo).items():
        for group, value in zip(groups, values(name, part, groups), strict=True):
            rows[group][name] = value
    for row in rows.values():
        for name in ZERO_WHEN_EMPTY:
            row[name] = row[name] or 0
        for name in COUNTS:  # a reindex made them floats
            row[name] = None if row[name] is None else int(row[name])
        row["incidents_per_deploy"] = row["incidents"] / row["deployments"] if row["deployments"] else None
    return rows if per_repo else {"all": rows[0]}


def values(name: str, part: pd.Series | pd.DataFrame, groups: list[Any]) -> list[Any]:
    """The metric's value for each group, in order."""
    if isinstance(part, pd.Series):
        return [None if value != value else value for value in part.reindex(groups).tolist()]
    if name == "pipelines":
        return per_workflow(part, groups)
    table = part.reindex(groups)
    if list(part.columns) == DISTRIBUTION_COLUMNS:
        return [as_distribution(row) for row in table.to_dict("records")]
    return [medians(row) for row in table.to_dict("records")]


def medians(row: dict[str, Any]) -> dict[str, Any] | None:
    """Stage medians; None when the group has none."""
    found = {key: clean(value) for key, value in row.items()}
    return found if any(value is not None for value in found.values()) else None


def per_workflow(part: pd.DataFrame, groups: list[Any]) -> list[Any]:
    """group -> {workflow name: {median, p90, mean, median_ci95, n, success_rate}} (None when no runs)."""
    found: dict[Any, dict[str, Any]] = {}
    for (group, name), row in zip(part.index, part.to_dict("records"), strict=True):
        entry = as_distribution(row)
        found.setdefault(group, {})[name] = entry | {"success_rate": clean(row["success_rate"])}
    return [found.get(group) for group in groups]
