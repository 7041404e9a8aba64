"""Faults from the sandbox's injection hooks, through the whole sync (issue 8, item 2).

Every fault hits acme/api only. The promise: the sync either completes, or reports a
failure naming acme/api and the stream; acme/web is still synced; and no cursor is past
what is stored (a failed stream keeps its old cursor).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.config import Config, parse_config
from devmetrics.models import Dependency, PullRequest, Repository, SyncState
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import RepoPlan, build_dataset
from devmetrics.sandbox.server import Sandbox
from devmetrics.sync import SyncOptions, SyncResult, run_sync

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
PLANS = (RepoPlan("github", "acme/api", prs=30),
         RepoPlan("github", "acme/web", prs=20, environments=False, deploy_workflow="Deploy", manifests=("node",)))
TOKEN_ENV = "DM_FAULTS_TOKEN"


@pytest.fixture(scope="module")
def forge() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    sandbox, registries = build_sandbox(build_dataset(now=NOW, plans=PLANS))
    with sandbox:
        yield sandbox, registries


@pytest.fixture
def setup(forge: tuple[Sandbox, dict[str, str]], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Config, Engine]]:
    sandbox, registries = forge
    monkeypatch.setenv(TOKEN_ENV, "faults-token-1234")
    config = parse_config({
        "database": {"url": f"sqlite:///{tmp_path}/dm.db"},
        "sync": {"timeout": 20.0, "retries": 2, "max_wait": 3.0},  # generous: CI machines are loaded
        "registries": registries,
        "github": [{"api_url": f"{sandbox.url}/github", "token_env": TOKEN_ENV, "repos": ["acme/api", "acme/web"],
                    "overrides": {"acme/web": {"workflow": "Deploy"}}}],
    })
    sandbox.faults.clear()
    yield sandbox, config, store.open_engine(config.database.url)
    sandbox.faults.clear()


def sync(config: Config, engine: Engine, deps: bool = False) -> SyncResult:
    return run_sync(config, engine, SyncOptions(since=datetime(2026, 8, 1, tzinfo=UTC), deps=deps))


def cursors(engine: Engine) -> dict[tuple[str, str], datetime]:
    with engine.connect() as conn:
        return {(s.repo, s.stream): s.cursor for s in conn.execute(sa.select(SyncState.__table__))}


def newest_stored_pr(engine: Engine, repo: str) -> datetime | None:
    prs, repos = PullRequest.__table__, Repository.__table__  # type: ignore[attr-defined]
    query = sa.select(sa.func.max(prs.c.updated_at)).join(repos, repos.c.id == prs.c.repo_id).where(
        repos.c.full_name == repo)
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def assert_promise(result: SyncResult, engine: Engine, failed_stream: str | None) -> None:
    failures = [(f.repo, f.stream) for f in result.failures]
    if failed_stream is None:
        assert failures == [], result.failures
    else:
        assert failures == [("acme/api", failed_stream)], result.failures
        assert "acme/api" in (result.failures[0].error or "") or failed_stream in (result.failures[0].error or "")
        assert ("acme/api", failed_stream) not in cursors(engine)  # never past what is stored
    assert ("acme/web", "pull_requests") in cursors(engine)  # the other repo is synced
    for repo in ("acme/api", "acme/web"):
        cursor = cursors(engine).get((repo, "pull_requests"))
        assert cursor is None or cursor <= newest_stored_pr(engine, repo)  # type: ignore[operator]


# (name, fault keyword arguments, the stream expected to fail or None when it completes)
FAULTS: list[tuple[str, dict[str, Any], str | None]] = [
    ("5xx burst is retried", {"path": r"/github/repos/acme/api/releases", "status": 502, "times": 2}, None),
    ("5xx that never ends", {"path": r"/github/repos/acme/api/releases", "status": 503, "times": None}, "releases"),
    ("429 with Retry-After", {"path": r"/github/repos/acme/api/issues", "status": 429,
                              "headers": {"Retry-After": "1"}, "times": 1}, None),
    ("403 secondary limit", {"path": r"/github/repos/acme/api/deployments", "status": 403, "times": 1,
                             "headers": {"Retry-After": "1"},
                             "body": {"message": "You have exceeded a secondary rate limit."}}, None),
    ("connection resets", {"path": r"/github/repos/acme/api/actions/runs", "reset": True, "times": 2}, None),
    ("slow past the timeout", {"path": r"/github/repos/acme/api/releases", "delay": 2.5, "reset": True,
                               "times": None}, "releases"),
    ("malformed JSON", {"path": r"/github/repos/acme/api/issues", "malformed": True, "times": None}, "incidents"),
]


@pytest.mark.parametrize(("name", "fault", "failed_stream"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_is_survived_or_named(name: str, fault: dict[str, Any], failed_stream: str | None,
                                    setup: tuple[Sandbox, Config, Engine]) -> None:
    sandbox, config, engine = setup
    if fault.get("delay"):  # only this case wants a short timeout, for its delay to pass it
        config = config.model_copy(update={"sync": config.sync.model_copy(update={"timeout": 1.0})})
    sandbox.faults.add(**fault)
    assert_promise(sync(config, engine), engine, failed_stream)


def test_graphql_partial_errors_fail_only_that_stream(setup: tuple[Sandbox, Config, Engine]) -> None:
    sandbox, config, engine = setup
    # GitHub answers 200 with data *and* errors when part of a query fails.
    sandbox.faults.add(path=r"/github/graphql", method="POST", status=200, times=1,
                       body={"data": {"repository": None},
                             "errors": [{"type": "SERVICE_UNAVAILABLE", "message": "Something went wrong",
                                         "path": ["repository", "pullRequests"]}]})
    result = sync(config, engine)
    assert [(f.repo, f.stream) for f in result.failures] == [("acme/api", "pull_requests")]
    assert "Something went wrong" in (result.failures[0].error or "")
    assert ("acme/api", "pull_requests") not in cursors(engine)
    assert ("acme/web", "pull_requests") in cursors(engine)


def test_empty_repository_409_has_no_dependencies(setup: tuple[Sandbox, Config, Engine]) -> None:
    sandbox, config, engine = setup
    sandbox.faults.add(path=r"/github/repos/acme/api/git/trees", status=409, times=None,
                       body={"message": "Git Repository is empty."})
    result = sync(config, engine, deps=True)
    assert result.failures == []
    with engine.connect() as conn:
        repos = {r.id: r.full_name for r in conn.execute(sa.select(Repository.__table__))}
        deps = [repos[d.repo_id] for d in conn.execute(sa.select(Dependency.__table__))]
    assert "acme/api" not in deps and "acme/web" in deps


def test_vanished_repository_is_named_and_the_rest_synced(setup: tuple[Sandbox, Config, Engine]) -> None:
    sandbox, config, engine = setup
    config = config.model_copy(update={"github": [config.github[0].model_copy(
        update={"repos": ["acme/vanished", "acme/web"]})]})
    result = sync(config, engine)
    assert result.failures and all("acme/vanished" in (f.repo + (f.error or "")) for f in result.failures)
    assert ("acme/web", "pull_requests") in cursors(engine)


def test_registry_down_counts_unknown_and_the_rest_is_evaluated(setup: tuple[Sandbox, Config, Engine]) -> None:
    sandbox, config, engine = setup
    sandbox.faults.add(path=r"/registries/pypi/", status=503, times=None)
    result = sync(config, engine, deps=True)
    assert result.failures == []
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(Dependency.__table__)))
    by_status = {(r.ecosystem, r.status) for r in rows}
    assert ("pypi", "unknown") in by_status and ("npm", "ok") in by_status
