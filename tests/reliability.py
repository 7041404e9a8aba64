"""Helpers for the reliability tests: a sandbox forge in its own process, configs, table dumps.

The forge runs in a separate process so a sync can be killed with SIGKILL while the forge
keeps serving, exactly as a real crash would leave it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------- kill points that matter

def forge_requests(forge: Forge, at_least: int = 0, timeout: float = 0.0) -> int:
    """Requests the forge process has answered, once at least `at_least` (or `timeout` passed)."""
    url = f"{forge.url}/_sandbox/requests?at_least={at_least}&timeout={timeout}"
    with urllib.request.urlopen(url, timeout=timeout + 30) as answer:
        return int(json.load(answer)["requests"])


# A process that has imported what a sync imports, then forks one child per sync: a kill point
# costs the sync's own work, not the ~1.5 s of Python start-up and imports before its first
# request. Each child runs the real command line (`devmetrics.cli:main`); the parent is
# single-threaded, so forking it is safe.
_ZYGOTE = r"""
import json, os, sys, traceback
import devmetrics.cli, devmetrics.sync, devmetrics.store, devmetrics.lock, devmetrics.progress
import devmetrics.connectors.github, devmetrics.connectors.gitlab, devmetrics.deps.freshness

def child(argv, output):
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 1
    sys.argv = ["devmetrics", *argv]
    try:
        devmetrics.cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

for line in sys.stdin:
    command = json.loads(line)
    if command["do"] == "run":
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            child(command["argv"], command["output"])
        answer = pid
    else:
        found, status = os.waitpid(command["pid"], 0 if command["do"] == "wait" else os.WNOHANG)
        answer = None if found == 0 else os.waitstatus_to_exitcode(status)
    print(json.dumps(answer), flush=True)
"""


class SyncLauncher:
    """Starts `devmetrics sync` processes (forked, see _ZYGOTE), polls, kills and reaps them."""

    def __init__(self, token: str = "reliability-token-0000") -> None:
        self._zygote = subprocess.Popen([sys.executable, "-c", _ZYGOTE], env=sync_env(token),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, **command: object) -> Any:
        assert self._zygote.stdin is not None and self._zygote.stdout is not None
        self._zygote.stdin.write(json.dumps(command) + "\n")
        self._zygote.stdin.flush()
        return json.loads(self._zygote.stdout.readline())

    def start(self, config: Path, output: Path, *args: str) -> int:
        return int(self._ask(do="run", argv=["sync", "--config", str(config), *args], output=str(output)))

    def poll(self, pid: int) -> int | None:
        """The exit status if the sync ended (reaping it), else None."""
        status = self._ask(do="poll", pid=pid)
        return None if status is None else int(status)

    def kill(self, pid: int) -> int:
        os.kill(pid, signal.SIGKILL)
        return int(self._ask(do="wait", pid=pid))

    def wait(self, pid: int) -> int:
        return int(self._ask(do="wait", pid=pid))

    def close(self) -> None:
        assert self._zygote.stdin is not None
        self._zygote.stdin.close()
        self._zygote.wait(30)


STEP_LINE = re.compile(r"^devmetrics: INFO: (\S+/\S+): ([a-z_ ]+)$")


def steps_started(output: Path) -> list[str]:
    """The sync's steps so far ("acme/api: releases"), from its -v output."""
    try:
        text = output.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [f"{m[1]}: {m[2]}" for m in map(STEP_LINE.match, text.splitlines()) if m]
