"""Render a report dict as a rich table, JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

NONE = "—"
LEVEL_KEYS = ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time")


def number(value: Any, digits: int = 1) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def percent(value: Any) -> str:
    return NONE if value is None else f"{value:.0%}"


def count(value: Any) -> str:
    return NONE if value is None else str(value)


def median(value: Any) -> str:
    """A distribution as `median (n)`; `—` when it has no values ({median: null, n: 0})."""
    if value is None or value.get("median") is None:
        return NONE
    return f"{value['median']:.1f} (n={value['n']})"


def level_initials(value: Any) -> str:
    """Levels as e.g. `H E H —` (deployment frequency, lead time, CFR, recovery)."""
    value = value or {}
    return " ".join((value.get(key) or NONE)[0].upper() for key in LEVEL_KEYS)


# (header, report key, formatter) of the table, Markdown and the trend table.
COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("Deploys", "deployments", count),
    ("Deploys/wk", "deployment_frequency_per_week", number),
    ("Days/wk", "deployment_days_per_week_median", number),
    ("Deploy success", "deployment_success_rate", percent),
    ("CFR", "change_failure_rate", percent),
    ("Rework", "rework_rate", percent),
    ("Incidents", "incidents", count),
    ("Restore h", "time_to_restore_hours", median),
    ("Lead time h", "lead_time_hours", median),
    ("Cycle time h", "cycle_time_hours", median),
    ("PRs", "pull_requests_merged", count),
    ("Pipeline min", "pipeline_duration_minutes", median),
    ("Pipeline ok", "pipeline_success_rate", percent),
    ("Levels D/L/C/R", "levels", level_initials),
]


def cells(row: dict[str, Any]) -> list[str]:
    return [row["repo"], *(show(row.get(key)) for _, key, show in COLUMNS)]


def headers() -> list[str]:
    return ["Repo", *(header for header, _, _ in COLUMNS)]


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [*report["repos"], report["all"]]


def coverage_line(row: dict[str, Any]) -> str:
    """How sure the numbers are: the signal used and how much could be linked."""
    signal = row.get("deployment_signal")
    source = f"deployments from {signal}" if signal else "no deployment signal has data"
    return (
        f"{row['repo']}: {source}; "
        f"{percent(row.get('lead_time_coverage'))} of merged PRs linked to a deployment, "
        f"{percent(row.get('incident_link_coverage'))} of incidents linked"
    )


def as_table(report: dict[str, Any]) -> str:
    """rich table: one row per repo and an all-repos row, then a coverage line per repo."""
    title = f"{report['since']} .. {report['until']} ({report['timezone']}, until exclusive)"
    table = Table(title=title)
    for header in headers():
        table.add_column(header, justify="left" if header == "Repo" else "right")
    for row in report_rows(report):
        table.add_row(*cells(row), end_section=row is report["repos"][-1])
    console = Console(file=io.StringIO(), width=220, record=True, color_system=None)
    console.print(table)
    for row in report["repos"]:
        console.print(coverage_line(row), highlight=False, soft_wrap=True)
    if "trend" in report:
        console.print(trend_table(report["trend"]))
    return console.export_text().rstrip() + "\n"


def trend_table(trend: dict[str, Any]) -> Table:
    table = Table(title=f"Trend by {trend['by']}")
    for header in ["Period", *headers()]:
        table.add_column(header, justify="left" if header in ("Period", "Repo") else "right")
    for period in trend["periods"]:
        for row in [*period["repos"], period["all"]]:
            table.add_row(period["period"], *cells(row))
    return table


def as_markdown(report: dict[str, Any]) -> str:
    lines = [f"Metrics for {report['since']} .. {report['until']} ({report['timezone']})", ""]
    lines += markdown_table(headers(), [cells(row) for row in report_rows(report)])
    lines += [""] + [f"- {coverage_line(row)}" for row in report["repos"]]
    if "trend" in report:
        rows = [[p["period"], *cells(row)] for p in report["trend"]["periods"] for row in [*p["repos"], p["all"]]]
        lines += ["", f"Trend by {report['trend']['by']}", ""]
        lines += markdown_table(["Period", *headers()], rows)
    return "\n".join(lines) + "\n"


def markdown_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def line(values: list[str]) -> str:
        return "| " + " | ".join(value.replace("|", "\\|") for value in values) + " |"

    return [line(head), line(["---"] * len(head)), *(line(row) for row in rows)]


def flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Nested dicts as dotted keys (lead_time_hours.median, pipelines.ci.n, ...)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def as_csv(report: dict[str, Any]) -> str:
    """One line per repo and all repos (and per period with a trend), dotted column names."""
    rows = [{"period": None} | dict(flatten(row, "")) for row in report_rows(report)]
    for period in report.get("trend", {}).get("periods", []):
        rows += [{"period": period["period"]} | dict(flatten(row, "")) for row in [*period["repos"], period["all"]]]
    names = list(dict.fromkeys(name for row in rows for name in row))
    # a metric that is None in one row and a dict in another keeps only its dotted columns
    names = [name for name in names if not any(other.startswith(f"{name}.") for other in names)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def as_json(report: dict[str, Any]) -> str:
    """One line per top-level key and per repo: readable, diffable, and fast.

    (json.dumps with indent= falls back to the pure-Python encoder: seconds for 500 repos.)
    """
    lines = []
    for key, value in report.items():
        if key == "repos":
            rows = ",\n".join(f"    {json.dumps(row)}" for row in value)
            lines.append(f'  "repos": [\n{rows}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "table": as_table,
    "json": as_json,
    "csv": as_csv,
    "markdown": as_markdown,
}


def render_report(report: dict[str, Any], fmt: str = "table") -> str:
    """The report as text in one of table, json, csv, markdown."""
    return RENDERERS[fmt](report)
