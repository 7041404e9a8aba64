"""One sync at a time per database: overlapping cron runs wait, or leave at once.

PostgreSQL: a session advisory lock (works across machines sharing the database). Advisory
locks are database-wide, so the key is hashed with the schema: stores in different schemas
of one database do not block each other.
Anything else: an exclusive flock on a file beside the SQLite database (or in the user's
cache folder for other URLs).

The lock is per shard: collectors that split the repos with `--shard I/N` write disjoint
rows and run side by side; two runs of the same shard (or two unsharded runs) exclude
each other.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics.errors import LockedError

ADVISORY_KEY = 0x646D6574  # "dmet": devmetrics' advisory lock id
POLL_SECONDS = 0.5
# The lock key within this store: the shard key hashed with the schema the store lives in.
SCHEMA_KEY = sa.text("SELECT hashtextextended(current_schema() || ':' || CAST(:k AS text), 0)")


@contextmanager
def sync_lock(engine: Engine, wait: bool = True, timeout: float | None = None,
              shard: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold the sync lock (of `shard`) for the block; LockedError if not waiting (or timed out)."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, _advisory_key(shard), wait, timeout):
            yield
    else:
        with _file_lock(lock_path(engine, shard), wait, timeout):
            yield


def _advisory_key(shard: tuple[int, int] | None) -> int:
    return ADVISORY_KEY if shard is None else ADVISORY_KEY + shard[1] * 100_000 + shard[0]


def lock_path(engine: Engine, shard: tuple[int, int] | None = None) -> Path:
    suffix = "" if shard is None else f".shard-{shard[0]}-of-{shard[1]}"
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return Path(database).with_name(Path(database).name + suffix + ".lock")
    digest = hashlib.sha1(engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "devmetrics"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{digest}{suffix}.lock"


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _give_up(wait: bool, deadline: float | None) -> bool:
    return not wait or (deadline is not None and time.monotonic() >= deadline)


@contextmanager
def _file_lock(path: Path, wait: bool, timeout: float | None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = _deadline(timeout)
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if _give_up(wait, deadline):
                    raise LockedError(f"another devmetrics sync is running (lock {path})") from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(engine: Engine, key: int, wait: bool, timeout: float | None) -> Iterator[None]:
    deadline = _deadline(timeout)
    with engine.connect() as conn:
        key = conn.execute(SCHEMA_KEY, {"k": key}).scalar_one()
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if _give_up(wait, deadline):
                raise LockedError("another devmetrics sync is running on this database "
                                  "(PostgreSQL advisory lock)")
            time.sleep(POLL_SECONDS)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
