"""Make text from the forge harmless in a digest: Markdown, HTML and Slack mrkdwn.

Titles, names and labels are written by anyone who can open an issue, so a digest must not
let them break a table (`|`, newlines), inject HTML (`<script>`), or ping and cross-link
(`@team`, `#12`, `!12`, `owner/repo#12`): GitHub turns those into notifications and
back-references on the referenced issue, which a weekly bot post must never cause.

A zero-width joiner (U+200D) after `@`, `#` or `!` keeps the text readable while GitHub's
and Slack's reference parsers no longer see a mention or a reference.

    markdown_text(value) -> str      # inline Markdown (tables, lists, headings)
    slack_text(value) -> str         # Slack mrkdwn
    markdown_link(text, url) -> str  # [text](url) with both parts made safe
"""

from __future__ import annotations

import html
import re

from devmetrics.secrets import redact

ZWJ = "\u200d"

# `@name` and `@org/team`, `#12`, `!12` (GitLab MRs), `GH-12`: each starts a reference.
_MENTION = re.compile(r"@(?=[\w-])")
_REFERENCE = re.compile(r"([#!])(?=\d)")
_GH_REFERENCE = re.compile(r"\b(GH)-(?=\d)", re.IGNORECASE)
# Markdown that would change how the rest of the line renders (emphasis, links, code).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_WHITESPACE = re.compile(r"\s+")


def neutralise_references(value: str) -> str:
    """`@team`, `#12`, `!12`, `GH-12` no longer notify or link anyone."""
    value = _MENTION.sub("@" + ZWJ, value)
    value = _REFERENCE.sub(r"\1" + ZWJ, value)
    return _GH_REFERENCE.sub(r"\1-" + ZWJ, value)


def one_line(value: object) -> str:
    """Any whitespace run (newlines included) becomes one space: a table row stays one row.

    Secrets are masked first (devmetrics/secrets.py): escaping would change a token's spelling
    (`ghp\\_...`) so that no later pass could recognise it."""
    return _WHITESPACE.sub(" ", redact(str(value if value is not None else ""))).strip()


def markdown_text(value: object) -> str:
    """Inline-safe Markdown: no HTML, no table break, no emphasis or link, no ping."""
    text = html.escape(one_line(value), quote=True)
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return neutralise_references(text)


def slack_text(value: object) -> str:
    """Slack mrkdwn: `&`, `<`, `>` escaped as Slack asks (no `<!channel>`), no ping."""
    text = one_line(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([*_~`])", ZWJ + r"\1", text)
    return neutralise_references(text)


def safe_url(url: object) -> str | None:
    """An http(s) URL fit for a Markdown link target, else None (javascript:, spaces, …)."""
    text = redact(str(url or "").strip())
    if not re.fullmatch(r"https?://[^\s<>()\"'`]+", text):
        return None
    return text


def markdown_link(text: object, url: object) -> str:
    """`[text](url)` with both parts safe; plain escaped text when the URL is unusable."""
    target = safe_url(url)
    label = markdown_text(text) or "link"
    return f"[{label}]({target})" if target else label


def slack_link(text: object, url: object) -> str:
    """`<url|text>` in Slack's syntax, or the escaped text alone."""
    target = safe_url(url)
    label = slack_text(text).replace("|", "\u2223") or "link"
    return f"<{target}|{label}>" if target else label
