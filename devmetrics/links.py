"""References in forge text: which PR a revert undoes, which sha or PR an incident names.

Both connectors use these so GitHub and GitLab records link the same way (metrics.md §3).
"""

from __future__ import annotations

import re

_REVERT_BRANCH = re.compile(r"^revert-(\d+)-")  # GitHub's "Revert" button names the branch so
_REVERTS_BODY = re.compile(r"\bReverts\s+[\w.\-/]+[#!](\d+)")  # "Reverts owner/repo#12" (GitLab: !12)
_REVERT_TITLE = re.compile(r'^Revert "(.*)"$')
_SHA = re.compile(r"\b[0-9a-f]{7,40}\b")
_PR_REF = re.compile(r"(?:^|[\s(])[#!](\d+)\b")


def reverted_number(title: str, head_branch: str | None, body: str | None,
                    titles: dict[str, int] | None = None) -> int | None:
    """The number of the PR this one reverts, or None when it is not a revert.

    `titles` maps PR titles to numbers, for a bare `Revert "<title>"` with no other clue.
    """
    for pattern, text in ((_REVERTS_BODY, body or ""), (_REVERT_BRANCH, head_branch or "")):
        found = pattern.search(text)
        if found:
            return int(found.group(1))
    found = _REVERT_TITLE.match(title or "")
    if found and titles:
        return titles.get(found.group(1))
    return None


def is_revert_title(title: str) -> bool:
    return bool(_REVERT_TITLE.match(title or ""))


def named_sha(body: str | None) -> str | None:
    """The first commit sha (7–40 hex digits, with at least one letter and one digit) in a text."""
    for found in _SHA.finditer(body or ""):
        text = found.group(0)
        if re.search(r"[a-f]", text) and re.search(r"\d", text):
            return text
    return None


def named_pr(body: str | None) -> int | None:
    """The first `#123` (GitHub) or `!123` (GitLab MR) reference in a text."""
    found = _PR_REF.search(body or "")
    return int(found.group(1)) if found else None


def is_bot(login: str | None, account_type: str | None = None, extra: tuple[str, ...] = ()) -> bool:
    """A bot: account type Bot, a login ending in [bot], or listed in the config."""
    if not login:
        return False
    return (account_type or "").lower() == "bot" or login.endswith("[bot]") or login in extra
