"""Work in progress, a snapshot at the window's end (metrics.md, revision 2026-12-02).

Every other figure is about merged PRs and finished deployments: it lags. These count the
PRs still open at `until`, how old they are, which went quiet and which wait for a first
response, so a team can act on them this week.
"""

from __future__ import annotations

import pandas as pd

from devmetrics.metrics import Window
from devmetrics.metrics.flow import bot_logins, into_default_branch
from devmetrics.metrics.stats import HOUR, Summary, count, distribution

COLUMNS = ["repo_id", "number", "author", "created_at", "ready", "first_review_at", "merged_at", "closed_at",
           "updated_at", "stale_from"]


def work_in_progress(
    prs: pd.DataFrame, repos: pd.DataFrame, bots: tuple[str, ...], stale_after_days: float
) -> pd.DataFrame:
    """PRs into the default branch that are neither a bot's nor a draft (as of the last sync).

    `ready` is when the PR last left draft (else its creation); `stale_from` is when it turns
    stale: `stale_after_days` after its last activity (`updated_at`, else its creation).
    """
    draft = prs["draft"].fillna(False).astype(bool)
    out = prs[into_default_branch(prs, repos) & ~draft & prs["created_at"].notna()]
    out = out[~(out["author_is_bot"].fillna(False).astype(bool) | bot_logins(out["author"], bots))]
    last = out["updated_at"].fillna(out["created_at"])
    return out.assign(
        ready=out["ready_at"].fillna(out["created_at"]),
        stale_from=last + pd.Timedelta(days=stale_after_days),
    )[COLUMNS]


def open_at(prs: pd.DataFrame, until: pd.Timestamp) -> pd.Series:
    """Created before `until` and neither merged nor closed before it (NaT compares False)."""
    return (prs["created_at"] < until) & ~(prs["merged_at"] < until) & ~(prs["closed_at"] < until)


def waiting_at(prs: pd.DataFrame, until: pd.Timestamp) -> pd.Series:
    """Open, ready before `until` and without a first response before it.

    A PR that left draft only at or after `until` was a draft then: it waited for no one, and
    `until - ready` would be negative (as for every PR readied on the report's last day).
    """
    return open_at(prs, until) & (prs["ready"] < until) & ~(prs["first_review_at"] < until)


def summarise_work_in_progress(prs: pd.DataFrame, window: Window, keys: pd.Series) -> Summary:
    """open_pull_requests, their age, stale_pull_requests, waiting_for_review and its hours."""
    until = window.until
    opened, waiting = open_at(prs, until), waiting_at(prs, until)
    stale = opened & (prs["stale_from"] < until)
    return {
        "open_pull_requests": count(opened, keys),
        "open_pull_request_age_hours": distribution((until - prs.loc[opened, "created_at"]) / HOUR, keys[opened]),
        "stale_pull_requests": count(stale, keys),
        "waiting_for_review": count(waiting, keys),
        "waiting_for_review_hours": distribution((until - prs.loc[waiting, "ready"]) / HOUR, keys[waiting]),
    }
