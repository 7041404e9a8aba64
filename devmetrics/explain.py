"""The rows behind a metric for one repo: which deployments, PRs, incidents and runs.

    explain(engine, settings, metric, repo, since, until) -> list[dict]
    render_explain(rows, fmt, metric) -> str        # table | json | csv

Rows come from the same linked frames as the report, so they add up to its numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from devmetrics.errors import DevmetricsError
from devmetrics.metrics import Linked, ReportSettings, Window
from devmetrics.metrics.delivery import detected
from devmetrics.metrics.flow import STAGES
from devmetrics.metrics.stats import clean
from devmetrics.metrics.summary import link
from devmetrics.report import load_frames, select_repos
from devmetrics.terminal import Column, Screen, finish, fitted_tables, print_tables

FAMILIES = {
    "deployments": (
        "deployments",
        "deployment_frequency_per_week",
        "deployment_days_per_week_median",
        "deployment_success_rate",
        "change_failure_rate",
        "rework_rate",
    ),
    "incidents": (
        "incidents",
        "incidents_per_deploy",
        "incident_link_coverage",
        "time_to_restore_hours",
        "failed_deployment_recovery_hours",
    ),
    "detection": ("time_to_detect_hours",),
    "pull_requests": (
        "pull_requests_merged",
        "lead_time_hours",
        "lead_time_coverage",
        "cycle_time_hours",
        "cycle_time_breakdown_hours",
    ),
    "pipelines": ("pipeline_duration_minutes", "pipeline_success_rate", "pipelines"),
}
FAMILY_OF = {metric: family for family, metrics in FAMILIES.items() for metric in metrics}


class UnknownMetric(DevmetricsError):
    exit_code = 2


def explain(
    engine: Engine, settings: ReportSettings, metric: str, repo: str, since: date, until: date
) -> list[dict[str, Any]]:
    """The rows behind `metric` for the repo named `repo` in [since, until).

    `time-to-detect` names `time_to_detect_hours`: dashes read as underscores, `_hours` optional.
    """
    family = family_of(metric)
    if family is None:
        known = ", ".join(sorted(FAMILY_OF))
        raise UnknownMetric(f"unknown metric {metric!r}; explain one of: {known}")
    repos = select_repos(engine, [repo])
    if repos.empty:
        raise DevmetricsError(f"no repo named {repo!r} in the database (run devmetrics sync)")
    window = Window.from_dates(since, until, settings.timezone)
    linked = link(load_frames(engine, list(repos["id"]), window), settings)
    return ROWS[family](linked, window)


def family_of(metric: str) -> str | None:
    name = metric.replace("-", "_")
    return FAMILY_OF.get(name) or FAMILY_OF.get(f"{name}_hours")


def local(times: pd.Series, window: Window) -> pd.Series:
    """Times as ISO text in the report timezone (None when missing)."""
    text = times.dt.tz_convert(window.since.tz).dt.strftime("%Y-%m-%d %H:%M")
    return text.astype(object).where(times.notna(), None)


def forge_ids(linked: Linked, ids: pd.Series) -> pd.Series:
    """Store ids of deployments -> the forge's deployment ids."""
    table = linked.deployments.set_index("id")["deployment_id"].astype(object)
    return ids.map(table).astype(object).where(ids.notna(), None)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{key: clean(value) for key, value in row.items()} for row in frame.to_dict("records")]


def deployment_rows(linked: Linked, window: Window) -> list[dict[str, Any]]:
    """Production deployments finished in the window, with outcome, failure and rework."""
    deps = linked.deployments
    deps = deps[window.contains(deps["finished_at"])].sort_values("finished_at")
    outcome = deps["successful"].map({True: "success"}).where(deps["successful"])
    outcome = outcome.fillna(deps["failed_status"].map({True: "failed", False: "not finished"}))
    return records(
        pd.DataFrame(
            {
                "deployment": deps["deployment_id"],
                "source": deps["source"],
                "environment": deps["environment"],
                "sha": deps["sha"].astype(object).str[:12],
                "finished_at": local(deps["finished_at"], window),
                "status": deps["status"],
                "counted_as": outcome,
                "incidents_linked": deps["incidents_linked"].astype(int),
                "reverted": deps["reverted"],
                "change_failure": deps["failed"],
                "rework": deps["rework"],
            }
        )
    )


def incident_rows(linked: Linked, window: Window) -> list[dict[str, Any]]:
    """Incidents created or resolved in the window, and the deployment each is linked to."""
    found = linked.incidents
    found = found[window.contains(found["created_at"]) | window.contains(found["resolved_at"])]
    found = found.sort_values("created_at")
    return records(
        pd.DataFrame(
            {
                "incident": found["incident_id"],
                "created_at": local(found["created_at"], window),
                "resolved_at": local(found["resolved_at"], window),
                "restore_hours": found["restore_hours"],
                "linked_by": found["link"],
                "deployment": forge_ids(linked, found["deployment"]),
                "deployed_at": local(found["deployed_at"], window),
                "recovery_hours": found["recovery_hours"],
            }
        )
    )


def detection_rows(linked: Linked, window: Window) -> list[dict[str, Any]]:
    """Incidents created in the window and linked to a deployment; `counted` is false for one
    opened before its (explicitly linked) deployment finished."""
    found = linked.incidents
    found = found[window.contains(found["created_at"]) & found["deployment"].notna()]
    found = found.sort_values("created_at")
    return records(
        pd.DataFrame(
            {
                "incident": found["incident_id"],
                "created_at": local(found["created_at"], window),
                "linked_by": found["link"],
                "deployment": forge_ids(linked, found["deployment"]),
                "deployed_at": local(found["deployed_at"], window),
                "detect_hours": found["detect_hours"],
                "counted": detected(found, window),
            }
        )
    )


def pull_request_rows(linked: Linked, window: Window) -> list[dict[str, Any]]:
    """PRs merged or deployed in the window, their stage times, and why one is left out."""
    prs = linked.pull_requests
    prs = prs[window.contains(prs["merged_at"]) | window.contains(prs["deployed_at"])]
    prs = prs.sort_values("merged_at")
    stages = prs[list(STAGES)].rename(columns={s: f"{s}_hours" for s in STAGES})
    return records(
        pd.DataFrame(
            {
                "pr": prs["number"],
                "author": prs["author"],
                "counted": prs["counted"],
                "merged_at": local(prs["merged_at"], window),
                "deployment": forge_ids(linked, prs["deployment"]),
                "linked_by": prs["link"],
                "deployed_at": local(prs["deployed_at"], window),
                "cycle_time_hours": prs["cycle_time_hours"],
                "lead_time_hours": prs["lead_time_hours"],
            }
        ).join(stages)
    )


def pipeline_rows(linked: Linked, window: Window) -> list[dict[str, Any]]:
    """Completed runs (success or failure) finished in the window."""
    runs = linked.pipeline_runs
    runs = runs[window.contains(runs["finished_at"])].sort_values("finished_at")
    return records(
        pd.DataFrame(
            {
                "workflow": runs["name"],
                "conclusion": runs["conclusion"],
                "finished_at": local(runs["finished_at"], window),
                "minutes": runs["minutes"],
            }
        )
    )


ROWS: dict[str, Callable[[Linked, Window], list[dict[str, Any]]]] = {
    "deployments": deployment_rows,
    "incidents": incident_rows,
    "detection": detection_rows,
    "pull_requests": pull_request_rows,
    "pipelines": pipeline_rows,
}


def cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def as_table(rows: list[dict[str, Any]], metric: str, screen: Screen | None = None) -> str:
    """The rows as tables that fit the screen: text columns (authors, workflows) shortened
    in the middle, headers wrapped at their words, and when that is not enough the columns
    in blocks, each starting with the row's id (the deployment, PR, incident, workflow)."""
    screen = screen or Screen()
    buffer = io.StringIO()
    console = screen.console(buffer)
    title = f"Rows behind {metric} ({len(rows)})"
    if not rows:
        console.print(f"{title}: no rows in the window")
        return finish(buffer.getvalue())
    names = list(rows[0])
    text = [any(isinstance(row[name], str) and not _is_time(row[name]) for row in rows) for name in names]
    columns = [Column(name.replace("_", " "), left=is_text, shortened=is_text, fewest=10)
               for name, is_text in zip(names, text, strict=True)]
    print_tables(console, fitted_tables(columns, [[cell(value) for value in row.values()] for row in rows],
                                        screen, title=title))
    return finish(buffer.getvalue())


def _is_time(value: str) -> bool:
    return len(value) == 16 and value[4] == "-" and value[10] == " "


def as_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def render_explain(rows: list[dict[str, Any]], fmt: str = "table", metric: str = "",
                   screen: Screen | None = None) -> str:
    """The rows as a table for the `screen` (devmetrics/terminal.py), JSON or CSV."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    return as_csv(rows) if fmt == "csv" else as_table(rows, metric, screen)
