"""The digest as GitHub Markdown: header, targets, the all-repos section, one per repo.

Every change is marked better / worse / within noise / few events (digest/noise.py), figures
carry their n, and the comparison is grouped into outcomes (lagging) and leading indicators.
Everything taken from the forge is escaped with devmetrics.safe_text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, cast

from devmetrics.digest.assemble import GROUPS, STAGES, by_attention
from devmetrics.digest.charts import trend_charts
from devmetrics.digest.drivers_text import drivers_blocks, revised_line
from devmetrics.digest.figures import COMPACT, fmt_change, fmt_delta, fmt_figure, fmt_value, shorten
from devmetrics.safe_text import markdown_link, markdown_text, safe_url

MARKER = "<!-- devmetrics-digest week={week} -->"
LEVEL_NAMES = {"deployment_frequency": "deployment frequency", "lead_time": "lead time",
               "change_failure_rate": "change failure rate", "recovery_time": "recovery time"}


# The overview's columns: (comparison key, header)
OVERVIEW = (("deployments", "Deployments"), ("lead_time_hours.median", "Lead time"),
            ("change_failure_rate", "Change failure"), ("pipeline_duration_minutes.median", "Pipeline"))


def render_markdown(digest: Mapping[str, Any]) -> str:
    """Blocks separated by blank lines; each `##`/`###` heading starts a block a split may cut before.

    With more repos than digest["detail_repos"], an overview (one row per repo, those that
    need attention first) comes before the all-repos section, and only that many repos get
    a detail section: 200 repos fit one GitHub issue body.
    """
    repos = digest["repos"]
    limit = int(digest.get("detail_repos", 5))
    overview = len(repos) > max(limit, 1)
    detail = by_attention(repos)[:limit] if overview else repos
    parts = [MARKER.format(week=digest["week"]), f"# {markdown_text(digest['title'])}",
             _intro(digest), _dashboard_line(digest.get("dashboard_url")),
             *targets_section(digest.get("targets") or [])]
    if overview:
        parts += overview_table(digest, by_attention(repos), len(detail))
    parts += markdown_section(digest, digest["all"], "All repositories")
    for repo in detail:
        parts += markdown_section(digest, repo, repo["repo"])
    parts.append(unevaluated_line(digest))
    return "\n\n".join(part for part in parts if part) + "\n"


def _dashboard_line(url: object) -> str:
    target = safe_url(url)
    return f"[Every repository and figure on the dashboard]({target})." if target else ""


def overview_table(digest: Mapping[str, Any], ranked: Sequence[Mapping[str, Any]], shown: int) -> list[str]:
    """One row per repo, those with the most worsened figures first."""
    head = "| Repository | Needs a look | " + " | ".join(title for _, title in OVERVIEW) + " |"
    lines = [head, "|---|---|" + "---:|" * len(OVERVIEW)]
    for sec in ranked:
        rows = {row["key"]: row for row in sec["comparison"]}
        cells = [_overview_cell(rows[key]) for key, _ in OVERVIEW]
        lines.append(f"| {markdown_text(sec['repo'])} | {_attention_cell(sec['attention'])} | "
                     + " | ".join(cells) + " |")
    rest = len(ranked) - shown
    where = " and on the dashboard" if digest.get("dashboard_url") else ""
    note = (f"_Overview of {len(ranked)} repositories (🔴 worse, 🟢 better, ◌ few events; unmarked: "
            f"within noise or flat). The {shown} that need a look most have a section below; "
            f"the other {rest} are in this table{where}._")
    return ["## Overview", "\n".join(lines), note]


def _overview_cell(row: Mapping[str, Any]) -> str:
    return fmt_value(row["this"], row["unit"]) + COMPACT.get(row["verdict"], "")


def _attention_cell(found: Mapping[str, Any]) -> str:
    parts = [f"{mark} {found[word]}" for mark, word in (("🔴", "worse"), ("🟢", "better")) if found[word]]
    return " · ".join(parts) or "—"


def unevaluated_line(digest: Mapping[str, Any]) -> str:
    """Dependency freshness not evaluated: said once, naming the repos, not once per repo."""
    missing = [sec["repo"] for sec in digest["repos"] if not _evaluated(sec.get("dependency_freshness"))]
    if not missing or not _evaluated(digest["all"].get("dependency_freshness")):
        return ""  # none missing, or the all-repos section already said it for every repo
    names = ", ".join(markdown_text(name) for name in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return (f"_Dependency freshness not evaluated for {len(missing)} of {len(digest['repos'])} "
            f"repositories: {names}{more}._")


def _evaluated(freshness: Any) -> bool:
    return isinstance(freshness, Mapping) and bool(freshness.get("dependencies"))


def targets_section(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The targets block (issue 20): placed after the intro; nothing when no target is set.

    The targets module fills digest["targets"] with one state per target and repo; until it
    renders them itself this hook shows nothing, so the digest reads the same without targets.
    """
    return []


def _intro(digest: Mapping[str, Any]) -> str:
    last_day = date.fromisoformat(digest["until"]) - timedelta(days=1)
    count = len(digest["repos"])
    return (f"Week {digest['week']} ({digest['since']} to {last_day.isoformat()}, "
            f"{digest['timezone']}) compared with {digest['previous_week']}; "
            f"{count} {'repository' if count == 1 else 'repositories'}. "
            f"{noise_note(digest.get('min_events', 5))}")


def noise_note(min_events: int) -> str:
    return (f"A change is better or worse only when it is larger than noise (two-sided test, "
            f"p < 0.05); with fewer than {min_events} events in either week it is *few events*.")


def markdown_section(digest: Mapping[str, Any], sec: Mapping[str, Any], name: str) -> list[str]:
    week, previous = digest["week"], digest["previous_week"]
    return [
        f"## {markdown_text(name)}", *comparison_tables(sec["comparison"], week, previous),
        *drivers_blocks(sec["comparison"], int(digest.get("title_length", 80))),
        revised_line(sec.get("revised") or []),
        levels_line(sec["levels"], digest.get("level_weeks") or [week]),
        stages_table(sec["lead_time_stages"], week, previous),
        _pipeline_line(sec["pipeline"]),
        _incidents_block(sec["incidents"], sec["repo"] == "all", int(digest.get("title_length", 80))),
        _dependencies_line(sec["dependency_freshness"], sec["repo"] == "all"), _coverage_line(sec["coverage"]),
        f"### {markdown_text(name)}: trend, {len(digest['trend_weeks'])} weeks",
        *trend_charts(digest["trend_weeks"], sec["trend"]),
    ]


def comparison_tables(rows: Sequence[Mapping[str, Any]], week: str, previous: str) -> list[str]:
    """One table per group: outcomes (lagging) first, then leading indicators."""
    tables = []
    for group, title in GROUPS.items():
        chosen = [row for row in rows if row.get("group", "lagging") == group]
        if chosen:
            tables.append(f"**{title}**\n\n" + comparison_table(chosen, week, previous))
    return tables


def comparison_table(rows: Sequence[Mapping[str, Any]], week: str, previous: str) -> str:
    lines = [f"| Metric | {week} | {previous} | Change |", "|---|---:|---:|---|"]
    for row in rows:
        unit = row["unit"]
        now = fmt_figure(row["this"], row.get("n_this"), unit)
        before = fmt_figure(row["previous"], row.get("n_previous"), unit)
        if row.get("verdict") == "few events":  # greyed as far as Markdown can: set in italics
            now, before = _faint(now), _faint(before)
        lines.append(f"| {row['label']} | {now} | {before} | {fmt_change(row)} |")
    return "\n".join(lines)


def _faint(text: str) -> str:
    return text if text == "—" else f"_{text}_"


def stages_table(stage_values: Mapping[str, Mapping[str, Any]], week: str, previous: str) -> str:
    """Lead-time stages (metrics.md §4): each a median of its own, so they do not add up."""
    lines = [f"| Lead-time stage, median | {week} | {previous} | Change |", "|---|---:|---:|---|"]
    for stage in STAGES:
        now, before = stage_values["this"].get(stage), stage_values["previous"].get(stage)
        delta = None if now is None or before is None else now - before
        lines.append(f"| {stage} | {fmt_value(now, 'hours')} | {fmt_value(before, 'hours')} | "
                     f"{fmt_delta(delta, 'hours')} |")
    lines.append("")
    lines.append("_Each stage is the median of its own PRs: the stage medians do not add up to the lead time._")
    return "\n".join(lines)


def levels_line(levels: Mapping[str, Any], weeks: Sequence[str]) -> str:
    """`**DORA levels** (4 weeks, 2026-W44 to 2026-W47): lead time **elite** (n=31) · …`."""
    span = (f"week {weeks[0]}" if len(weeks) == 1 else
            f"{len(weeks)} weeks, {weeks[0]} to {weeks[-1]}")
    parts = [f"{LEVEL_NAMES.get(key, key.replace('_', ' '))} {_level_text(judged)}"
             for key, judged in levels.items()]
    return f"**DORA levels** ({span}): " + (" · ".join(parts) if parts else "—")


def _level_text(judged: Any) -> str:
    if not isinstance(judged, Mapping):  # a plain level (a digest dict from before levels had n)
        return f"**{judged}**" if judged else "—"
    n = judged.get("n")
    if judged.get("few_events"):
        return f"_few events (n={n})_"
    level = judged.get("level")
    if not level:
        return "—"
    return f"**{level}**" + (f" (n={n})" if n is not None else "")


def _pipeline_line(pipeline: Mapping[str, Any]) -> str:
    duration = pipeline.get("duration_minutes") or {}
    if not duration.get("n"):
        return "**Pipelines:** no completed runs this week."
    rate = pipeline.get("success_rate")
    return (f"**Pipelines:** median {fmt_value(duration.get('median'), 'minutes')}, "
            f"p90 {fmt_value(duration.get('p90'), 'minutes')} over "
            f"{duration['n']} runs; success rate {fmt_value(rate, 'rate')}.")


def _incidents_block(incidents: Sequence[Mapping[str, Any]], with_repo: bool, title_length: int) -> str:
    if not incidents:
        return "**Incidents this week:** none."
    items = [_incident_item(incident, with_repo, title_length) for incident in incidents]
    return "\n".join(["**Incidents this week:**", *items])


def _incident_item(incident: Mapping[str, Any], with_repo: bool, title_length: int) -> str:
    where = f" ({markdown_text(incident['repo'])})" if with_repo else ""
    opened = str(incident.get("created_at") or "")[:16].replace("T", " ")
    restored = (f"restored after {incident['restore_hours']:.1f} h"
                if incident.get("restore_hours") is not None else "still open")
    link = markdown_link(shorten(incident["title"], title_length), incident.get("url"))
    return f"- {link}{where}: opened {opened} UTC, {restored}"


def _dependencies_line(freshness: Mapping[str, Any] | None, aggregate: bool) -> str:
    if not _evaluated(freshness):  # said once: here for all repos, else in unevaluated_line
        return "**Dependency freshness:** not evaluated." if aggregate else ""
    freshness = cast(Mapping[str, Any], freshness)
    libyears = freshness.get("libyears")
    return (f"**Dependency freshness:** {freshness['dependencies']} direct dependencies, "
            f"{freshness.get('outdated', 0)} outdated, {freshness.get('major_behind', 0)} a major "
            f"version behind ({freshness.get('more_than_one_major_behind', 0)} more than one), "
            f"{'—' if libyears is None else f'{libyears:.1f}'} libyears (summed, then rounded to 0.1).")


def _coverage_line(cov: Mapping[str, Any]) -> str:
    signal = cov.get("deployment_signal") or _signals_text(cov.get("deployment_signals"))
    share = cov.get("lead_time_coverage")
    merged = cov.get("pull_requests_merged")
    linked = ("no merged pull requests" if not merged else
              f"{fmt_value(share, 'rate')} of {merged:g} merged pull requests linked to a deploy")
    source = markdown_text(signal or "no signal")
    return (f"**Signal and coverage:** deployments counted from {source}; "
            f"{linked}; lead time over {cov.get('lead_time_n') or 0:g} PRs; "
            f"{cov.get('pipeline_runs') or 0:g} pipeline runs.")


def _signals_text(signals: Any) -> str | None:
    if isinstance(signals, Mapping) and signals:
        return ", ".join(f"{repo}: {signal or 'no signal'}" for repo, signal in signals.items())
    return None
