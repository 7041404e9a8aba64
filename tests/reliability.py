"""Helpers for the reliability tests: a sandbox forge in its own process, configs, table dumps.

The forge runs in a separate process so a sync can be killed with SIGKILL while the forge
keeps serving, exactly as a real crash would leave it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import SQLModel

from devmetrics import models  # noqa: F401  (registers every table on SQLModel.metadata)

# Bookkeeping columns that record when something ran, not what the forge holds.
WHEN_IT_RAN = {"id", "synced_at", "last_success_at", "evaluated_at", "fetched_at", "taken_at", "applied_at"}
TOKEN_ENV = "DM_RELIABILITY_TOKEN"


@dataclass
class Forge:
    url: str
    registries: dict[str, str]
    process: subprocess.Popen[str]


@contextmanager
def forge_process(now: str) -> Iterator[Forge]:
    """`python -m devmetrics.sandbox` on a free port, with the dataset fixed at `now`."""
    process = subprocess.Popen([sys.executable, "-m", "devmetrics.sandbox", "--now", now],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        registries = {}
        for _ in range(16):
            line = process.stdout.readline().strip()
            if not line or not line.split(" ", 1)[0].isidentifier():
                break
            ecosystem, base = line.split(" ", 1)
            registries[ecosystem] = base
            if len(registries) >= 6:
                break
        yield Forge(url, registries, process)
    finally:
        process.kill()
        process.wait(10)


def write_config(folder: Path, forge: Forge, database_url: str | None = None) -> Path:
    from devmetrics.demo import CONFIG_TEMPLATE

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "devmetrics.toml"
    lines = "\n".join(f'{name} = "{base}"' for name, base in sorted(forge.registries.items()))
    text = CONFIG_TEMPLATE.format(url=forge.url, database=folder / "devmetrics.db", token_env=TOKEN_ENV,
                                  registries=lines)
    # Bounded waits so a forge that stops answering fails a request in seconds, not minutes.
    text += "\n[sync]\ntimeout = 15\nretries = 2\nmax_wait = 5\n"
    if database_url:
        text = text.replace(f'url = "sqlite:///{folder / "devmetrics.db"}"', f'url = "{database_url}"')
    path.write_text(text)
    return path


def sync_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "devmetrics", "sync", "--config", str(config), *args]


def sync_env(token: str = "reliability-token-0000") -> dict[str, str]:
    return {**os.environ, TOKEN_ENV: token, "PYTHONUNBUFFERED": "1"}


def dump(url: str) -> dict[str, list[tuple]]:
    """Every table's rows without bookkeeping columns, sorted: equal dumps mean equal data.

    Dependency snapshots are history, one per completed evaluation, so a killed sync that got
    past its evaluation adds one legitimately: only each repo's latest snapshot is compared.
    """
    engine = sa.create_engine(url)
    tables: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name == "schema_version":
                continue
            columns = [c for c in table.columns if c.name not in WHEN_IT_RAN and not c.name.endswith("repo_id")]
            query = sa.select(*columns, *_repo_name(table))
            if table.name == "dependency_snapshot":
                query = query.where(table.c.taken_at == _latest_snapshot(table))
            tables[table.name] = sorted(tuple(map(repr, row)) for row in conn.execute(query))
    engine.dispose()
    return tables


def _latest_snapshot(table: sa.Table) -> sa.ScalarSelect[object]:
    latest = table.alias("latest")
    return sa.select(sa.func.max(latest.c.taken_at)).where(latest.c.repo_id == table.c.repo_id).scalar_subquery()


def _repo_name(table: sa.Table) -> list[sa.ColumnElement[str]]:
    """Rows refer to repos by surrogate id, which depends on insertion order: compare names."""
    if "repo_id" not in table.columns:
        return []
    repository = SQLModel.metadata.tables["repository"]
    return [sa.select(repository.c.full_name).where(repository.c.id == table.c.repo_id)
            .scalar_subquery().label("repo_name")]
