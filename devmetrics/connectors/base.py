"""What a forge connector is: streams declared as data, records out, no database.

`sync.py` drives every connector the same way: resolve the repos, then for each declared
stream ask for the records changed since the stream's cursor (minus its lookback), write
them, and move the cursor after they are committed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import SQLModel

from devmetrics.models import Repository


@dataclass(frozen=True)
class Stream:
    """One kind of record a connector reads, declared as data.

    server_side_filter: the API filters by time itself (`since=`, `updated_after=`, the
    `created=` range); otherwise the connector pages newest-first and stops at the cursor.
    lookback: whether re-reading the last `sync.lookback_days` matters (items that change
    late: deployment statuses, PRs that get merged, incidents that get resolved).
    signal: the deployment signal (signals.py) whose data this stream reads, if any; `auto`
    is decided again only when every such stream was read to its end.
    """

    name: str
    model: type[SQLModel]
    cursor_field: str
    server_side_filter: bool
    lookback: bool = True
    signal: str | None = None


@dataclass
class Batch:
    """Records of one page, plus the cursor value they cover (max of cursor_field)."""

    records: list[SQLModel]
    cursor: datetime | None = None


class Connector(Protocol):
    """A forge connector: GitHub or GitLab, one configured source."""

    source_key: str  # "github:github.com", "gitlab:gitlab.example.com": SyncState.source

    @property
    def streams(self) -> Sequence[Stream]:
        """The streams this connector reads, declared as data."""
        ...

    def list_repos(self, entries: Sequence[str] | None = None) -> list[Repository]:
        """The configured repos (or just `entries`), wildcards expanded, archived/forks
        filtered per config."""
        ...

    def fetch(self, repo: Repository, stream: str, since: datetime | None) -> Iterator[Batch]:
        """Records of `stream` changed at or after `since` (None: everything), page by page."""
        ...

    def compare(self, repo: Repository, base_sha: str, head_sha: str) -> list[str]:
        """Shas of the commits in base..head (what a deployment shipped)."""
        ...

    def list_files(self, repo: Repository) -> list[str]:
        """Paths of every file on the default branch (one tree request)."""
        ...

    def read_file(self, repo: Repository, path: str) -> bytes:
        """One file's content on the default branch."""
        ...

    def request_count(self) -> int:
        """HTTP requests made so far (rate limits are what users run out of first)."""
        ...
