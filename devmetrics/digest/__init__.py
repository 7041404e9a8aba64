"""The weekly digest: one ISO week against the week before, a 12-week trend.

Public interface (the CLI's `devmetrics digest` calls these):

    build_digest(engine, settings: Config | ReportSettings, week: str | None = None,
                 repos: list[str] | None = None) -> dict          # digest/build.py
    render_digest(digest, fmt: "markdown" | "json" | "slack") -> str   # digest/render.py
    assemble_digest(week, reports, incidents, title, samples, min_events) -> dict
        the pure part (digest/assemble.py)

Modules: weeks (ISO weeks), samples (what the noise tests need, from the linked rows),
noise (better / worse / within noise / few events, scipy.stats), assemble (the digest dict),
figures (how a value and a change are written), charts (Mermaid), markdown, slack, render.

The digest dict: {"week", "previous_week", "since", "until", "timezone", "title",
"min_events", "trend_weeks", "targets", "all": section, "repos": [section, ...]}; a section
holds "comparison" rows (this, previous, n_this, n_previous, delta, relative, direction,
verdict, better, test, p_value, group), "levels", "lead_time_stages", "pipeline",
"incidents", "dependency_freshness", "trend" and "coverage".
"""

from __future__ import annotations

from devmetrics.digest.assemble import DEFAULT_TITLE, ROWS, Row, assemble_digest, compare, section
from devmetrics.digest.build import build_digest, load_incidents
from devmetrics.digest.figures import fmt_delta, fmt_value
from devmetrics.digest.markdown import MARKER, render_markdown
from devmetrics.digest.render import Format, render_digest, render_json
from devmetrics.digest.slack import render_slack
from devmetrics.digest.weeks import TREND_WEEKS, last_full_week, parse_week, trend_mondays, week_label

__all__ = [
    "DEFAULT_TITLE", "MARKER", "ROWS", "TREND_WEEKS", "Format", "Row", "assemble_digest",
    "build_digest", "compare", "fmt_delta", "fmt_value", "last_full_week", "load_incidents",
    "parse_week", "render_digest", "render_json", "render_markdown", "render_slack", "section",
    "trend_mondays", "week_label",
]
