"""Shared fixtures. Each owner adds its own below; nothing here reaches the internet."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from devmetrics.clock import NOW_ENV
from devmetrics.sandbox.dataset import Dataset, build_dataset
from devmetrics.sandbox.github import GitHubApp
from devmetrics.sandbox.server import Sandbox, serving

# The one "now" of the suite. Every test process, and every process a test starts, reads it
# through devmetrics.clock, so no result depends on the day the suite runs (CI also runs the
# suite with the system clock moved 400 days ahead to prove it: .ci/run).
TEST_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
os.environ[NOW_ENV] = TEST_NOW.isoformat()
# What a test that builds a subprocess's environment from scratch must pass on: the pinned
# clock, and the clock move of CI's second run (tests/clock_ahead/sitecustomize.py).
CLOCK_AHEAD_ENV = "DEVMETRICS_TEST_CLOCK_AHEAD_DAYS"
CLOCK_VARIABLES = (NOW_ENV, CLOCK_AHEAD_ENV, "PYTHONPATH")


def check_clock_moved() -> None:
    """With CLOCK_AHEAD_ENV set the system clock must really be moved: a run that silently
    kept today's clock would prove nothing."""
    days = os.environ.get(CLOCK_AHEAD_ENV)
    if not days:
        return
    from time_machine import escape_hatch

    ahead = datetime.now(UTC) - escape_hatch.datetime.datetime.now(UTC)
    assert abs(ahead.total_seconds() - int(days) * 86400) < 3600, (
        f"{CLOCK_AHEAD_ENV}={days} but the clock is {ahead} ahead: is tests/clock_ahead on PYTHONPATH?")


check_clock_moved()


def clock_env() -> dict[str, str]:
    """The clock variables of this process, for a subprocess environment built from scratch."""
    return {k: os.environ[k] for k in CLOCK_VARIABLES if k in os.environ}

POSTGRES_URL = os.environ.get("DEVMETRICS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A URL to a fresh schema in the local PostgreSQL (dropped afterwards).

    Outside CI a machine without the server skips these tests, saying why; in CI
    (CI=true) an unreachable server is a failure, so the PostgreSQL store is always proved.
    """
    admin = sa.create_engine(POSTGRES_URL)
    try:
        admin.connect().close()
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}")
    schema = f"dm_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# ---------------------------------------------------------------------------- GitLab

GITLAB_NOW = TEST_NOW  # the same dataset every run


@pytest.fixture(scope="session")
def gitlab_dataset() -> Dataset:
    """The default seeded dataset (GitLab: acme/platform/app and the subgroup's tools/cli)."""
    return build_dataset(now=GITLAB_NOW)


@pytest.fixture
def gitlab_sandbox(gitlab_dataset: Dataset) -> Iterator[Sandbox]:
    """GitLab REST v4 + GraphQL at <url>/gitlab, fresh counts and faults for each test."""
    from devmetrics.sandbox.gitlab import GitLabApp

    with serving([("/gitlab", GitLabApp(gitlab_dataset))]) as sandbox:
        yield sandbox


# ---------------------------------------------------------------------------- GitHub

GITHUB_NOW = TEST_NOW  # the same dataset every run


@pytest.fixture
def dataset() -> Dataset:
    """The default seeded dataset, fresh per test (GitHub tests change it: late statuses)."""
    return build_dataset(now=GITHUB_NOW)


@pytest.fixture
def sandbox(dataset: Dataset) -> Iterator[Sandbox]:
    """GitHub at <url>/github (REST, /graphql, Enterprise /api/v3 + /api/graphql) and GitLab
    at <url>/gitlab, over one dataset; fresh counts, budgets and faults for each test."""
    from devmetrics.sandbox.gitlab import GitLabApp

    with serving([("/github", GitHubApp(dataset)), ("/gitlab", GitLabApp(dataset))]) as server:
        yield server


@pytest.fixture
def github_app(sandbox: Sandbox) -> GitHubApp:
    """The sandbox's GitHubApp (budgets, graphql_queries, capped)."""
    app = dict(sandbox.apps)["/github"]
    assert isinstance(app, GitHubApp)
    return app
