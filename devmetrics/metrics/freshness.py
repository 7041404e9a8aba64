"""Dependency freshness counts (metrics.md §6) from the stored Dependency rows."""

from __future__ import annotations

from typing import Any

import pandas as pd
from packaging.version import InvalidVersion, Version


def is_older(current: str | None, latest: str | None) -> bool:
    """current < latest; versions that do not parse count as older when they differ."""
    if current is None or latest is None or pd.isna(current) or pd.isna(latest):
        return False
    try:
        return Version(current) < Version(latest)
    except InvalidVersion:
        return current != latest


def outdated(deps: pd.DataFrame) -> pd.Series:
    """Whether each dependency's current version is below its latest (one test per pair)."""
    pairs = deps[["current_version", "latest_version"]].drop_duplicates()
    older = {(c, latest): is_older(c, latest) for c, latest in pairs.itertuples(index=False)}
    keys = zip(deps["current_version"], deps["latest_version"], strict=True)
    return pd.Series([older[key] for key in keys], index=deps.index, dtype=bool)


def counts(deps: pd.DataFrame) -> dict[str, Any]:
    """The §6 object for some direct dependencies, deduplicated by ecosystem/name/version."""
    unique = deps.drop_duplicates(["ecosystem", "name", "current_version"])
    ok = unique[unique["status"] == "ok"]
    behind = pd.to_numeric(ok["majors_behind"])
    libyears = pd.to_numeric(ok["libyears"]).dropna()
    return {
        "dependencies": len(ok),
        "outdated": int(outdated(ok).sum()),
        "major_behind": int((behind >= 1).sum()),
        "more_than_one_major_behind": int((behind >= 2).sum()),
        "libyears": float(libyears.sum()) if len(libyears) else None,
        "libyears_max": float(libyears.max()) if len(libyears) else None,
        "unsupported": int((unique["status"] == "unsupported").sum()),
        "unknown": int((unique["status"] == "unknown").sum()),
    }


def freshness_counts(deps: pd.DataFrame) -> dict[Any, dict[str, Any] | None]:
    """repo id -> counts, and "all" -> counts over every repo; {} when nothing is stored."""
    if deps.empty:
        return {}
    found: dict[Any, dict[str, Any] | None] = {repo: counts(group) for repo, group in deps.groupby("repo_id")}
    found["all"] = counts(deps)
    return found
