"""Why a figure moved: the few rows behind a worsened figure, and the command that lists all.

    week_drivers(linked, window, limit=3) -> {repo full name | "all": drivers}
    add_titles(engine, drivers) -> None          # PR and incident titles and links from the store
    explain_command(key, repo, since, until) -> str

drivers = {"pull_requests": the slowest PRs deployed (else merged) in the week with their
stage times, "failed_deployments": failed production deployments with the incidents
linked to them, "workflows": the slowest workflows by median duration}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics.metrics import Linked, Window
from devmetrics.metrics.flow import STAGES
from devmetrics.metrics.stats import clean
from devmetrics.models import Incident, PullRequest

LIMIT = 3
# comparison key -> which rows explain it
DRIVER_OF = {
    "lead_time_hours.median": "pull_requests", "cycle_time_hours.median": "pull_requests",
    "change_failure_rate": "failed_deployments", "deployment_success_rate": "failed_deployments",
    "incidents": "failed_deployments", "time_to_restore_hours.median": "failed_deployments",
    "pipeline_duration_minutes.median": "workflows", "pipeline_success_rate": "workflows",
}


def explain_command(key: str, repo: str, since: str, until: str) -> str:
    """The exact `devmetrics explain` line that lists every row behind `key` in the week."""
    target = "OWNER/NAME" if repo == "all" else repo
    return f"devmetrics explain {key.split('.')[0]} --repo {target} --since {since} --until {until}"


def week_drivers(linked: Linked, window: Window, limit: int = LIMIT) -> dict[str, dict[str, Any]]:
    names = dict(zip(linked.repositories["id"], linked.repositories["full_name"], strict=True))
    found = {name: _drivers(linked, window, names, repo_id, limit) for repo_id, name in names.items()}
    found["all"] = _drivers(linked, window, names, None, limit)
    return found


def _rows(frame: pd.DataFrame, repo_id: Any) -> pd.DataFrame:
    return frame if repo_id is None else frame[frame["repo_id"] == repo_id]


def _drivers(linked: Linked, window: Window, names: Mapping[Any, str], repo_id: Any, limit: int) -> dict[str, Any]:
    return {"pull_requests": slowest_pull_requests(_rows(linked.pull_requests, repo_id), window, names, limit),
            "failed_deployments": failed_deployments(linked, repo_id, window, names, limit),
            "workflows": slowest_workflows(_rows(linked.pipeline_runs, repo_id), window, limit)}


def slowest_pull_requests(prs: pd.DataFrame, window: Window, names: Mapping[Any, str],
                          limit: int) -> list[dict[str, Any]]:
    """The PRs with the longest lead time deployed in the week (cycle time when none was)."""
    deployed = prs[prs["counted"] & window.contains(prs["deployed_at"])]
    measure = "lead_time_hours"
    if deployed.empty:
        deployed, measure = prs[prs["counted"] & window.contains(prs["merged_at"])], "cycle_time_hours"
    top = deployed.sort_values([measure, "number"], ascending=[False, True]).head(limit)
    return [{"repo": names.get(row["repo_id"]), "number": int(row["number"]), "measure": measure,
             "lead_time_hours": clean(row["lead_time_hours"]), "cycle_time_hours": clean(row["cycle_time_hours"]),
             **{f"{stage}_hours": clean(row[stage]) for stage in STAGES}} for _, row in top.iterrows()]


def failed_deployments(linked: Linked, repo_id: Any, window: Window, names: Mapping[Any, str],
                       limit: int) -> list[dict[str, Any]]:
    """Production deployments of the week that failed or were linked to a failure, with incidents."""
    deps = _rows(linked.deployments, repo_id)
    inside = window.contains(deps["finished_at"])
    bad = deps[inside & (deps["failed"] | deps["failed_status"])].sort_values("finished_at").head(limit)
    incidents = linked.incidents
    found = []
    for _, dep in bad.iterrows():
        mine = incidents[incidents["deployment"] == dep["id"]]
        found.append({"repo": names.get(dep["repo_id"]), "deployment": str(dep["deployment_id"]),
                      "sha": None if pd.isna(dep["sha"]) else str(dep["sha"])[:12],
                      "finished_at": dep["finished_at"].isoformat(), "status": dep["status"],
                      "reverted": bool(dep["reverted"]),
                      "incidents": [{"repo_id": int(i["repo_id"]), "incident_id": str(i["incident_id"]),
                                     "source": i["source"]} for _, i in mine.iterrows()]})
    return found


def slowest_workflows(runs: pd.DataFrame, window: Window, limit: int) -> list[dict[str, Any]]:
    inside = runs[window.contains(runs["finished_at"])]
    if inside.empty:
        return []
    grouped = inside.groupby("name", observed=True).agg(
        median_minutes=("minutes", "median"), runs=("minutes", "size"), success_rate=("succeeded", "mean"))
    top = grouped.sort_values(["median_minutes"], ascending=False).head(limit)
    return [{"workflow": str(name), "median_minutes": clean(row["median_minutes"]), "runs": int(row["runs"]),
             "success_rate": clean(row["success_rate"])} for name, row in top.iterrows()]


def add_titles(engine: Engine, drivers: Mapping[str, Mapping[str, Any]],
               repo_ids: Mapping[str, int]) -> None:
    """Fill in titles and links of the driver PRs and incidents (the linked frames have none)."""
    prs = {(repo_ids.get(p["repo"]), p["number"]) for d in drivers.values() for p in d["pull_requests"]}
    incidents = {(i["repo_id"], i["source"], i["incident_id"]) for d in drivers.values()
                 for dep in d["failed_deployments"] for i in dep["incidents"]}
    pr_info = _pr_titles(engine, prs)
    incident_info = _incident_titles(engine, incidents)
    for found in drivers.values():
        for pr in found["pull_requests"]:
            pr.update(pr_info.get((repo_ids.get(pr["repo"]), pr["number"]), {"title": None, "url": None}))
        for dep in found["failed_deployments"]:
            for incident in dep["incidents"]:
                key = (incident.pop("repo_id"), incident.pop("source"), incident["incident_id"])
                incident.update(incident_info.get(key, {"title": None, "url": None}))


def _pr_titles(engine: Engine, keys: set[tuple[Any, int]]) -> dict[tuple[Any, int], dict[str, Any]]:
    if not keys:
        return {}
    table = PullRequest.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.repo_id, table.c.number, table.c.title, table.c.url).where(
        table.c.repo_id.in_({repo for repo, _ in keys}), table.c.number.in_({n for _, n in keys}))
    with engine.connect() as conn:
        return {(row.repo_id, row.number): {"title": row.title, "url": row.url} for row in conn.execute(query)}


def _incident_titles(engine: Engine, keys: set[tuple[int, str, str]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    if not keys:
        return {}
    table = Incident.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.repo_id, table.c.source, table.c.incident_id, table.c.title, table.c.url).where(
        table.c.repo_id.in_({k[0] for k in keys}), table.c.incident_id.in_({k[2] for k in keys}))
    with engine.connect() as conn:
        return {(row.repo_id, row.source, row.incident_id): {"title": row.title, "url": row.url}
                for row in conn.execute(query)}
