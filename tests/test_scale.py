"""Scale beyond one machine (docs/scaling.md), proved on the local PostgreSQL server.

- Sharded collectors: `devmetrics sync --shard 1/2` and `--shard 2/2`, started at the same
  time as two processes against one PostgreSQL schema, hold their locks at the same moment
  and together store exactly what one unsharded sync stores, each repo written by one shard.
- The report reads PostgreSQL the same as SQLite: the same records give the same JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from conftest import GITHUB_NOW
from reliability import Forge, dump, forge_process, sync_command, sync_env, write_config
from sqlmodel import SQLModel

from devmetrics.config import parse_config
from devmetrics.lock import SCHEMA_KEY, _advisory_key
from devmetrics.metrics import ReportSettings
from devmetrics.models import Repository
from devmetrics.report import build_report, render_report
from devmetrics.sandbox.server import Sandbox
from devmetrics.store import open_engine
from devmetrics.sync import SyncOptions, in_shard, run_sync

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NOW = GITHUB_NOW.isoformat()
SHARDS = ((1, 2), (2, 2))
SANDBOX_REPOS = (("github", "acme/api"), ("github", "acme/web"), ("gitlab", "acme/platform/app"),
                 ("gitlab", "acme/platform/tools/cli"))
REPO_LINE = re.compile(r"INFO: (\S+): pull_requests|INFO: (\S+): merge_requests")


@pytest.fixture
def second_schema(postgres_schema: str) -> Iterator[str]:
    """Another fresh schema beside `postgres_schema` (for the unsharded reference sync)."""
    schema = postgres_schema.rsplit("%3D", 1)[1] + "_one"
    admin = sa.create_engine(postgres_schema)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema.rsplit("%3D", 1)[0] + f"%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def split_forge() -> Iterator[Forge]:
    """A forge process whose repos fall into both shards.

    The split hashes each repo's host, and the forge's host carries its (random) port: about
    one port in eight puts all four repos in one shard, so such a forge is started again.
    """
    for _ in range(20):
        with forge_process(NOW) as forge:
            host = urlsplit(forge.url).netloc
            repos = [Repository(forge=kind, host=host, full_name=name) for kind, name in SANDBOX_REPOS]
            if all(any(in_shard(repo, shard) for repo in repos) for shard in SHARDS):
                yield forge
                return
    raise AssertionError("no forge port split the sandbox repos over two shards")


def shard_keys(url: str) -> set[int]:
    """The advisory lock keys of the two shards in this store (lock.py: hashed with the schema)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        keys = {conn.execute(SCHEMA_KEY, {"k": _advisory_key(shard)}).scalar_one() for shard in SHARDS}
    engine.dispose()
    return keys


def lock_holders(conn: sa.Connection, keys: set[int]) -> dict[int, int]:
    """key -> backend pid, for the keys that are held right now."""
    rows = conn.execute(sa.text(
        "SELECT pid, (classid::bigint << 32) | objid::bigint AS key FROM pg_locks "
        "WHERE locktype = 'advisory' AND objsubid = 1 AND granted"))
    return {row.key: row.pid for row in rows if row.key in keys}


def watch_overlap(url: str, processes: list[subprocess.Popen[str]], seconds: float = 240) -> bool:
    """True once both shard locks are held at the same moment by two different sessions."""
    keys, engine = shard_keys(url), sa.create_engine(url)
    deadline = time.monotonic() + seconds
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline and any(p.poll() is None for p in processes):
                holders = lock_holders(conn, keys)
                conn.rollback()
                if len(holders) == 2 and len(set(holders.values())) == 2:
                    return True
                time.sleep(0.02)
    finally:
        engine.dispose()
    return False


def synced_repos(stderr: str) -> set[str]:
    """The repos a sync wrote, from its -v progress lines."""
    return {a or b for a, b in REPO_LINE.findall(stderr)}


def run_shards_side_by_side(config: Path, url: str) -> tuple[bool, list[tuple[int, str]]]:
    """Both shards at once; --no-wait, so a shard that found the other's lock would exit 3."""
    processes = [subprocess.Popen(sync_command(config, "--shard", f"{i}/{n}", "--no-wait", "-v"), env=sync_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i, n in SHARDS]
    try:
        overlapped = watch_overlap(url, processes)
        errors = [process.communicate(timeout=240)[1] for process in processes]
        return overlapped, [(process.returncode, err) for process, err in zip(processes, errors, strict=True)]
    finally:
        for process in processes:
            process.kill()


def test_two_shards_at_once_store_what_one_sync_stores(tmp_path: Path, postgres_schema: str,
                                                       second_schema: str) -> None:
    with split_forge() as forge:
        sharded = write_config(tmp_path / "sharded", forge, database_url=postgres_schema)
        whole = write_config(tmp_path / "whole", forge, database_url=second_schema)
        overlapped, shards = run_shards_side_by_side(sharded, postgres_schema)
        single = subprocess.run(sync_command(whole, "-v"), env=sync_env(), capture_output=True, text=True,
                                timeout=240)
    for code, stderr in shards:
        assert code == 0, stderr
        assert "Traceback" not in stderr
    assert single.returncode == 0, single.stderr
    assert overlapped, "the two shards never held their locks at the same moment"
    first, second = (synced_repos(stderr) for _, stderr in shards)
    assert first and second and not first & second
    assert first | second == synced_repos(single.stderr)
    union, expected = dump(postgres_schema), dump(second_schema)
    assert sum(len(rows) for rows in expected.values()) > 1000
    for table, rows in expected.items():
        assert len(union[table]) == len(set(union[table])), f"{table}: duplicate rows"
        assert union[table] == rows, f"{table}: {len(union[table])} rows from two shards, {len(rows)} from one sync"


# ------------------------------------------------------------------------------ report


def sync_into_sqlite(sandbox: Sandbox, path: Path) -> str:
    """The sandbox's GitHub and GitLab repos synced into a fresh SQLite store."""
    url = f"sqlite:///{path}"
    config = parse_config({"database": {"url": url},
                           "github": [{"api_url": sandbox.url + "/github", "token_env": "DM_SCALE_TOKEN",
                                       "repos": ["acme/*"]}],
                           "gitlab": [{"url": sandbox.url + "/gitlab", "token_env": "DM_SCALE_TOKEN",
                                       "projects": ["acme/*"]}]})
    engine = open_engine(url)
    result = run_sync(config, engine, SyncOptions(since=GITHUB_NOW.replace(year=GITHUB_NOW.year - 1), deps=False))
    assert not result.failures, result.failures
    engine.dispose()
    return url


def copy_store(source_url: str, target_url: str) -> None:
    """Every row of every table, ids included, from one store into another (empty) one."""
    source, target = open_engine(source_url), open_engine(target_url)
    with source.connect() as read, target.begin() as write:
        for table in SQLModel.metadata.sorted_tables:
            if table.name != "schema_version":
                rows = [dict(row._mapping) for row in read.execute(sa.select(table))]
                if rows:
                    write.execute(sa.insert(table), rows)
    source.dispose()
    target.dispose()


def report_json(url: str) -> str:
    engine = open_engine(url)
    since, until = date(2026, 8, 1), date(2026, 11, 24)
    report = build_report(engine, ReportSettings(), since, until, by="week")
    engine.dispose()
    return render_report(report, "json")


def test_report_reads_postgres_as_it_reads_sqlite(sandbox: Sandbox, tmp_path: Path, postgres_schema: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_SCALE_TOKEN", "scale-token")
    sqlite_url = sync_into_sqlite(sandbox, tmp_path / "store.db")
    copy_store(sqlite_url, postgres_schema)
    assert dump(postgres_schema) == dump(sqlite_url)
    from_sqlite, from_postgres = report_json(sqlite_url), report_json(postgres_schema)
    overall = json.loads(from_sqlite)["all"]
    assert overall["deployments"] and overall["lead_time_hours"] and overall["pipeline_success_rate"]  # real work
    assert from_postgres == from_sqlite
