"""What the digest posted, and which past weeks' figures have changed since (digest_figure).

    record_figures(engine, digest) -> int          # this week's figures, and the revised ones
    find_revisions(engine, weeks, threshold) -> {repo | "all": [revision, ...]}

A figure of a past week can change after it was posted: a review arrives late, an incident
is resolved or linked later, a deployment's status settles. The next digest says so in one
short line per figure; recording it then stores the new value, so a revision is said once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.clock import now_utc
from devmetrics.digest.assemble import ROWS
from devmetrics.metrics.levels import lookup
from devmetrics.models import DigestFigure

DEFAULT_THRESHOLD = 0.1  # a relative change above 10 % (or a figure appearing or vanishing)
LABELS = {row.key: (row.label, row.unit) for row in ROWS}


def _sections(digest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The repos, and the aggregate only when no --repo filter chose them (it depends on it)."""
    return [*([] if digest.get("repo_filter") else [digest["all"]]), *digest["repos"]]


def figures_of(digest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per section and comparison key: the figure as this digest shows it."""
    sections = _sections(digest)
    return [{"repo": sec["repo"], "week": digest["week"], "key": row["key"], "value": row["this"]}
            for sec in sections for row in sec["comparison"]]


def record_figures(engine: Engine, digest: Mapping[str, Any]) -> int:
    """Store this week's figures and the new values of the revised ones; returns rows written."""
    posted = now_utc()
    rows = figures_of(digest)
    for sec in _sections(digest):
        rows += [{"repo": sec["repo"], "week": r["week"], "key": r["key"], "value": r["now"]}
                 for r in sec.get("revised") or []]
    store.upsert(engine, DigestFigure, [row | {"posted_at": posted} for row in rows])
    return len(rows)


def posted_figures(engine: Engine, weeks: Sequence[str]) -> list[Any]:
    table = DigestFigure.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(table.c.week.in_(list(weeks)))))


def find_revisions(engine: Engine, weeks: Mapping[str, Mapping[str, Any]],
                   threshold: float = DEFAULT_THRESHOLD, filtered: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Figures posted for `weeks` (label -> that week's report now) that have since changed.

    Only repos in the reports are compared (a --repo filter leaves the others as posted), and
    the aggregate only when `filtered` is False.
    """
    found: dict[str, list[dict[str, Any]]] = {}
    names = {str(r.get("repo")) for report in weeks.values() for r in report.get("repos", [])}
    if not filtered:
        names.add("all")
    for row in posted_figures(engine, list(weeks)):
        if row.key not in LABELS or row.repo not in names:
            continue
        now = _current(weeks[row.week], row.repo, row.key)
        if revised(row.value, now, threshold):
            label, unit = LABELS[row.key]
            found.setdefault(row.repo, []).append({"week": row.week, "key": row.key, "label": label,
                                                   "unit": unit, "posted": row.value, "now": now})
    for revisions in found.values():
        revisions.sort(key=lambda r: (r["week"], r["key"]))
    return found


def _current(report: Mapping[str, Any], repo: str, key: str) -> float | None:
    section = report.get("all") if repo == "all" else next(
        (r for r in report.get("repos", []) if r.get("repo") == repo), None)
    value = lookup(section, key) if isinstance(section, Mapping) else None
    return None if isinstance(value, bool) or not isinstance(value, int | float) or value != value else value


def revised(posted: float | None, now: float | None, threshold: float) -> bool:
    """Changed by more than `threshold` of the posted value; appearing or vanishing counts."""
    if posted is None or now is None:
        return (posted is None) != (now is None)
    if posted == 0:
        return now != 0
    return abs(now - posted) > threshold * abs(posted)
