"""The digest from the store: one load of the trend weeks' rows, then the pure assembly.

    build_digest(engine, settings: Config | ReportSettings, week: str | None = None,
                 repos: list[str] | None = None) -> dict
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics.config import Config
from devmetrics.digest.assemble import DEFAULT_TITLE, assemble_digest
from devmetrics.digest.drivers import add_titles, week_drivers
from devmetrics.digest.history import DEFAULT_THRESHOLD, find_revisions
from devmetrics.digest.noise import DEFAULT_MIN_EVENTS
from devmetrics.digest.samples import week_samples
from devmetrics.digest.weeks import LEVEL_WEEKS, last_full_week, parse_week, trend_mondays
from devmetrics.metrics import Linked, ReportSettings, Window
from devmetrics.models import Incident, Repository

WEEK = timedelta(days=7)


def build_digest(engine: Engine, settings: Config | ReportSettings, week: str | None = None,
                 repos: list[str] | None = None) -> dict:
    """The digest for `week` (default: the last full week) from the store behind `engine`.

    `settings` is the Config (its [digest] title and [report] min_events are used) or the
    report's ReportSettings.
    """
    from devmetrics.report import settings_from_config

    config = settings if isinstance(settings, Config) else None
    report_settings = settings_from_config(settings) if isinstance(settings, Config) else settings
    monday = parse_week(week) if week else last_full_week(report_settings.timezone)
    mondays = trend_mondays(monday)
    linked, ids = load_weeks(engine, report_settings, mondays, repos)
    reports = weekly_reports(engine, linked, ids, report_settings, mondays)
    tz = report_settings.timezone
    this_week = Window.from_dates(monday, monday + WEEK, tz)
    samples = {"this": week_samples(linked, this_week),
               "previous": week_samples(linked, Window.from_dates(monday - WEEK, monday, tz))}
    drivers = week_drivers(linked, this_week)
    add_titles(engine, drivers, dict(zip(linked.repositories["full_name"], linked.repositories["id"], strict=True)))
    past = {str(report["period"]): report for report in reports[:-1]}
    threshold = config.digest.revision_threshold if config else DEFAULT_THRESHOLD
    revisions = find_revisions(engine, past, threshold, filtered=bool(repos))
    digest = assemble_digest(
        monday, reports, load_incidents(engine, monday, tz, repos),
        config.digest.title if config else DEFAULT_TITLE, samples,
        config.report.min_events if config else DEFAULT_MIN_EVENTS,
        level_report(linked, report_settings, monday), drivers, revisions)
    options = ({"title_length": config.digest.title_length, "detail_repos": config.digest.detail_repos,
                "dashboard_url": config.digest.dashboard_url} if config else {})
    return digest | options | {"repo_filter": list(repos or [])}


def level_report(linked: Linked, settings: ReportSettings, monday: date) -> dict[str, Any]:
    """The report over the LEVEL_WEEKS weeks that end with `monday`'s week (levels are judged on it)."""
    from devmetrics.report import report_rows

    since = monday - (LEVEL_WEEKS - 1) * WEEK
    return report_rows(linked, Window.from_dates(since, monday + WEEK, settings.timezone), settings)


def load_weeks(engine: Engine, settings: ReportSettings, mondays: Sequence[date],
               repos: list[str] | None) -> tuple[Linked, list[int] | None]:
    """The linked rows of the chosen repos over all the weeks (read once)."""
    from devmetrics.report import load_and_link, select_repos

    ids = None if not repos else [int(i) for i in select_repos(engine, repos)["id"]]
    window = Window.from_dates(mondays[0], mondays[-1] + WEEK, settings.timezone)
    return load_and_link(engine, ids, window, settings), ids


def weekly_reports(engine: Engine, linked: Linked, ids: list[int] | None, settings: ReportSettings,
                   mondays: Sequence[date]) -> list[dict[str, Any]]:
    """One §8 report dict per week (oldest first), each summarised like a report of its own."""
    from devmetrics.report import dependency_freshness, trend

    window = Window.from_dates(mondays[0], mondays[-1] + WEEK, settings.timezone)
    weeks = [dict(period) | {"timezone": settings.timezone}
             for period in trend(linked, window, settings, "week")["periods"]]
    # Freshness is a state at the last sync, not per week: the last week carries it.
    freshness = dependency_freshness(engine, ids)
    names = dict(zip(linked.repositories["full_name"], linked.repositories["id"], strict=True))
    last = weeks[-1]
    last["all"] = {**last["all"], "dependency_freshness": freshness.get("all")}
    last["repos"] = [{**row, "dependency_freshness": freshness.get(names.get(row["repo"]))}
                     for row in last["repos"]]
    return weeks


def load_incidents(engine: Engine, monday: date, timezone: str,
                   repos: list[str] | None) -> list[dict[str, Any]]:
    """Incidents opened or resolved during the week, with their links, oldest first."""
    zone = ZoneInfo(timezone)
    since = datetime.combine(monday, datetime.min.time(), zone)
    until = since + WEEK
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
