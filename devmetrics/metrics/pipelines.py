"""Pipeline metrics (metrics.md §5): completed CI runs that succeeded or failed."""

from __future__ import annotations

import pandas as pd

from devmetrics.metrics import Window
from devmetrics.metrics.stats import Summary, count, distribution, ratio

COMPLETED = ("success", "failure")  # cancelled and skipped runs say nothing about the pipeline
UNNAMED = "(unnamed)"


def completed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that succeeded or failed, with `minutes` and a `succeeded` flag.

    The forge's own duration wins when it has one (GitLab's excludes queueing); otherwise
    finished_at - started_at.
    """
    out = runs[runs["conclusion"].isin(COMPLETED)].copy()
    measured = (out["finished_at"] - out["started_at"]).dt.total_seconds()
    out["minutes"] = out["duration_seconds"].astype(float).fillna(measured) / 60
    out["succeeded"] = out["conclusion"] == "success"
    # a category: grouping by workflow then works on small integer codes
    out["name"] = out["name"].astype("str").fillna(UNNAMED).astype("category")
    return out


def summarise_pipelines(runs: pd.DataFrame, window: Window, keys: pd.Series) -> Summary:
    """Duration and success rate over all workflows, and per workflow name."""
    inside = window.contains(runs["finished_at"])
    rows, names = runs.loc[inside, ["minutes", "succeeded"]], runs.loc[inside, "name"]
    per_workflow = distribution(rows["minutes"], [keys[inside], names]).join(
        rows["succeeded"].groupby([keys[inside], names]).mean().rename("success_rate"), how="outer"
    )
    return {
        "pipeline_duration_minutes": distribution(rows["minutes"], keys[inside]),
        "pipeline_success_rate": ratio(count(inside & runs["succeeded"], keys), count(inside, keys)),
        "pipelines": per_workflow,
    }
