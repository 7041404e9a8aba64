"""Store -> frames -> metrics -> the report of metrics.md §8.

Public interface (the CLI calls these):

    settings_from_config(config, timezone: str | None = None) -> ReportSettings
    today_in(timezone: str) -> date
    build_report(engine, settings, since: date, until: date,
                 repos: Sequence[str] | None = None, by: str | None = None) -> dict
    render_report(report: dict, fmt: str) -> str      # table | json | csv | markdown
    load_frames(engine, repo_ids: Sequence[int] | None, window: Window | None = None) -> Frames

`build_report` returns {"since", "until", "timezone", "levels_benchmark", "repos": [one
dict per repo, keys of §8 plus extras], "all": {the same over all repos}} and, with `by`,
a "trend" key: {"by": "week"|"month", "periods": [{"period", "since", "until", "repos",
"all"}]}. Every period is summarised exactly like a report window of its own.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from devmetrics import models
from devmetrics.clock import now_utc
from devmetrics.metrics import Frames, Linked, ReportSettings, Window, midnight
from devmetrics.metrics.levels import levels
from devmetrics.metrics.pipelines import completed_runs
from devmetrics.metrics.summary import link, link_changes, link_deployments, prepare, summarise
from devmetrics.render import render_report
from devmetrics.store import BUSY_TIMEOUT_SECONDS

try:  # optional fast path: Arrow reads of SQLite (see read_sql)
    import adbc_driver_sqlite.dbapi as adbc_sqlite
except ImportError:  # pragma: no cover - the plain SQLAlchemy read still works
    adbc_sqlite = None  # type: ignore[assignment]
try:  # the same for PostgreSQL (the postgres extra installs it)
    import adbc_driver_postgresql.dbapi as adbc_postgres
except ImportError:  # pragma: no cover - the plain SQLAlchemy read still works
    adbc_postgres = None  # type: ignore[assignment]

__all__ = ["build_report", "load_frames", "render_report", "settings_from_config", "today_in"]

# The columns each metric needs, and nothing more (a wide read is the slowest part).
COLUMNS: dict[str, tuple[type[SQLModel], tuple[str, ...]]] = {
    "repositories": (models.Repository, ("id", "forge", "host", "full_name", "default_branch", "deployment_signal")),
    "pull_requests": (
        models.PullRequest,
        (
            "id",
            "repo_id",
            "number",
            "author",
            "author_is_bot",
            "draft",
            "created_at",
            "ready_at",
            "first_commit_at",
            "first_review_at",
            "merged_at",
            "closed_at",
            "updated_at",
            "merge_commit_sha",
            "base_branch",
            "labels",
            "reverts_number",
        ),
    ),
    "deployments": (
        models.Deployment,
        ("id", "repo_id", "source", "deployment_id", "environment", "sha", "created_at", "finished_at", "status"),
    ),
    "deployment_commits": (models.DeploymentCommit, ("repo_id", "source", "deployment_id", "sha")),
    "pipeline_runs": (
        models.PipelineRun,
        ("repo_id", "name", "conclusion", "started_at", "finished_at", "duration_seconds"),
    ),
    "incidents": (
        models.Incident,
        ("id", "repo_id", "source", "incident_id", "created_at", "resolved_at", "linked_sha", "linked_pr"),
    ),
}
RAW_TYPES = (models.UTCDateTime, sa.JSON)  # read as text, parsed vectorised by pandas
BOOLEANS = ("author_is_bot", "draft")


def settings_from_config(config: Any, timezone: str | None = None) -> ReportSettings:
    """ReportSettings from the config's [report] table and each source's per-repo settings."""
    patterns: dict[str, str] = {}
    signals: dict[str, str] = {}
    for source in config.sources:
        for repo in [*source.repos, *source.overrides]:
            patterns[repo] = source.setting(repo, "production")
            signal = source.setting(repo, "deployments")
            if signal != "auto":
                signals[repo] = signal
    section = config.report
    return ReportSettings(
        timezone=timezone or section.timezone,
        production_patterns=patterns,
        deployment_signals=signals,
        incident_window_hours=section.incident_window_hours,
        hotfix_labels=tuple(section.hotfix_labels),
        bots=tuple(section.bots),
        levels=section.levels,
        stale_after_days=section.stale_after_days,
    )


def today_in(timezone: str) -> date:
    """Today's date in the report timezone (by the devmetrics clock)."""
    return now_utc().astimezone(ZoneInfo(timezone)).date()


def select_repos(engine: Engine, patterns: Sequence[str] | None) -> pd.DataFrame:
    """Repositories whose full name matches any glob (all when there are none)."""
    repos = read_table(engine, "repositories", None)
    if repos.empty:  # an empty read may come back without columns
        repos = repos.reindex(columns=list(COLUMNS["repositories"][1]))
    if patterns and not repos.empty:
        keep = [any(fnmatch.fnmatchcase(name, p) for p in patterns) for name in repos["full_name"]]
        repos = repos[keep]
    return repos.sort_values("full_name").reset_index(drop=True)


def read_query(kind: str, repo_ids: Sequence[int] | None, since: Any = None) -> sa.Select[Any]:
    """SELECT the needed columns; times and JSON come back as text for pandas to parse.

    Pull requests: the merged ones, and those that may be open at the window's end (work in
    progress): not closed, or closed at or after `since` (a stored time, see `stored_time`).
    """
    model, names = COLUMNS[kind]
    table = model.__table__  # type: ignore[attr-defined]
    columns = [
        sa.type_coerce(table.c[name], sa.String()).label(name)
        if isinstance(table.c[name].type, RAW_TYPES)
        else table.c[name]
        for name in names
    ]
    query = sa.select(*columns)
    if repo_ids is not None and "repo_id" in names:
        query = query.where(table.c.repo_id.in_(list(repo_ids)))
    if kind == "pull_requests":
        closed = sa.type_coerce(table.c.closed_at, sa.String())
        maybe_open = [table.c.closed_at.is_(None)] + ([closed >= since] if since is not None else [])
        query = query.where(sa.or_(table.c.merged_at.is_not(None), *maybe_open))
    return query


def window_filter(query: sa.Select[Any], kind: str, window: Window, dialect: str = "sqlite") -> sa.Select[Any]:
    """Pipeline runs are only needed inside the window (nothing links to them)."""
    if kind != "pipeline_runs":
        return query
    table = models.PipelineRun.__table__  # type: ignore[attr-defined]
    finished = sa.type_coerce(table.c.finished_at, sa.String())
    since, until = (stored_time(moment, dialect) for moment in (window.since, window.until))
    return query.where(finished >= since, finished < until, table.c.conclusion.in_(("success", "failure")))


def stored_time(moment: pd.Timestamp, dialect: str) -> Any:
    """A bound for a time column: SQLite keeps UTC text that sorts like the time itself."""
    utc = moment.tz_convert("UTC")
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else utc.to_pydatetime()


def read_table(engine: Engine, kind: str, repo_ids: Sequence[int] | None, window: Window | None = None) -> pd.DataFrame:
    """One record table as a frame with the model's column names and parsed times."""
    since = None if window is None else stored_time(window.since, engine.dialect.name)
    query = read_query(kind, repo_ids, since)
    if window is not None:
        query = window_filter(query, kind, window, engine.dialect.name)
    return typed(read_sql(engine, query))


def read_sql(engine: Engine, query: sa.Select[Any]) -> pd.DataFrame:
    """The query's rows as a frame: through Arrow for SQLite and PostgreSQL when ADBC is installed.

    Arrow builds the columns in C: for a million PRs this is several times faster than
    Python rows (on PostgreSQL about 45 s against 4), and it is the floor the report is
    benchmarked against. Both stores give the same frames (`arrow_frame`).
    """
    dialect = engine.dialect.name
    if dialect == "sqlite" and adbc_sqlite is not None and engine.url.database:
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with adbc_sqlite.connect(engine.url.database) as arrow, arrow.cursor() as cursor:
            # ADBC sets no busy timeout: without one, a read that meets another connection's
            # lock (a sync writing, a closing connection checkpointing the WAL) fails at once.
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
            # SQLite has no column types: infer them from all rows, not the first 1,024
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "1000000000"})
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
        return arrow_frame(table)
    if dialect == "postgresql" and adbc_postgres is not None:
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with adbc_postgres.connect(libpq_uri(engine.url)) as arrow, arrow.cursor() as cursor:
            cursor.execute(sql)  # COPY ... TO STDOUT (FORMAT binary) inside the driver
            table = cursor.fetch_arrow_table()
        return arrow_frame(table)
    with engine.connect() as conn:
        return pd.read_sql(query, conn)


def libpq_uri(url: sa.URL) -> str:
    """The SQLAlchemy URL as libpq's connection URI (same host, user, database, options)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def arrow_frame(table: Any) -> pd.DataFrame:
    """An Arrow table as pandas, the same frame from either store.

    SQLite's time text is parsed in Arrow (naive UTC; PostgreSQL's timestamptz arrives as
    UTC times), PostgreSQL's 32-bit integers widen to SQLite's 64, and its JSON (an Arrow
    extension type) is the JSON text SQLite keeps.
    """
    import pyarrow as pa

    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if isinstance(column.type, pa.BaseExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], type=column.type.storage_type)
            table = table.set_column(i, name, column)
        if name.endswith("_at"):
            if pa.types.is_string(column.type) or pa.types.is_null(column.type):
                table = table.set_column(i, name, column.cast(pa.timestamp("ns")))
        elif pa.types.is_integer(column.type) and column.type != pa.int64():
            table = table.set_column(i, name, column.cast(pa.int64()))
    return table.to_pandas()


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Times to datetime64[ns, UTC], booleans to bool (SQLite hands back text and ints)."""
    for column in frame.columns:
        if column.endswith("_at"):
            frame[column] = utc_column(frame[column])
        elif column in BOOLEANS:
            frame[column] = frame[column].fillna(False).astype(bool)
    return frame


def utc_column(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").dt.tz_localize("UTC")
    return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[ns, UTC]")


def load_frames(engine: Engine, repo_ids: Sequence[int] | None, window: Window | None = None) -> Frames:
    """Every record table the metrics need, for these repos (None: all)."""
    tables = {kind: read_table(engine, kind, repo_ids, window) for kind in COLUMNS if kind != "repositories"}
    return Frames(repositories=repositories(engine, repo_ids), **tables)


def repositories(engine: Engine, repo_ids: Sequence[int] | None) -> pd.DataFrame:
    repos = read_table(engine, "repositories", None)
    if repo_ids is not None:
        repos = repos[repos["id"].isin(list(repo_ids))]
    return repos.sort_values("full_name").reset_index(drop=True)


def load_and_link(engine: Engine, repo_ids: Sequence[int] | None, window: Window, settings: ReportSettings) -> Linked:
    """Read and link every table, the reading overlapped with the linking.

    One reader thread reads the tables one after the other, as `load_frames` does, while
    this thread links what has arrived: deployments first, then pull requests and
    incidents; pipeline runs link to nothing. The Arrow read releases the GIL, so on two
    cores most of the reading hides behind the linking.
    """
    if not shared_across_threads(engine):
        return link(load_frames(engine, repo_ids, window), settings)
    order = ("deployments", "deployment_commits", "incidents", "pull_requests", "pipeline_runs")
    with ThreadPoolExecutor(max_workers=1) as reader:
        read = {kind: reader.submit(read_table, engine, kind, repo_ids, window) for kind in order}
        shipping = link_deployments(
            repositories(engine, repo_ids),
            read["deployments"].result(),
            read["deployment_commits"].result(),
            settings,
        )
        linked = link_changes(shipping, read["pull_requests"].result(), read["incidents"].result(), settings)
        return replace(linked, pipeline_runs=completed_runs(prepare(read["pipeline_runs"].result())))


def shared_across_threads(engine: Engine) -> bool:
    """False for in-memory SQLite: each thread would see a database of its own."""
    database = engine.url.database
    return engine.dialect.name != "sqlite" or bool(database and database != ":memory:")


def build_report(
    engine: Engine,
    settings: ReportSettings,
    since: date,
    until: date,
    repos: Sequence[str] | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The report of metrics.md §8 for [since, until) in the settings' timezone."""
    window = Window.from_dates(since, until, settings.timezone)
    chosen = select_repos(engine, repos)
    ids = None if not repos else list(chosen["id"])
    linked = load_and_link(engine, ids, window, settings)
    report: dict[str, Any] = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "timezone": settings.timezone,
        "levels_benchmark": settings.levels,
    }
    report |= report_rows(linked, window, settings, dependency_freshness(engine, ids))
    if by:
        report["trend"] = trend(linked, window, settings, by)
    return report


def report_rows(
    linked: Linked, window: Window, settings: ReportSettings, freshness: dict[Any, dict[str, Any] | None] | None = None
) -> dict[str, Any]:
    """{"repos": [...], "all": {...}}: the metrics with each repo's identity and levels."""
    freshness = freshness or {}
    per_repo = summarise(linked, window, per_repo=True)
    overall = summarise(linked, window, per_repo=False)["all"]
    rows = []
    for repo in linked.repositories.itertuples():
        row = {
            "repo": repo.full_name,
            "forge": repo.forge,
            "deployment_signal": None if pd.isna(repo.deployment_signal) else repo.deployment_signal,
        }
        rows.append(finish(row | per_repo[repo.id], freshness.get(repo.id), settings))
    head = {"repo": "all", "forge": None, "deployment_signal": None}
    return {"repos": rows, "all": finish(head | overall, freshness.get("all"), settings)}


def finish(row: dict[str, Any], freshness: dict[str, Any] | None, settings: ReportSettings) -> dict[str, Any]:
    row["dependency_freshness"] = freshness
    row["levels"] = levels(row, settings.levels)
    return row


def periods(window: Window, by: str) -> list[tuple[str, Window]]:
    """ISO weeks or calendar months in the report timezone, clipped to the window."""
    tz = window.since.tz
    first = window.first_day
    start = first - pd.Timedelta(days=first.weekday()) if by == "week" else first.replace(day=1)
    step = pd.DateOffset(weeks=1) if by == "week" else pd.DateOffset(months=1)
    found = []
    while start < window.until.tz_localize(None):
        end = start + step
        label = f"{start.isocalendar()[0]}-W{start.isocalendar()[1]:02d}" if by == "week" else start.strftime("%Y-%m")
        part = Window(max(midnight(start, tz), window.since), min(midnight(end, tz), window.until))
        found.append((label, part))
        start = end
    return found


def trend(linked: Linked, window: Window, settings: ReportSettings, by: str) -> dict[str, Any]:
    """The report again for every period; periods without events are kept."""
    result = []
    for label, part in periods(window, by):
        rows = report_rows(linked, part, settings)
        result.append(
            {"period": label, "since": part.since.date().isoformat(), "until": part.until.date().isoformat()} | rows
        )
    return {"by": by, "periods": result}


def dependency_freshness(engine: Engine, repo_ids: Sequence[int] | None) -> dict[Any, dict[str, Any] | None]:
    """repo id (and "all") -> the §6 counts of the stored direct dependencies; empty if none.

    The counting is deps.freshness.summarise, the one definition (versions compared by each
    ecosystem's own rules), so the report, `devmetrics deps` and the history snapshots agree.
    """
    from devmetrics.deps.freshness import summarise

    table = models.Dependency.__table__  # type: ignore[attr-defined]
    query = sa.select(table).where(table.c.direct.is_(True))
    if repo_ids is not None:
        query = query.where(table.c.repo_id.in_(list(repo_ids)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return {}
    by_repo: dict[Any, list[Any]] = {}
    for row in rows:
        by_repo.setdefault(row.repo_id, []).append(row)
    return {**{repo: summarise(group) for repo, group in by_repo.items()}, "all": summarise(rows)}
