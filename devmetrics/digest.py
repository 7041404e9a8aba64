"""The weekly digest: one ISO week against the week before, a 12-week trend, in Markdown.

Public interface (the CLI's `devmetrics digest` calls these):

    build_digest(engine: Engine, settings: Config | ReportSettings, week: str | None = None,
                 repos: list[str] | None = None) -> dict
        `week` is "2026-W47" (default: the last full ISO week in the report timezone);
        pass the Config to get its [digest] title; `repos` are globs as in `report --repo`.
    render_digest(digest: dict, fmt: "markdown" | "json" | "slack" = "markdown") -> str
    assemble_digest(week: date, reports: list[dict], incidents: list[dict],
                    title: str = DEFAULT_TITLE) -> dict
        The pure part: `reports` are metrics.md §8 report dicts for the TREND_WEEKS weeks
        ending with `week` (oldest first), each with "repos" and an "all" aggregate.

The digest dict: {"week", "previous_week", "since", "until", "timezone", "title",
"trend_weeks", "all": section, "repos": [section, ...]}; a section holds "comparison"
rows (this, previous, delta, direction, better), "levels", "lead_time_stages",
"pipeline", "incidents", "dependency_freshness", "trend" and "coverage".
Everything taken from the forge is escaped with devmetrics.safe_text when rendered.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics.clock import now_utc
from devmetrics.config import Config
from devmetrics.errors import ConfigError
from devmetrics.metrics import ReportSettings
from devmetrics.metrics.levels import lookup
from devmetrics.models import Incident, Repository
from devmetrics.safe_text import markdown_link, markdown_text, slack_link, slack_text

TREND_WEEKS = 12
DEFAULT_TITLE = "Engineering metrics {week}"
MARKER = "<!-- devmetrics-digest week={week} -->"
UP, DOWN, SAME = "▲", "▼", "="
Format = Literal["markdown", "json", "slack"]


@dataclass(frozen=True)
class Row:
    """One metric compared week on week; `higher_is_better` decides the `better` flag."""

    key: str  # a report key; a dot reads into a distribution ("lead_time_hours.median")
    label: str
    unit: Literal["count", "hours", "minutes", "rate"]
    higher_is_better: bool


ROWS = (
    Row("deployments", "Deployments", "count", True),
    Row("deployment_success_rate", "Deployment success rate", "rate", True),
    Row("change_failure_rate", "Change failure rate", "rate", False),
    Row("incidents", "Incidents", "count", False),
    Row("time_to_restore_hours.median", "Time to restore, median", "hours", False),
    Row("lead_time_hours.median", "Lead time, median", "hours", False),
    Row("cycle_time_hours.median", "Cycle time, median", "hours", False),
    Row("pull_requests_merged", "Pull requests merged", "count", True),
    Row("pipeline_duration_minutes.median", "Pipeline duration, median", "minutes", False),
    Row("pipeline_success_rate", "Pipeline success rate", "rate", True),
)
STAGES = ("coding", "pickup", "review", "deploy")
# Trend series: counts are 0 in a week without data; medians and rates stay None there.
TRENDS: dict[str, tuple[str, str, bool]] = {  # name -> (report key, chart title, is a count)
    "deployments": ("deployments", "Deployments per week", True),
    "pull_requests_merged": ("pull_requests_merged", "Pull requests merged per week", True),
    "lead_time_median_hours": ("lead_time_hours.median", "Lead time median (hours)", False),
    "pipeline_duration_median_minutes": ("pipeline_duration_minutes.median",
                                         "Pipeline duration median (minutes)", False),
}
LEVEL_NAMES = {"deployment_frequency": "deployment frequency", "lead_time": "lead time",
               "change_failure_rate": "change failure rate", "recovery_time": "recovery time"}


# ------------------------------------------------------------------------------ weeks

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
    return [week - timedelta(weeks=back) for back in range(count - 1, -1, -1)]


# ---------------------------------------------------------------------- the pure part

def assemble_digest(week: date, reports: Sequence[Mapping[str, Any]],
                    incidents: Sequence[Mapping[str, Any]], title: str = DEFAULT_TITLE) -> dict:
    """The digest dict from report dicts of the trend weeks (oldest first; the last is `week`)."""
    this, previous = reports[-1], (reports[-2] if len(reports) > 1 else {})
    mondays = trend_mondays(week, len(reports))
    names = [str(repo["repo"]) for repo in this.get("repos", [])]
    repos = [section(name, [_repo_of(r, name) for r in reports], _repo_of(previous, name),
                     [i for i in incidents if i.get("repo") == name]) for name in names]
    overall = section("all", [_all_of(r) for r in reports], _all_of(previous), incidents)
    # Each repo counts deployments from its own signal; the aggregate names them all.
    overall["coverage"]["deployment_signals"] = {
        repo["repo"]: repo["coverage"]["deployment_signal"] for repo in repos}
    return {
        "week": week_label(week), "previous_week": week_label(week - timedelta(weeks=1)),
        "since": week.isoformat(), "until": (week + timedelta(days=7)).isoformat(),
        "timezone": this.get("timezone", "UTC"), "title": title.format(week=week_label(week)),
        "trend_weeks": [week_label(monday) for monday in mondays],
        "all": overall, "repos": repos,
    }


def _all_of(report: Mapping[str, Any]) -> dict[str, Any]:
    found = report.get("all")
    if isinstance(found, Mapping):
        return dict(found)
    repos = report.get("repos") or []
    return dict(repos[0]) if len(repos) == 1 else {}


def _repo_of(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next((dict(r) for r in report.get("repos", []) if r.get("repo") == name), {})


def section(name: str, weeks: Sequence[Mapping[str, Any]], previous: Mapping[str, Any],
            incidents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One repo (or "all"): `weeks` are its metrics per trend week, the last is this week."""
    this = weeks[-1]
    return {
        "repo": name, "forge": this.get("forge"), "url": this.get("url"),
        "comparison": [compare(row, this, previous) for row in ROWS],
        "levels": dict(this.get("levels") or {}),
        "lead_time_stages": {"this": stages(this), "previous": stages(previous)},
        "pipeline": {"duration_minutes": this.get("pipeline_duration_minutes"),
                     "success_rate": this.get("pipeline_success_rate")},
        "incidents": [dict(i) for i in incidents],
        "dependency_freshness": this.get("dependency_freshness"),
        "trend": {name: [_trend_value(w, key, count) for w in weeks]
                  for name, (key, _, count) in TRENDS.items()},
        "coverage": coverage(this),
    }


def compare(row: Row, this: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """This week, the previous week, the change, its arrow and whether it is an improvement."""
    now, before = _number(lookup(this, row.key)), _number(lookup(previous, row.key))
    delta = None if now is None or before is None else round(now - before, 4)
    direction = None if delta is None else ("up" if delta > 0 else "down" if delta < 0 else "same")
    better = None if direction in (None, "same") else (direction == "up") == row.higher_is_better
    return {"key": row.key, "label": row.label, "unit": row.unit, "this": now,
            "previous": before, "delta": delta, "direction": direction, "better": better}


def stages(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """Median hours per lead-time stage; a stage may be a number or a {median, …} dict."""
    breakdown = metrics.get("cycle_time_breakdown_hours") or {}
    return {stage: _number(_median(breakdown.get(stage))) for stage in STAGES}


def _median(value: Any) -> Any:
    return value.get("median") if isinstance(value, Mapping) else value


def coverage(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What the numbers rest on: the deployment signal, PR-to-deployment links, sample sizes."""
    return {
        "deployment_signal": metrics.get("deployment_signal"),
        "deployment_signals": metrics.get("deployment_signals"),
        "lead_time_coverage": _number(metrics.get("lead_time_coverage")),
        "pull_requests_merged": _number(metrics.get("pull_requests_merged")),
        "lead_time_n": _number(lookup(metrics, "lead_time_hours.n")),
        "pipeline_runs": _number(lookup(metrics, "pipeline_duration_minutes.n")),
    }


def _trend_value(metrics: Mapping[str, Any], key: str, count: bool) -> float | None:
    value = _number(lookup(metrics, key))
    return (value or 0) if count else value  # a missing median is unknown, never 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if value == value else None  # NaN is "no data"


# ----------------------------------------------------------------- from the database

def build_digest(engine: Engine, settings: Config | ReportSettings, week: str | None = None,
                 repos: list[str] | None = None) -> dict:
    """The digest for `week` (default: the last full week) from the store behind `engine`.

    `settings` is the Config (its [digest] title is used) or the report's ReportSettings.
    """
    from devmetrics.report import settings_from_config

    title = settings.digest.title if isinstance(settings, Config) else DEFAULT_TITLE
    report_settings = settings_from_config(settings) if isinstance(settings, Config) else settings
    monday = parse_week(week) if week else last_full_week(report_settings.timezone)
    reports = weekly_reports(engine, report_settings, trend_mondays(monday), repos)
    incidents = load_incidents(engine, monday, report_settings.timezone, repos)
    return assemble_digest(monday, reports, incidents, title)


def weekly_reports(engine: Engine, settings: ReportSettings, mondays: Sequence[date],
                   repos: list[str] | None) -> list[dict[str, Any]]:
    """One §8 report dict per week (oldest first), from one report over all the weeks."""
    from devmetrics.report import build_report

    report = build_report(engine, settings, since=mondays[0],
                          until=mondays[-1] + timedelta(days=7), repos=repos, by="week")
    weeks = [dict(period) for period in report["trend"]["periods"]]
    # Freshness is a state at the last sync, not per week: the whole report holds it.
    weeks[-1]["all"] = {**weeks[-1]["all"], "dependency_freshness": report["all"].get(
        "dependency_freshness")}
    current = {row["repo"]: row.get("dependency_freshness") for row in report["repos"]}
    weeks[-1]["repos"] = [{**row, "dependency_freshness": current.get(row["repo"])}
                          for row in weeks[-1]["repos"]]
    return weeks


def load_incidents(engine: Engine, monday: date, timezone: str,
                   repos: list[str] | None) -> list[dict[str, Any]]:
    """Incidents opened or resolved during the week, with their links, oldest first."""
    zone = ZoneInfo(timezone)
    since = datetime.combine(monday, datetime.min.time(), zone)
    until = since + timedelta(days=7)
    incidents, repositories = Incident.__table__, Repository.__table__  # type: ignore[attr-defined]
    inc, repo = incidents.c, repositories.c
    opened = sa.and_(inc.created_at >= since, inc.created_at < until)
    resolved = sa.and_(inc.resolved_at >= since, inc.resolved_at < until)
    query = (sa.select(repo.full_name, inc.title, inc.url, inc.created_at, inc.resolved_at)
             .select_from(incidents.join(repositories, repo.id == inc.repo_id))
             .where(sa.or_(opened, resolved)).order_by(inc.created_at))
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    # Repos are globs, as `devmetrics report --repo` reads them.
    return [_incident(row) for row in rows
            if not repos or any(fnmatch.fnmatchcase(row.full_name, p) for p in repos)]


def _incident(row: Any) -> dict[str, Any]:
    created, resolved = row.created_at, row.resolved_at
    hours = (resolved - created).total_seconds() / 3600 if created and resolved else None
    return {"repo": row.full_name, "title": row.title, "url": row.url,
            "created_at": created.isoformat() if created else None,
            "resolved_at": resolved.isoformat() if resolved else None,
            "restore_hours": round(hours, 1) if hours is not None else None}


# ------------------------------------------------------------------------- rendering

def render_digest(digest: Mapping[str, Any], fmt: Format = "markdown") -> str:
    """The digest as GitHub Markdown (with Mermaid charts), JSON, or Slack mrkdwn."""
    renderers: dict[str, Callable[[Mapping[str, Any]], str]] = {
        "markdown": render_markdown, "json": render_json, "slack": render_slack}
    if fmt not in renderers:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(renderers)}")
    return renderers[fmt](digest)


def render_json(digest: Mapping[str, Any]) -> str:
    return json.dumps(digest, indent=2, ensure_ascii=False, default=str) + "\n"


def render_markdown(digest: Mapping[str, Any]) -> str:
    """Header, the all-repos section, then one section per repo; blank-line separated."""
    parts = [MARKER.format(week=digest["week"]), f"# {markdown_text(digest['title'])}",
             _intro(digest)]
    parts += markdown_section(digest, digest["all"], "All repositories")
    for repo in digest["repos"]:
        parts += markdown_section(digest, repo, repo["repo"])
    return "\n\n".join(parts) + "\n"


def _intro(digest: Mapping[str, Any]) -> str:
    last_day = date.fromisoformat(digest["until"]) - timedelta(days=1)
    count = len(digest["repos"])
    return (f"Week {digest['week']} ({digest['since']} to {last_day.isoformat()}, "
            f"{digest['timezone']}) compared with {digest['previous_week']}; "
            f"{count} {'repository' if count == 1 else 'repositories'}.")


def markdown_section(digest: Mapping[str, Any], sec: Mapping[str, Any], name: str) -> list[str]:
    """Blocks of one section; each `##`/`###` heading starts a block a split may cut before."""
    week, previous = digest["week"], digest["previous_week"]
    return [
        f"## {markdown_text(name)}", comparison_table(sec["comparison"], week, previous),
        _levels_line(sec["levels"]), stages_table(sec["lead_time_stages"], week, previous),
        _pipeline_line(sec["pipeline"]), _incidents_block(sec["incidents"], sec["repo"] == "all"),
        _dependencies_line(sec["dependency_freshness"]), _coverage_line(sec["coverage"]),
        f"### {markdown_text(name)}: trend, {len(digest['trend_weeks'])} weeks",
        *trend_charts(digest["trend_weeks"], sec["trend"]),
    ]


def comparison_table(rows: Sequence[Mapping[str, Any]], week: str, previous: str) -> str:
    lines = [f"| Metric | {week} | {previous} | Change |", "|---|---:|---:|---|"]
    for row in rows:
        unit = row["unit"]
        lines.append(f"| {row['label']} | {fmt_value(row['this'], unit)} | "
                     f"{fmt_value(row['previous'], unit)} | {fmt_delta(row['delta'], unit)} |")
    return "\n".join(lines)


def stages_table(stage_values: Mapping[str, Mapping[str, Any]], week: str, previous: str) -> str:
    """Lead-time stages (metrics.md §4, cycle_time_breakdown_hours) this week vs last."""
    lines = [f"| Lead-time stage, median | {week} | {previous} | Change |", "|---|---:|---:|---|"]
    for stage in STAGES:
        now, before = stage_values["this"].get(stage), stage_values["previous"].get(stage)
        delta = None if now is None or before is None else now - before
        lines.append(f"| {stage} | {fmt_value(now, 'hours')} | {fmt_value(before, 'hours')} | "
                     f"{fmt_delta(delta, 'hours')} |")
    return "\n".join(lines)


def fmt_value(value: float | None, unit: str) -> str:
    """`—` for no data (never 0); counts whole, rates as percent, durations with a unit."""
    if value is None:
        return "—"
    if unit == "count":
        return f"{value:g}"
    if unit == "rate":
        return f"{value * 100:.0f}%"
    return f"{value:.1f} {'h' if unit == 'hours' else 'min'}"


def fmt_delta(delta: float | None, unit: str) -> str:
    """`▲ +2`, `▼ -9.6 h`, `▲ +5.0 pp` (rates change in percentage points), `= 0`."""
    if delta is None:
        return "—"
    if delta == 0:
        return f"{SAME} 0"
    arrow = UP if delta > 0 else DOWN
    if unit == "count":
        return f"{arrow} {delta:+g}"
    if unit == "rate":
        return f"{arrow} {delta * 100:+.1f} pp"
    return f"{arrow} {delta:+.1f} {'h' if unit == 'hours' else 'min'}"


def _levels_line(levels: Mapping[str, Any]) -> str:
    parts = [f"{LEVEL_NAMES.get(key, key.replace('_', ' '))} " + (f"**{value}**" if value else "—")
             for key, value in levels.items()]
    return "**DORA levels:** " + (" · ".join(parts) if parts else "—")


def _pipeline_line(pipeline: Mapping[str, Any]) -> str:
    duration = pipeline.get("duration_minutes") or {}
    if not duration.get("n"):
        return "**Pipelines:** no completed runs this week."
    rate = fmt_value(_number(pipeline.get("success_rate")), "rate")
    return (f"**Pipelines:** median {fmt_value(_number(duration.get('median')), 'minutes')}, "
            f"p90 {fmt_value(_number(duration.get('p90')), 'minutes')} over "
            f"{duration['n']} runs; success rate {rate}.")


def _incidents_block(incidents: Sequence[Mapping[str, Any]], with_repo: bool) -> str:
    if not incidents:
        return "**Incidents this week:** none."
    items = [_incident_item(incident, with_repo) for incident in incidents]
    return "\n".join(["**Incidents this week:**", *items])


def _incident_item(incident: Mapping[str, Any], with_repo: bool) -> str:
    where = f" ({markdown_text(incident['repo'])})" if with_repo else ""
    opened = str(incident.get("created_at") or "")[:16].replace("T", " ")
    restored = (f"restored after {incident['restore_hours']:.1f} h"
                if incident.get("restore_hours") is not None else "still open")
    link = markdown_link(incident["title"], incident.get("url"))
    return f"- {link}{where}: opened {opened} UTC, {restored}"


def _dependencies_line(freshness: Mapping[str, Any] | None) -> str:
    if not freshness or not freshness.get("dependencies"):
        return "**Dependency freshness:** not evaluated."
    libyears = _number(freshness.get("libyears"))
    return (f"**Dependency freshness:** {freshness['dependencies']} direct dependencies, "
            f"{freshness.get('outdated', 0)} outdated, {freshness.get('major_behind', 0)} a major "
            f"version behind ({freshness.get('more_than_one_major_behind', 0)} more than one), "
            f"{'—' if libyears is None else f'{libyears:.1f}'} libyears (summed, then rounded to 0.1).")


def _coverage_line(cov: Mapping[str, Any]) -> str:
    signal = cov.get("deployment_signal") or _signals_text(cov.get("deployment_signals"))
    share = cov.get("lead_time_coverage")
    merged = cov.get("pull_requests_merged")
    linked = ("no merged pull requests" if not merged else
              f"{fmt_value(share, 'rate')} of {merged:g} merged pull requests linked to a deploy")
    source = markdown_text(signal or "no signal")
    return (f"**Signal and coverage:** deployments counted from {source}; "
            f"{linked}; lead time over {cov.get('lead_time_n') or 0:g} PRs; "
            f"{cov.get('pipeline_runs') or 0:g} pipeline runs.")


def _signals_text(signals: Any) -> str | None:
    if isinstance(signals, Mapping) and signals:
        return ", ".join(f"{repo}: {signal or 'no signal'}" for repo, signal in signals.items())
    return None


# ---------------------------------------------------------------------------- charts

def trend_charts(weeks: Sequence[str], trend: Mapping[str, Sequence[float | None]]) -> list[str]:
    """One Mermaid xychart-beta per trend series (bars for counts, lines for medians)."""
    charts = []
    for name, (_, title, count) in TRENDS.items():
        points = [(week, value) for week, value in zip(weeks, trend[name], strict=True)
                  if value is not None]  # a week without a median is left out, not drawn as 0
        if not points:
            charts.append(f"_{title}: no data in these weeks._")
            continue
        charts.append(mermaid_chart(title, points, "bar" if count else "line"))
    return charts


def mermaid_chart(title: str, points: Sequence[tuple[str, float]], kind: str) -> str:
    labels = ", ".join(f'"{week.split("-")[-1]}"' for week, _ in points)
    values = ", ".join(f"{round(value, 1):g}" for _, value in points)
    top = max(1.0, max(value for _, value in points))
    return "\n".join(["```mermaid", "xychart-beta", f'    title "{title}"',
                      f"    x-axis [{labels}]", f"    y-axis 0 --> {top:g}",
                      f"    {kind} [{values}]", "```"])


# ----------------------------------------------------------------------------- slack

def render_slack(digest: Mapping[str, Any]) -> str:
    """A short mrkdwn message: the all-repos comparison and the week's incidents."""
    lines = [f"*{slack_text(digest['title'])}* (vs {digest['previous_week']})"]
    for row in digest["all"]["comparison"]:
        if row["this"] is None and row["previous"] is None:
            continue
        lines.append(f"• {row['label']}: *{fmt_value(row['this'], row['unit'])}* "
                     f"({fmt_delta(row['delta'], row['unit'])})")
    for incident in digest["all"]["incidents"]:
        lines.append(f"• Incident: {slack_link(incident['title'], incident.get('url'))} "
                     f"({slack_text(incident['repo'])})")
    return "\n".join(lines)
