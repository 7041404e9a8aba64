"""Helpers shared by the GitHub tests: a connector on the sandbox, records of a fetch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from conftest import TEST_NOW

from devmetrics.config import GitHubSource, SyncSection
from devmetrics.connectors.base import Batch
from devmetrics.connectors.github import GitHubConnector
from devmetrics.models import Repository
from devmetrics.sandbox.server import Sandbox

TOKEN = "ghp_sandboxTOKENnever"  # must never show in a message, log or exception

NOW = TEST_NOW


def connect(sandbox: Sandbox, repos: list[str] | None = None, path: str = "/github",
            sync: SyncSection | None = None, **source: Any) -> GitHubConnector:
    config = GitHubSource(api_url=sandbox.url + path, repos=repos or ["acme/*"], **source)
    return GitHubConnector(config, sync or SyncSection(), TOKEN)


def repo_record(connector: GitHubConnector, full_name: str) -> Repository:
    return next(r for r in connector.list_repos() if r.full_name == full_name)


def sec(at: datetime | None) -> datetime | None:
    """GitHub gives times to the second; the dataset keeps microseconds."""
    return at.replace(microsecond=0) if at else None


def records(batches: Iterator[Batch]) -> tuple[list[Any], datetime | None]:
    """All records of a fetch, and the cursor they cover (as sync.py computes it)."""
    found, cursor = [], None
    for batch in batches:
        found += batch.records
        cursor = max(filter(None, (cursor, batch.cursor)), default=None)
    return found, cursor
