"""The one layer that writes records: engine, migrations, idempotent upserts, cursors.

Every write is `INSERT … ON CONFLICT (natural key) DO UPDATE` through SQLAlchemy Core, so
re-running any sync window leaves the same tables. SQLite is the default (WAL, busy
timeout); any SQLAlchemy URL with an upsert dialect works (tested: SQLite, PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlmodel import SQLModel

from devmetrics import models, secrets
from devmetrics.clock import now_utc
from devmetrics.errors import ConfigError, StoreError
from devmetrics.models import NATURAL_KEYS, SCHEMA_VERSION, SchemaVersion, SyncState

BUSY_TIMEOUT_SECONDS = 30
UPSERT_CHUNK = 500


def open_engine(url: str) -> Engine:
    """An engine for `url` with the schema created or migrated to SCHEMA_VERSION."""
    engine = create_engine(url)
    _refuse_foreign_sqlite(engine)
    try:
        migrate(engine)
    except OperationalError as exc:
        raise StoreError(f"cannot open database {safe_url(url)}: {exc.orig}") from None
    return engine


def _refuse_foreign_sqlite(engine: Engine) -> None:
    """A SQLite file that is not a devmetrics database (garbage bytes, another program's
    tables) is refused before anything writes to it: not even a pragma touches it."""
    path = sqlite_file(engine.url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as file:
        header = file.read(16)
    if header != b"SQLite format 3\x00":
        raise StoreError(f"database.url: {path} is not a devmetrics database (not a SQLite file); "
                         "it was left untouched")
    import sqlite3

    probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"database.url: {path} is not a devmetrics database ({exc}); it was left untouched") from None
    finally:
        probe.close()
    if tables and SchemaVersion.__tablename__ not in tables:
        raise StoreError(f"database.url: {path} is not a devmetrics database (it holds other tables: "
                         f"{', '.join(sorted(tables)[:5])}); it was left untouched")


def create_engine(url: str) -> Engine:
    try:
        engine = sa.create_engine(url, connect_args=_connect_args(url))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"database.url: cannot use {safe_url(url)!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        _make_sqlite_folder(engine.url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def sqlite_file(url: sa.engine.URL) -> Path | None:
    """The file a SQLite URL names; None for memory and URI-style databases, and other dialects."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:") \
            or url.query.get("uri"):
        return None
    return Path(database).expanduser()


def _make_sqlite_folder(url: sa.engine.URL) -> None:
    """A SQLite file's folder is made on first use (mode 700: the store is the team's data).

    The Action's documented `sqlite:///.devmetrics/devmetrics.db` starts on a cold cache
    with no `.devmetrics/`; SQLite itself would only say "unable to open database file".
    """
    path = sqlite_file(url)
    if path is None or path.parent.is_dir():
        return
    folder = path.parent
    try:
        folder.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        raise StoreError(f"database.url: cannot create the folder {folder} for the SQLite file: "
                         f"{exc.strerror or exc}") from None


def stored_repo_names(engine: Engine) -> list[str]:
    """The full names of the repos in the store, sorted, for messages that name them."""
    table = models.Repository.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return sorted(set(conn.execute(sa.select(table.c.full_name)).scalars()), key=str.lower)


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": BUSY_TIMEOUT_SECONDS} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets a report read while a sync writes; the busy timeout makes writers queue.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# ---------------------------------------------------------------------------- migrations

def _v2_repository_signal(conn: Connection) -> None:
    """v2: deployments are counted by a signal chosen per repo; remember which one."""
    _add_missing_columns(conn, models.Repository.__table__)  # type: ignore[attr-defined]


PULL_REQUEST_STREAMS = ("pull_requests", "merge_requests")  # GitHub's and GitLab's name


def _v3_reread_first_responses(conn: Connection) -> None:
    """v3: a PR's first response now counts conversation comments (GitLab: user notes) and only
    responses at or after ready_at (contract revision 2026-12-01).

    first_review_at is worked out from the forge at sync time, so the stored values follow the
    old rule. Each repo's PR cursor moves back to its oldest stored PR: the next sync re-reads
    those PRs once (one request per 100 on GitHub) and rewrites the column. No row is removed.
    """
    repo, pull = models.Repository.__table__, models.PullRequest.__table__  # type: ignore[attr-defined]
    state = SyncState.__table__  # type: ignore[attr-defined]
    oldest = (
        sa.select(repo.c.forge, repo.c.host, repo.c.full_name, sa.func.min(pull.c.updated_at))
        .join(pull, pull.c.repo_id == repo.c.id)
        .group_by(repo.c.forge, repo.c.host, repo.c.full_name)
    )
    for forge, host, full_name, updated_at in conn.execute(oldest):
        if updated_at is None:
            continue
        conn.execute(
            sa.update(state)
            .where(state.c.source == f"{forge}:{host}", state.c.repo == full_name,
                   state.c.stream.in_(PULL_REQUEST_STREAMS), state.c.cursor > updated_at)
            .values(cursor=updated_at)
        )


def _v4_package_failures(conn: Connection) -> None:
    """v4: failed registry look-ups are remembered (table package_failure)."""
    models.PackageFailure.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v5_digest_figures(conn: Connection) -> None:
    """v5: the figures each digest posted (table digest_figure), for its "revised" lines."""
    models.DigestFigure.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v6_target_weeks(conn: Connection) -> None:
    """v6: each target's weekly status and alert state (table target_week, docs/targets.md)."""
    models.TargetWeek.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


# version -> step that brings a database from version-1 to version. Steps run in order
# inside one transaction; additive column changes are also caught up by
# _add_missing_columns so a step only has to say what is not a new nullable column.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _v2_repository_signal, 3: _v3_reread_first_responses, 4: _v4_package_failures,
    5: _v5_digest_figures, 6: _v6_target_weeks,
}


def migrate(engine: Engine) -> int:
    """Create missing tables and bring an older schema up to SCHEMA_VERSION, keeping rows."""
    with engine.begin() as conn:
        _serialise_migrations(conn)
        found = schema_version(conn)
        if found is not None and found > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {found} is newer than this devmetrics "
                f"({SCHEMA_VERSION}); upgrade devmetrics"
            )
        SQLModel.metadata.create_all(conn)
        for version in range((found or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        for table in SQLModel.metadata.sorted_tables:
            _add_missing_columns(conn, table)
        if found != SCHEMA_VERSION:  # applied_at says when the version was applied, not opened
            _set_version(conn, SCHEMA_VERSION)
    return SCHEMA_VERSION


def _serialise_migrations(conn: Connection) -> None:
    """PostgreSQL: collectors starting at once on a fresh schema would race to CREATE the same
    tables (one fails on the catalog's unique index); a transaction lock makes them queue."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/migrate', 0))"))


def schema_version(conn: Connection) -> int | None:
    if not sa.inspect(conn).has_table(SchemaVersion.__tablename__):
        return None
    return conn.execute(sa.select(SchemaVersion.__table__.c.version)).scalar()  # type: ignore[attr-defined]


def _set_version(conn: Connection, version: int) -> None:
    upsert(conn, SchemaVersion, [{"id": 1, "version": version, "applied_at": now_utc()}],
           key=("id",))


def _add_missing_columns(conn: Connection, table: sa.Table) -> None:
    present = {col["name"] for col in sa.inspect(conn).get_columns(table.name)}
    for column in table.columns:
        if column.name in present:
            continue
        ddl = column.type.compile(dialect=conn.dialect)
        default = _column_default_sql(column)
        conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}{default}'))


def _column_default_sql(column: sa.Column[Any]) -> str:
    python_default = getattr(column.default, "arg", None)
    if isinstance(python_default, bool):
        return f" DEFAULT {'TRUE' if python_default else 'FALSE'}"
    if isinstance(python_default, int | float):
        return f" DEFAULT {python_default}"
    if isinstance(python_default, str):
        return " DEFAULT '" + python_default.replace("'", "''") + "'"
    return ""


# ------------------------------------------------------------------------------- upserts

def upsert(
    target: Engine | Connection,
    model: type[SQLModel],
    rows: Iterable[SQLModel | Mapping[str, Any]],
    key: tuple[str, ...] | None = None,
) -> int:
    """Insert `rows` or update them in place on their natural key. Returns rows written."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    key = key or NATURAL_KEYS[model]
    clean = secrets.redactor()  # no token or URL credential is ever written (secrets.py)
    records = [_as_row(table, row, clean) for row in rows]
    if not records:
        return 0
    if isinstance(target, Engine):
        with target.begin() as conn:
            return _upsert_rows(conn, table, key, records)
    return _upsert_rows(target, table, key, records)


def _as_row(table: sa.Table, row: SQLModel | Mapping[str, Any], clean: Callable[[str], str]) -> dict[str, Any]:
    data = row.model_dump() if isinstance(row, SQLModel) else dict(row)
    if data.get("id") is None:
        data.pop("id", None)  # the surrogate id is the database's to assign
    return {name: _cleaned(value, clean) for name, value in data.items() if name in table.c}


def _cleaned(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [clean(item) if isinstance(item, str) else item for item in value]
    return value


def _upsert_rows(conn: Connection, table: sa.Table, key: tuple[str, ...],
                 records: list[dict[str, Any]]) -> int:
    insert = _dialect_insert(conn)
    # Rows of one statement must share columns; group by column set, then chunk.
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        by_columns.setdefault(tuple(sorted(record)), []).append(record)
    for columns, group in by_columns.items():
        updates = [c for c in columns if c not in key and c != "id"]
        for start in range(0, len(group), UPSERT_CHUNK):
            stmt = insert(table).values(group[start:start + UPSERT_CHUNK])
            set_ = {c: stmt.excluded[c] for c in updates}
            stmt = (stmt.on_conflict_do_update(index_elements=list(key), set_=set_) if set_
                    else stmt.on_conflict_do_nothing(index_elements=list(key)))
            conn.execute(stmt)
    return len(records)


def _dialect_insert(conn: Connection) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    inserts = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if conn.dialect.name not in inserts:
        raise StoreError(f"database {conn.dialect.name!r} is not supported for writes (use SQLite or PostgreSQL)")
    return inserts[conn.dialect.name]


def repo_id(conn: Engine | Connection, forge: str, host: str, full_name: str) -> int | None:
    table = models.Repository.__table__  # type: ignore[attr-defined]
    return _scalar(conn, sa.select(table.c.id).where(
        table.c.forge == forge, table.c.host == host, table.c.full_name == full_name))


def _scalar(conn: Engine | Connection, query: sa.Select[Any]) -> Any:
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return c.execute(query).scalar()
    return conn.execute(query).scalar()


def save_repository(conn: Engine | Connection, repo: models.Repository) -> int:
    """Upsert a repository and return its id."""
    upsert(conn, models.Repository, [repo])
    found = repo_id(conn, repo.forge, repo.host, repo.full_name)
    assert found is not None
    return found


# ------------------------------------------------------------------------------- cursors

def get_cursor(conn: Engine | Connection, source: str, repo: str, stream: str) -> datetime | None:
    table = SyncState.__table__  # type: ignore[attr-defined]
    return _scalar(conn, sa.select(table.c.cursor).where(
        table.c.source == source, table.c.repo == repo, table.c.stream == stream))


def set_cursor(conn: Connection, source: str, repo: str, stream: str, cursor: datetime,
               lookback_seconds: int = 0) -> None:
    """Move a stream's cursor. Call it in the transaction that stored the rows it covers."""
    upsert(conn, SyncState, [{"source": source, "repo": repo, "stream": stream,
                              "cursor": cursor, "lookback_seconds": lookback_seconds,
                              "last_success_at": now_utc()}])


def count_rows(engine: Engine, model: type[SQLModel]) -> int:
    table = model.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


__all__ = [
    "count_rows", "get_cursor", "migrate", "open_engine",
    "repo_id", "safe_url", "save_repository", "set_cursor", "upsert",
]
