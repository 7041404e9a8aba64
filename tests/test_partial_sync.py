"""A sync stopped early rewrites nothing it did not finish reading (issue 14, item 11).

A store is filled by a complete sync of two GitHub repos and two GitLab projects. Then, for
each stream and step in turn, a copy of that store is synced again while the forge answers
that step's first request with a rate limit resetting in an hour (past `sync.max_wait`):
the sync stops there. Every stored row outside what that run wrote (the repos it finished,
the streams it read before the stop) must be exactly as before, bookkeeping columns
included; above all the repository rows, whose deployment signal the report reads.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from devmetrics import models, store
from devmetrics.config import Config, parse_config
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import RepoPlan, build_dataset
from devmetrics.sandbox.server import Sandbox
from devmetrics.sync import SyncOptions, SyncResult, run_sync

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PLANS = (RepoPlan("github", "acme/api", prs=25),
         RepoPlan("github", "acme/web", prs=15, environments=False, deploy_workflow="Deploy", manifests=("node",)),
         RepoPlan("gitlab", "acme/app", prs=15, manifests=("python",)),
         RepoPlan("gitlab", "acme/cli", prs=10, environments=False, deploy_workflow="Deploy", releases=0,
                  manifests=("go",)))
TOKEN_ENV = "DM_PARTIAL_TOKEN"
SINCE = datetime(2026, 8, 1, tzinfo=UTC)
REGISTRY_TABLES = {"package_info", "package_version"}  # shared by every repo's dependencies


@dataclass(frozen=True)
class Stop:
    """Where the forge stops the sync: the step's first request is refused."""

    step: str  # the progress step it stops in ("acme/web: releases" names step "releases")
    path: str
    request_body: str | None = None
    forge: str = "github"


GITHUB_WEB = r"/github/repos/acme/web"
STOPS = [
    Stop("repositories", GITHUB_WEB + "$"),
    Stop("pull_requests", "/github/graphql", r'(?s)query PullRequests.*"name": "web"'),
    Stop("deployments", "/github/graphql", r'(?s)query Deployments.*"name": "web"'),
    Stop("workflow_runs", GITHUB_WEB + "/actions/runs"),
    Stop("releases", GITHUB_WEB + "/releases"),
    Stop("incidents", GITHUB_WEB + "/issues"),
    Stop("deployments signal", GITHUB_WEB + "/compare/"),
    Stop("dependencies", GITHUB_WEB + "/git/trees/"),
    Stop("dependencies", GITHUB_WEB + "/contents/"),
    Stop("projects", "/gitlab/api/v4/groups/", forge="gitlab"),
    Stop("merge_requests", r"/gitlab/api/v4/projects/[^/]+/merge_requests\?", forge="gitlab"),
    Stop("merge_requests", "/gitlab/api/graphql", r"mergeRequests\(iids", forge="gitlab"),
    Stop("deployments", "/gitlab/api/v4/projects/[^/]+/deployments", forge="gitlab"),
    Stop("deploy_jobs", "/gitlab/api/v4/projects/[^/]+/jobs", forge="gitlab"),
    Stop("pipelines", r"/gitlab/api/v4/projects/[^/]+/pipelines\?", forge="gitlab"),
    Stop("pipelines", "/gitlab/api/graphql", r"pipeline\(iid", forge="gitlab"),
    Stop("releases", "/gitlab/api/v4/projects/[^/]+/releases", forge="gitlab"),
    Stop("incidents", "/gitlab/api/v4/projects/[^/]+/issues", forge="gitlab"),
    Stop("deployments signal", "/gitlab/api/v4/projects/[^/]+/repository/compare", forge="gitlab"),
    Stop("dependencies", "/gitlab/api/v4/projects/[^/]+/repository/tree", forge="gitlab"),
    Stop("dependencies", "/gitlab/api/v4/projects/[^/]+/repository/files/", forge="gitlab"),
]


def rate_limit_answer(stop: Stop) -> dict[str, Any]:
    """The forge's answer once the budget is gone, resetting in an hour (max_wait is 5 s)."""
    reset = str(int(time.time()) + 3600)
    if stop.forge == "gitlab":
        return {"status": 429, "body": {"message": "Retry later"},
                "headers": {"RateLimit-Remaining": "0", "RateLimit-Reset": reset, "Retry-After": "3600"}}
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset,
               "X-RateLimit-Resource": "graphql" if stop.request_body else "core"}
    if stop.request_body:  # GraphQL says so in a 200 answer
        return {"status": 200, "headers": headers, "body": {"errors": [
            {"type": "RATE_LIMITED", "message": "API rate limit already exceeded for user ID 1."}]}}
    return {"status": 403, "headers": headers, "body": {"message": "API rate limit exceeded for user ID 1."}}


@pytest.fixture(scope="module")
def forge() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    sandbox, registries = build_sandbox(build_dataset(now=NOW, plans=PLANS))
    with sandbox:
        yield sandbox, registries


def config_for(forge: tuple[Sandbox, dict[str, str]], database: Path) -> Config:
    sandbox, registries = forge
    return parse_config({
        "database": {"url": f"sqlite:///{database}"},
        "sync": {"timeout": 20.0, "retries": 2, "max_wait": 5.0},
        "registries": registries,
        "github": [{"api_url": f"{sandbox.url}/github", "token_env": TOKEN_ENV, "repos": ["acme/api", "acme/web"],
                    "overrides": {"acme/web": {"workflow": "Deploy"}}}],
        "gitlab": [{"url": f"{sandbox.url}/gitlab", "token_env": TOKEN_ENV, "projects": ["acme/*"],
                    "overrides": {"acme/cli": {"workflow": "deploy"}}}],
    })


def sync(config: Config, steps: list[str] | None = None) -> SyncResult:
    engine = store.open_engine(config.database.url)
    try:
        return run_sync(config, engine, SyncOptions(since=SINCE), progress=steps.append if steps is not None else None)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def filled(forge: tuple[Sandbox, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after one complete sync (every repo has a signal, dependencies, cursors)."""
    database = tmp_path_factory.mktemp("filled") / "dm.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, "partial-token-1234")
        result = sync(config_for(forge, database))
    assert result.failures == [] and result.stopped is None
    return database


def rows(engine: Engine) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every table, all columns, by primary key (a copy keeps the ids)."""
    tables: dict[str, dict[Any, dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            key = [c.name for c in table.primary_key.columns]
            tables[table.name] = {tuple(r[k] for k in key): dict(r)
                                  for r in conn.execute(sa.select(table)).mappings()}
    return tables


# What each step writes. Streams and the signal step write as they go (pages, then the
# decision and what each deployment shipped); dependencies replace a repo's rows at the end.
STEP_TABLES = {
    "pull_requests": {"pull_request"}, "merge_requests": {"pull_request"}, "deployments": {"deployment"},
    "deploy_jobs": {"deployment"}, "workflow_runs": {"pipeline_run"}, "pipelines": {"pipeline_run"},
    "releases": {"release"}, "incidents": {"incident"},
    "deployments signal": {"repository", "deployment", "deployment_commit"},
    "dependencies": {"dependency", "dependency_snapshot", *REGISTRY_TABLES},
}
WRITES_AS_IT_GOES = set(STEP_TABLES) - {"dependencies"}


def steps_written(result: SyncResult, steps: list[str]) -> dict[str, set[str]]:
    """repo -> the steps whose writes this run may have made: those it finished, and the one
    it stopped in if that one writes as it goes."""
    written: dict[str, set[str]] = {}
    for finished in result.streams:
        written.setdefault(finished.repo, set()).add("deployments signal" if finished.stream == "signal"
                                                     else finished.stream)
    repo, step = steps[-1].split(": ", 1) if steps else ("", "")
    if step in WRITES_AS_IT_GOES:
        written.setdefault(repo, set()).add(step)
    return written


def outside(tables: dict[str, dict[Any, dict[str, Any]]], repos: dict[int, str],
            written: dict[str, set[str]]) -> dict[str, dict[Any, dict[str, Any]]]:
    """The rows the stopped run had no business writing."""
    registries = any("dependencies" in done for done in written.values())

    def wrote(table: str, row: dict[str, Any]) -> bool:
        if table in REGISTRY_TABLES:
            return registries
        repo = row["full_name"] if table == "repository" else (
            row["repo"] if table == "sync_state" else repos.get(row.get("repo_id", -1)))
        done = written.get(repo or "", set())
        if table == "sync_state":
            return row["stream"] in done
        return any(table in STEP_TABLES.get(step, set()) for step in done)

    return {table: {k: r for k, r in found.items() if not wrote(table, r)} for table, found in tables.items()}


def forget_compare_ranges(engine: Engine, forge: str, repo: str | None) -> None:
    """A filled store knows every range; drop some so that the sync asks for them again."""
    commits, repos = models.DeploymentCommit.__table__, models.Repository.__table__  # type: ignore[attr-defined]
    chosen = sa.select(repos.c.id).where(repos.c.forge == forge, *([repos.c.full_name == repo] if repo else []))
    with engine.begin() as conn:
        conn.execute(sa.delete(commits).where(commits.c.repo_id.in_(chosen)))


@pytest.mark.parametrize("stop", STOPS, ids=[f"{s.forge}:{s.step}:{s.request_body or s.path}" for s in STOPS])
def test_a_sync_stopped_by_a_rate_limit_rewrites_nothing_it_did_not_read(
        stop: Stop, forge: tuple[Sandbox, dict[str, str]], filled: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, _ = forge
    monkeypatch.setenv(TOKEN_ENV, "partial-token-1234")
    database = tmp_path / "dm.db"
    shutil.copy(filled, database)
    engine = store.open_engine(f"sqlite:///{database}")
    if stop.step == "deployments signal":
        forget_compare_ranges(engine, stop.forge, "acme/web" if stop.forge == "github" else None)
    before = rows(engine)
    repos = {r["id"]: r["full_name"] for r in before["repository"].values()}
    steps: list[str] = []
    sandbox.faults.clear()
    fault = sandbox.faults.add(path=stop.path, method=None, request_body=stop.request_body, times=None,
                               **rate_limit_answer(stop))
    try:
        result = sync(config_for(forge, database), steps)
    finally:
        sandbox.faults.clear()
    assert fault.hits >= 1 and result.stopped and "retry after" in result.stopped, (result.stopped, result.failures)
    if stop.step not in ("repositories", "projects"):
        assert steps[-1].endswith(f": {stop.step}"), steps[-3:]
    after = rows(engine)
    engine.dispose()
    written = steps_written(result, steps)
    kept_before, kept_after = outside(before, repos, written), outside(after, repos, written)
    for table, found in kept_before.items():
        assert kept_after[table] == found, f"{table}: rows outside what the stopped run wrote changed"
    assert all(r["deployment_signal"] for r in after["repository"].values())


def test_a_failed_stream_leaves_the_auto_signal_undecided(forge: tuple[Sandbox, dict[str, str]], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """auto takes the first signal with data: with acme/api's deployments unread it would take
    releases. The row keeps no signal until a sync reads the deployments to the end."""
    sandbox, _ = forge
    monkeypatch.setenv(TOKEN_ENV, "partial-token-1234")
    config = config_for(forge, tmp_path / "dm.db")
    sandbox.faults.clear()
    sandbox.faults.add(path="/github/graphql", request_body=r'(?s)query Deployments.*"name": "api"', status=503,
                       times=None)
    try:
        failed = sync(config)
    finally:
        sandbox.faults.clear()
    assert [(f.repo, f.stream) for f in failed.failures] == [("acme/api", "deployments")]
    assert signals(config) ["acme/api"] is None
    assert sync(config).failures == []
    assert signals(config)["acme/api"] == "environments"


def signals(config: Config) -> dict[str, str | None]:
    engine = store.open_engine(config.database.url)
    with engine.connect() as conn:
        found = {r.full_name: r.deployment_signal for r in conn.execute(sa.select(models.Repository.__table__))}
    engine.dispose()
    return found
