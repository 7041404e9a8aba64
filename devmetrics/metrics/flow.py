"""Flow metrics (metrics.md §4): which deployment shipped each PR, lead and cycle time."""

from __future__ import annotations

import pandas as pd

from devmetrics.metrics import Window
from devmetrics.metrics.keys import asof_positions, take
from devmetrics.metrics.stats import Summary, count, distribution, first_true, hours, lookup, ratio

STAGES = ("coding", "pickup", "review", "deploy")


def merged_into_default(prs: pd.DataFrame, repos: pd.DataFrame, bots: tuple[str, ...]) -> pd.DataFrame:
    """Merged PRs into the default branch; `counted` marks the non-bot, non-draft ones.

    Bot and draft PRs stay in the frame: a bot PR that is reverted still marks a failure.
    """
    out = prs[prs["merged_at"].notna() & into_default_branch(prs, repos)]
    bot = out["author_is_bot"].fillna(False).astype(bool) | bot_logins(out["author"], bots)
    first = out["first_commit_at"]
    return out.assign(
        counted=~bot & ~out["draft"].fillna(False).astype(bool),
        # A rebase or squash can make the first commit postdate the PR: then creation starts it.
        start=first.where(first < out["created_at"], out["created_at"]),
    )


def into_default_branch(prs: pd.DataFrame, repos: pd.DataFrame) -> pd.Series:
    """Whether each PR targets its repo's default branch (any branch when it is unknown)."""
    default = lookup(repos.set_index("id")["default_branch"], prs["repo_id"])
    return default.isna() | (prs["base_branch"] == default).fillna(False).astype(bool)


def bot_logins(authors: pd.Series, bots: tuple[str, ...]) -> pd.Series:
    """Logins ending in [bot] or listed in the config."""
    text = authors if authors.dtype == "str" else authors.astype("str")
    return (text.isin(bots) | text.str.endswith("[bot]")).fillna(False).astype(bool)


def _commit_links(prs: pd.DataFrame, shipments: pd.DataFrame) -> pd.DataFrame:
    """The first successful deployment whose range holds the PR's merge commit."""
    return shipments.reindex(prs["sha_key"].array).set_axis(prs.index)  # <NA> finds no row


def _time_links(prs: pd.DataFrame, successful: pd.DataFrame) -> pd.DataFrame:
    """The first successful deployment created at or after the merge, if its range is unknown."""
    right = successful.loc[successful["created_at"].notna(), ["id", "finished_at", "no_range"]]
    ordered = successful.loc[right.index]
    found = asof_positions(
        (prs["repo_id"], prs["merged_at"]), (ordered["repo_id"], ordered["created_at"]), forward=True, strict=False
    )
    hit = take(right, found, prs.index)
    usable = hit["no_range"].fillna(False).astype(bool)
    return pd.DataFrame({"deployment": hit["id"].where(usable), "deployed_at": hit["finished_at"].where(usable)})


def link_pull_requests(prs: pd.DataFrame, prod: pd.DataFrame, shipments: pd.DataFrame) -> pd.DataFrame:
    """Add the shipping deployment (`deployment`, `deployed_at`) and how it was found (`link`).

    A PR merged before the repo's earliest known deployment is left unlinked: its shipping
    deployment is unknown, and the first known one would invent a huge lead time.
    """
    successful = prod[prod["successful"]]
    by_commit = _commit_links(prs, shipments)
    by_time = _time_links(prs, successful)
    known_from = lookup(prod.groupby("repo_id")["created_at"].min(), prs["repo_id"])
    known = prs["merged_at"] >= known_from
    deployment = by_commit["deployment"].combine_first(by_time["deployment"]).where(known)
    deployed_at = by_commit["deployed_at"].combine_first(by_time["deployed_at"])
    how = first_true({"commits": by_commit["deployment"].notna(), "time": by_time["deployment"].notna()})
    linked = prs.assign(
        deployment=deployment,
        deployed_at=deployed_at.where(deployment.notna()),
        link=how.where(deployment.notna(), None),
    )
    return with_durations(linked)


def with_durations(prs: pd.DataFrame) -> pd.DataFrame:
    """Each PR's lead time, cycle time and stage hours, worked out once for every window."""
    return prs.assign(
        lead_time_hours=hours(prs["deployed_at"], prs["start"]),
        cycle_time_hours=hours(prs["merged_at"], prs["start"]),
        **stage_hours(prs),
    )


def stage_hours(prs: pd.DataFrame) -> pd.DataFrame:
    """coding, pickup, review and deploy hours of each PR.

    A response after the merge is not a review of the PR: such a PR, like one never reviewed,
    has no pickup or review part. Nor does a response before the PR last left draft end
    pickup (contract revision 2026-12-01): the sync stores none, but a store synced before
    schema v3 may hold one until its PRs are re-read.
    """
    ready = prs["ready_at"].fillna(prs["created_at"])
    responded = prs["first_review_at"]
    review_at = responded.where((responded <= prs["merged_at"]) & (responded >= ready))
    return pd.DataFrame(
        {
            "coding": hours(prs["created_at"], prs["start"]),
            "pickup": hours(review_at, ready),
            "review": hours(prs["merged_at"], review_at),
            "deploy": hours(prs["deployed_at"], prs["merged_at"]),
        },
        index=prs.index,
    )


def summarise_flow(prs: pd.DataFrame, window: Window, keys: pd.Series) -> Summary:
    """PRs merged, lead time and its coverage, cycle time and its stages."""
    merged = prs["counted"] & window.contains(prs["merged_at"])
    deployed = prs["counted"] & window.contains(prs["deployed_at"])
    merged_count = count(merged, keys)
    return {
        "pull_requests_merged": merged_count,
        "lead_time_hours": distribution(prs.loc[deployed, "lead_time_hours"], keys[deployed]),
        "lead_time_coverage": ratio(count(merged & prs["deployment"].notna(), keys), merged_count),
        "cycle_time_hours": distribution(prs.loc[merged, "cycle_time_hours"], keys[merged]),
        "cycle_time_breakdown_hours": prs.loc[merged, list(STAGES)].groupby(keys[merged]).median(),
    }
