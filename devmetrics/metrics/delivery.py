"""Delivery metrics (metrics.md §3): production deployments, failures, incidents, rework."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from devmetrics.metrics import SIGNALS, ReportSettings, Window
from devmetrics.metrics.keys import asof_positions, take
from devmetrics.metrics.stats import Summary, count, distribution, first_true, hours, lookup, ratio

SUCCESS = ("success", "inactive")  # inactive: a later deployment superseded a success
FAILURE = ("failure", "error")
SHA_LENGTH = 40


def auto_signals(deployments: pd.DataFrame) -> pd.Series:
    """repo id -> the first of environments, workflow, releases, merges with any data."""
    present = deployments[["repo_id", "source"]].drop_duplicates()
    rank = present["source"].map({signal: i for i, signal in enumerate(SIGNALS)})
    first = present.assign(rank=rank).dropna(subset=["rank"]).sort_values("rank")
    return first.drop_duplicates("repo_id").set_index("repo_id")["source"]


def per_repo(names: pd.Series, settings: Mapping[str, str]) -> pd.Series:
    """Each repo's setting: its exact name, else the first glob (`owner/*`) it matches."""

    def find(name: str) -> str | None:
        if name in settings:
            return settings[name]
        return next((value for key, value in settings.items() if fnmatch.fnmatchcase(name, key)), None)

    return pd.Series([find(name) for name in names], index=names.index, dtype=object)


def deployment_signals(repos: pd.DataFrame, deployments: pd.DataFrame, settings: ReportSettings) -> pd.Series:
    """repo id -> signal: the config's choice, else the one the sync recorded, else auto."""
    chosen = per_repo(repos["full_name"], settings.deployment_signals)
    chosen = chosen.where(chosen.notna(), repos["deployment_signal"].astype(object))
    auto = chosen.isna() | (chosen == "auto")
    chosen[auto] = repos.loc[auto, "id"].map(auto_signals(deployments))
    return pd.Series(chosen.to_numpy(dtype=object), index=repos["id"].to_numpy())


def production_environment(deployments: pd.DataFrame, repos: pd.DataFrame, settings: ReportSettings) -> pd.Series:
    """Whether the environment matches its repo's production pattern (empty matches none).

    Each (pattern, environment name) pair is tested once: a store has few of either.
    """
    chosen = per_repo(repos["full_name"], settings.production_patterns)
    chosen = chosen.where(chosen.notna(), settings.production_pattern)
    patterns = lookup(pd.Series(chosen.to_numpy(), index=repos["id"]), deployments["repo_id"])
    pattern_codes, pattern_names = pd.factorize(patterns)
    environment_codes, environments = pd.factorize(deployments["environment"])
    base = len(environments) + 1  # code 0 is "no environment"
    unique, rows = np.unique(pattern_codes * base + environment_codes + 1, return_inverse=True)
    found = [
        p >= 0 and e >= 0 and bool(pattern_names[p]) and re.search(pattern_names[p], environments[e]) is not None
        for p, e in zip(unique // base, unique % base - 1, strict=True)
    ]
    return pd.Series(np.array(found, dtype=bool)[rows], index=deployments.index)


def production_deployments(
    deployments: pd.DataFrame, repos: pd.DataFrame, signals: pd.Series, settings: ReportSettings
) -> pd.DataFrame:
    """Deployments of each repo's signal (environments: production ones), with outcome flags."""
    from_signal = deployments["source"] == deployments["repo_id"].map(signals)
    environments = deployments["source"] == "environments"
    production = environments & production_environment(deployments, repos, settings)
    prod = deployments[from_signal & (~environments | production)].copy()
    prod["successful"] = prod["status"].isin(SUCCESS)
    prod["failed_status"] = prod["status"].isin(FAILURE)
    return prod


def rollbacks(prod: pd.DataFrame) -> pd.Series:
    """A successful deployment of a sha already deployed successfully to that environment."""
    done = prod[prod["successful"] & prod["sha_key"].notna()].sort_values("finished_at", kind="stable")
    keys = pd.DataFrame({"sha": done["sha_key"], "environment": done["environment"].fillna("")})
    return keys.duplicated().reindex(prod.index, fill_value=False)


def has_no_range(successful: pd.DataFrame, commits: pd.DataFrame) -> pd.Series:
    """Deployments whose commit range is unknown: no sha, no predecessor, or no ranges synced.

    Only these may ship a PR by time (metrics.md §4); a known range is authoritative.
    """
    ordered = successful.sort_values("finished_at", kind="stable")
    first = (ordered.groupby("repo_id").cumcount() == 0).reindex(successful.index)
    ranged_repos = successful["repo_id"].isin(commits["repo_id"].unique())
    return successful["sha"].isna() | first | ~ranged_repos


def commit_shipments(commits: pd.DataFrame, successful: pd.DataFrame) -> pd.DataFrame:
    """sha_key -> the first successful deployment that shipped it (its range or its own sha)."""
    shipped = successful.set_index("deployment_key")[["id", "finished_at"]]
    ranged = shipped.reindex(commits["deployment_key"].to_numpy())
    ranged = ranged.assign(sha_key=commits["sha_key"].to_numpy(), repo_id=commits["repo_id"].to_numpy())
    own = successful[["id", "finished_at", "sha_key", "repo_id"]]
    rows = pd.concat(
        [ranged[ranged["id"].notna() & ranged["sha_key"].notna()], own[own["sha_key"].notna()]], ignore_index=True
    )
    first = rows.sort_values("finished_at", kind="stable").drop_duplicates("sha_key")
    columns = {"id": "deployment", "finished_at": "deployed_at"}
    return first.rename(columns=columns).set_index("sha_key")


def _sha_links(incidents: pd.DataFrame, shipped: pd.DataFrame) -> pd.Series:
    """Deployment that shipped the sha an incident names (exactly, or as a short prefix)."""
    exact = lookup(shipped.set_index("sha_key")["deployment"], incidents["sha_key"])
    named = incidents["linked_sha"].astype(object)
    short = named.notna() & exact.isna() & (named.str.len() < SHA_LENGTH)
    if short.any():
        exact = exact.combine_first(_prefix_links(incidents[short], shipped))
    return exact


def _prefix_links(incidents: pd.DataFrame, shipped: pd.DataFrame) -> pd.Series:
    """Short shas: match the start of the shipped shas of those repos only (rare, small)."""
    candidates = shipped[shipped["repo_id"].isin(incidents["repo_id"])]
    candidates = candidates.sort_values("deployed_at", kind="stable")
    named = incidents["linked_sha"].astype(str)
    found = pd.Series(np.nan, index=incidents.index, dtype=float)
    for length in named.str.len().unique():  # one join per distinct sha length
        table = candidates.assign(prefix=candidates["sha"].astype(str).str[:length])
        table = table.drop_duplicates(["repo_id", "prefix"])
        left = incidents.loc[named.str.len() == length, ["repo_id"]].assign(prefix=named)
        hit = left.reset_index().merge(table, on=["repo_id", "prefix"]).set_index("index")
        found[hit.index] = hit["deployment"]
    return found


def shipped_shas(
    shipments: pd.DataFrame, prs: pd.DataFrame, texts: list[pd.DataFrame], incidents: pd.DataFrame
) -> pd.DataFrame:
    """Shipped shas an incident may name: ranges, deployments' own shas, linked PRs' merges.

    Kept small: only the keys incidents name, plus every sha of a repo where an incident
    names a short sha (matched by prefix). `texts` are frames with sha_key and sha.
    """
    named = incidents["linked_sha"].astype(object)
    short_repos = incidents.loc[named.str.len() < SHA_LENGTH, "repo_id"].unique()
    from_prs = prs.loc[prs["deployment"].notna() & prs["sha_key"].notna()]
    parts = [shipments.reset_index(), from_prs[["sha_key", "repo_id", "deployment", "deployed_at"]]]
    rows = pd.concat(
        [part[part["sha_key"].isin(incidents["sha_key"]) | part["repo_id"].isin(short_repos)] for part in parts]
    ).drop_duplicates("sha_key")
    text = pd.concat([t[t["sha_key"].isin(rows["sha_key"])] for t in texts])
    text = text.drop_duplicates("sha_key").set_index("sha_key")["sha"]
    return rows.assign(sha=lookup(text, rows["sha_key"]))


def _pr_links(incidents: pd.DataFrame, prs: pd.DataFrame) -> pd.Series:
    """Deployment that shipped the PR named by each incident."""
    named = incidents[["repo_id", "linked_pr"]].dropna().astype({"linked_pr": "int64"})
    shipped = prs.loc[prs["deployment"].notna(), ["repo_id", "number", "deployment"]]
    hit = named.reset_index().merge(shipped, left_on=["repo_id", "linked_pr"], right_on=["repo_id", "number"])
    return hit.set_index("index")["deployment"].reindex(incidents.index)


def _time_links(incidents: pd.DataFrame, successful: pd.DataFrame, window_hours: float) -> pd.Series:
    """Latest successful deployment finished at or before the incident, at most window_hours
    before. An incident opened in the very second a deployment finished is that deployment's
    (contract revision 2026-12-01): the forge clocks tick in whole seconds."""
    right = successful[successful["finished_at"].notna()]
    found = asof_positions(
        (incidents["repo_id"], incidents["created_at"]),
        (right["repo_id"], right["finished_at"]),
        forward=False,
        strict=False,
    )
    hit = take(right[["id", "finished_at"]], found, incidents.index)
    close = incidents["created_at"] - hit["finished_at"] <= pd.Timedelta(hours=window_hours)
    return hit["id"].where(close)


def link_incidents(
    incidents: pd.DataFrame,
    successful: pd.DataFrame,
    shipped: pd.DataFrame,
    prs: pd.DataFrame,
    window_hours: float,
) -> pd.DataFrame:
    """Each incident's deployment: named sha, else named PR, else by time; and how."""
    links = {
        "sha": _sha_links(incidents, shipped),
        "pr": _pr_links(incidents, prs),
        "time": _time_links(incidents, successful, window_hours),
    }
    deployment = links["sha"].combine_first(links["pr"]).combine_first(links["time"])
    how = first_true({name: found.notna() for name, found in links.items()})
    deployed_at = lookup(successful.set_index("id")["finished_at"], deployment)
    return incidents.assign(
        deployment=deployment,
        link=how.where(deployment.notna(), None),
        deployed_at=deployed_at,
        detect_hours=hours(incidents["created_at"], deployed_at),
        restore_hours=hours(incidents["resolved_at"], incidents["created_at"]),
        recovery_hours=hours(incidents["resolved_at"], deployed_at),
    )


def labelled(labels: pd.Series, names: tuple[str, ...]) -> pd.Series:
    """Whether a labels cell (JSON text or a list) holds one of `names`, ignoring case."""
    if not names or labels.empty:
        return pd.Series(False, index=labels.index)
    quoted = "|".join(re.escape(name) for name in names)
    text = labels if labels.dtype == "str" else labels.astype(str).astype("str")
    return text.str.contains(f"(?i)[\"'](?:{quoted})[\"']", regex=True, na=False).astype(bool)


def flag_deployments(
    prod: pd.DataFrame, incidents: pd.DataFrame, prs: pd.DataFrame, hotfix_labels: tuple[str, ...]
) -> pd.DataFrame:
    """Add why each deployment failed (incidents, reverted) and why it is rework."""
    reverted = prs.loc[prs["reverts_number"].notna(), ["repo_id", "reverts_number"]].merge(
        prs[["repo_id", "number", "deployment"]],
        left_on=["repo_id", "reverts_number"],
        right_on=["repo_id", "number"],
    )["deployment"]
    out = prod.assign()
    out["incidents_linked"] = out["id"].map(incidents["deployment"].value_counts()).fillna(0)
    out["reverted"] = out["id"].isin(reverted.dropna())
    out["failed"] = out["successful"] & ((out["incidents_linked"] > 0) | out["reverted"])
    reasons = {
        "revert": out["id"].isin(prs.loc[prs["reverts_number"].notna(), "deployment"]),
        "hotfix": out["id"].isin(prs.loc[labelled(prs["labels"], hotfix_labels), "deployment"]),
        "rollback": rollbacks(out),
    }
    out["rework"] = first_true(reasons).where(out["successful"], None)
    return out


def summarise_deployments(prod: pd.DataFrame, window: Window, keys: pd.Series) -> Summary:
    """deployments, frequency, deployment days, success, change failure and rework rates."""
    inside = window.contains(prod["finished_at"])
    done = prod["successful"] & inside
    deployments = count(done, keys)
    return {
        "deployments": deployments,
        "deployment_frequency_per_week": deployments / (window.days / 7),
        "deployment_days_per_week_median": deployment_days_per_week_median(prod, window, keys),
        "deployment_success_rate": ratio(
            deployments, count(inside & (prod["successful"] | prod["failed_status"]), keys)
        ),
        "change_failure_rate": ratio(count(done & prod["failed"], keys), deployments),
        "rework_rate": ratio(count(done & prod["rework"].notna(), keys), deployments),
    }


def deployment_days_per_week_median(prod: pd.DataFrame, window: Window, keys: pd.Series) -> pd.Series:
    """Median over whole 7-day buckets from `since` of the days with a successful deployment."""
    buckets = window.days // 7
    groups = keys.unique()
    if buckets == 0:
        return pd.Series(np.nan, index=groups)
    local = prod["finished_at"].dt.tz_convert(window.since.tz).dt.tz_localize(None)
    day = local.dt.normalize()
    bucket = (day - window.first_day).dt.days // 7
    hit = prod["successful"] & window.contains(prod["finished_at"]) & (bucket < buckets)
    frame = pd.DataFrame({"key": keys[hit], "bucket": bucket[hit], "day": day[hit]})
    days = frame.groupby(["key", "bucket"])["day"].nunique()
    grid = pd.MultiIndex.from_product([groups, range(buckets)], names=["key", "bucket"])
    return days.reindex(grid, fill_value=0).groupby(level="key").median()


def detected(incidents: pd.DataFrame, window: Window) -> pd.Series:
    """Incidents created in the window and linked to a deployment that finished at or before
    them: the rows of time to detect. An explicit link (sha, PR) can name a deployment that
    finished after the incident was opened; that incident was not *detected* after it."""
    return window.contains(incidents["created_at"]) & (incidents["detect_hours"] >= 0).fillna(False)


def summarise_incidents(incidents: pd.DataFrame, window: Window, keys: pd.Series) -> Summary:
    """incidents, link coverage, time to detect, time to restore and failed deployment recovery."""
    created = window.contains(incidents["created_at"])
    resolved = window.contains(incidents["resolved_at"])
    linked = resolved & incidents["deployment"].notna()
    found = detected(incidents, window)
    detect = distribution(incidents.loc[found, "detect_hours"], keys[found])
    restore = distribution(incidents.loc[resolved, "restore_hours"], keys[resolved])
    recovery = distribution(incidents.loc[linked, "recovery_hours"], keys[linked])
    total = count(created, keys)
    return {
        "incidents": total,
        "incident_link_coverage": ratio(count(created & incidents["deployment"].notna(), keys), total),
        "time_to_detect_hours": detect,
        "time_to_restore_hours": restore,
        "failed_deployment_recovery_hours": recovery,
    }
