"""render_digest: the digest dict as Markdown, JSON or Slack mrkdwn."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from devmetrics.digest.markdown import render_markdown
from devmetrics.digest.slack import render_slack
from devmetrics.errors import ConfigError

Format = Literal["markdown", "json", "slack"]


def render_json(digest: Mapping[str, Any]) -> str:
    return json.dumps(digest, indent=2, ensure_ascii=False, default=str) + "\n"


def render_digest(digest: Mapping[str, Any], fmt: Format = "markdown") -> str:
    """The digest as GitHub Markdown (with Mermaid charts), JSON, or Slack mrkdwn."""
    renderers: dict[str, Callable[[Mapping[str, Any]], str]] = {
        "markdown": render_markdown, "json": render_json, "slack": render_slack}
    if fmt not in renderers:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(renderers)}")
    return renderers[fmt](digest)
