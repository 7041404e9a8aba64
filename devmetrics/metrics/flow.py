"""Flow metrics (metrics.md §4): which deployment shipped each PR, lead and cycle time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from devmetrics.metrics import Window
from devmetrics.metrics.stats import Summary, count, distribution, hours, lookup, ratio

STAGES = ("coding", "pickup", "review", "deploy")


def merged_into_default(
    prs: pd.DataFrame, repos: pd.DataFrame, bots: tuple[str, ...]
) -> pd.DataFrame:
    """Merged PRs into the default branch; `counted` marks the non-bot, non-draft ones.

    Bot and draft PRs stay in the frame: a bot PR that is reverted still marks a failure.
    """
    default = prs["repo_id"].map(repos.set_index("id")["default_branch"])
    into_default = default.isna() | (prs["base_branch"] == default)
    out = prs[prs["merged_at"].notna() & into_default].copy()
    author = out["author"].astype(object)
    bot = out["author_is_bot"].fillna(False).astype(bool) | author.isin(bots)
    bot |= author.str.endswith("[bot]", na=False).astype(bool)
    out["counted"] = ~bot & ~out["draft"].fillna(False).astype(bool)
    first = out["first_commit_at"]
    # A rebase or squash can make the first commit postdate the PR: then creation is the start.
    out["start"] = first.where(first < out["created_at"], out["created_at"])
    return out


def _commit_links(prs: pd.DataFrame, shipments: pd.DataFrame) -> pd.DataFrame:
    """The first successful deployment whose range holds the PR's merge commit."""
    left = prs[["repo_id", "merge_commit_sha"]].dropna().reset_index()
    hit = left.merge(
        shipments, left_on=["repo_id", "merge_commit_sha"], right_on=["repo_id", "sha"]
    )
    return hit.set_index("index")[["deployment", "deployed_at"]].reindex(prs.index)


def _time_links(prs: pd.DataFrame, successful: pd.DataFrame) -> pd.DataFrame:
    """The first successful deployment created at or after the merge, if its range is unknown."""
    left = prs[["repo_id", "merged_at"]].reset_index().sort_values("merged_at")
    right = successful.loc[
        successful["created_at"].notna(), ["repo_id", "created_at", "id", "finished_at", "no_range"]
    ]
    hit = pd.merge_asof(
        left,
        right.sort_values("created_at"),
        left_on="merged_at",
        right_on="created_at",
        by="repo_id",
        direction="forward",
    )
    hit = hit[hit["no_range"].fillna(False).astype(bool)].set_index("index")
    hit = hit.rename(columns={"id": "deployment", "finished_at": "deployed_at"})
    return hit[["deployment", "deployed_at"]].reindex(prs.index)


def link_pull_requests(
    prs: pd.DataFrame, prod: pd.DataFrame, shipments: pd.DataFrame
) -> pd.DataFrame:
    """Add the shipping deployment (`deployment`, `deployed_at`) and how it was found (`link`).

    A PR merged before the repo's earliest known deployment is left unlinked: its shipping
    deployment is unknown, and the first known one would invent a huge lead time.
    """
    successful = prod[prod["successful"]]
    by_commit = _commit_links(prs, shipments)
    by_time = _time_links(prs, successful)
    known_from = lookup(prod.groupby("repo_id")["created_at"].min(), prs["repo_id"])
    known = prs["merged_at"] >= known_from
    out = prs.copy()
    out["deployment"] = by_commit["deployment"].combine_first(by_time["deployment"]).where(known)
    out["deployed_at"] = by_commit["deployed_at"].combine_first(by_time["deployed_at"])
    out["deployed_at"] = out["deployed_at"].where(out["deployment"].notna())
    out["link"] = np.select(
        [by_commit["deployment"].notna(), by_time["deployment"].notna()],
        ["commits", "time"],
        default=None,
    )
    out.loc[out["deployment"].isna(), "link"] = None
    return out


def stage_hours(prs: pd.DataFrame) -> pd.DataFrame:
    """coding, pickup, review and deploy hours of each PR.

    A review after the merge is not a review of the PR: such a PR, like one never reviewed,
    has no pickup or review part. A review before the PR last left draft waited for
    nothing, so its pickup is 0.
    """
    ready = prs["ready_at"].fillna(prs["created_at"])
    review_at = prs["first_review_at"].where(prs["first_review_at"] <= prs["merged_at"])
    return pd.DataFrame(
        {
            "coding": hours(prs["created_at"], prs["start"]),
            "pickup": hours(review_at, ready).clip(lower=0),
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
    stages = stage_hours(prs[merged])
    return {
        "pull_requests_merged": merged_count,
        "lead_time_hours": distribution(
            hours(prs["deployed_at"], prs["start"])[deployed], keys[deployed]
        ),
        "lead_time_coverage": ratio(count(merged & prs["deployment"].notna(), keys), merged_count),
        "cycle_time_hours": distribution(
            hours(prs["merged_at"], prs["start"])[merged], keys[merged]
        ),
        "cycle_time_breakdown_hours": stages.groupby(keys[merged]).median(),
    }
