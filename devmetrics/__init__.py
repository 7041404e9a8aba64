"""devmetrics: engineering delivery metrics from GitHub and GitLab, kept in SQLite."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("devmetrics")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
