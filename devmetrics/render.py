"""Render a report dict as a rich table, JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from rich.text import Text

from devmetrics.terminal import LEVEL_STYLES, Column, Screen, finish, fitted_tables, print_tables, safe, sparkline

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


def as_table(report: dict[str, Any], screen: Screen | None = None, wide: bool = False,
             history: dict[str, Any] | None = None) -> str:
    """The report for a terminal `screen` wide (80 columns, plain text by default).

    One repo: its card (render_card); else the compact table of headline figures with a
    legend, or with `wide` every column (in blocks of columns when the screen is narrow).
    Then a coverage line per repo, and the trend by period when the report has one."""
    screen = screen or Screen()
    if len(report["repos"]) == 1 and not wide:
        return render_card(report, screen, history)
    buffer = io.StringIO()
    console = screen.console(buffer)
    columns = WIDE_COLUMNS if wide else COMPACT_COLUMNS
    rows = report_rows(report)
    print_tables(console, fitted_tables(
        [Column("Repo", left=True, shortened=True, fewest=12), *(c for c, _, _ in columns)],
        [[safe(row["repo"]), *(show(row, screen) for _, show, _ in columns)] for row in rows],
        screen, title=window_title(report), styles=row_styles(rows, screen), section=len(rows) - 1))
    if not wide:
        console.print(legend(COMPACT_COLUMNS), style="dim" if screen.color else "")
    for row in report["repos"]:
        console.print(safe(coverage_line(row)))
    if "trend" in report:
        console.print()
        trend_rows = [(p["period"], row) for p in report["trend"]["periods"] for row in [*p["repos"], p["all"]]]
        print_tables(console, fitted_tables(
            [Column("Period", left=True), Column("Repo", left=True, shortened=True, fewest=12),
             *(c for c, _, _ in columns)],
            [[period, safe(row["repo"]), *(show(row, screen) for _, show, _ in columns)] for period, row in trend_rows],
            screen, keep=2, title=f"Trend by {report['trend']['by']}"))
    return finish(buffer.getvalue())


def window_title(report: dict[str, Any]) -> str:
    return f"{report['since']} .. {report['until']} ({report['timezone']}, until exclusive)"


def row_styles(rows: list[dict[str, Any]], screen: Screen) -> list[str]:
    return ["bold" if screen.color and row["repo"] == "all" and row is rows[-1] else "" for row in rows]


def _get(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _median_only(value: Any) -> str:
    return NONE if not value or value.get("median") is None else f"{value['median']:.1f}"


def _whole_percent(value: Any) -> str:
    return NONE if value is None else f"{value * 100:.0f}"


def _levels_text(row: dict[str, Any], screen: Screen) -> Text:
    found = row.get("levels") or {}
    text = Text()
    for number, key in enumerate(LEVEL_KEYS):
        level = found.get(key)
        text.append(" " if number else "")
        text.append((level or NONE)[0].upper(), style=LEVEL_STYLES.get(level or "", "") if screen.color else "")
    return text


def _shown(key: str, format_value: Callable[[Any], str]) -> Callable[[dict[str, Any], Screen], str | Text]:
    return lambda row, screen: format_value(_get(row, key))


# (column, cell of a report row, legend text) of the compact table: the headline figures.
COMPACT_COLUMNS: list[tuple[Column, Callable[[dict[str, Any], Screen], str | Text], str]] = [
    (Column("Dep/wk", wraps=False), _shown("deployment_frequency_per_week", number), "deployments a week"),
    (Column("OK%", wraps=False), _shown("deployment_success_rate", _whole_percent), "deployments that succeeded"),
    (Column("CFR%", wraps=False), _shown("change_failure_rate", _whole_percent), "change failure rate"),
    (Column("Lead h", wraps=False), _shown("lead_time_hours", _median_only), "lead time median, hours"),
    (Column("Cycle h", wraps=False), _shown("cycle_time_hours", _median_only), "cycle time median, hours"),
    (Column("Pipe m", wraps=False), _shown("pipeline_duration_minutes", _median_only),
     "pipeline duration median, minutes"),
    (Column("MTTR h", wraps=False), _shown("time_to_restore_hours", _median_only), "time to restore median, hours"),
    (Column("Libyr", wraps=False), _shown("dependency_freshness.libyears", number), "libyears behind"),
    (Column("DLCR", wraps=False), _levels_text,
     "DORA levels of deployment frequency, lead time, CFR, recovery (Elite High Medium Low)"),
]

# --wide: every column of the Markdown table, and the dependency figures.
WIDE_COLUMNS: list[tuple[Column, Callable[[dict[str, Any], Screen], str | Text], str]] = [
    *((Column(header), _shown(key, show), header) for header, key, show in COLUMNS[:-1]),
    (Column("Libyears"), _shown("dependency_freshness.libyears", number), "libyears"),
    (Column("Deps outdated"), _shown("dependency_freshness.outdated", count), "outdated dependencies"),
    (Column("Levels D/L/C/R"), _levels_text, "levels"),
]


def legend(columns: list[tuple[Column, Any, str]]) -> str:
    described = "; ".join(f"{column.header} {text}" for column, _, text in columns)
    return f"{described}. — no data. --wide: every column; --repo: one repo's card."


# ------------------------------------------------------------------------- the card

# (label, report key, kind of value, level key) of a repo's card, top to bottom.
CARD_ROWS: list[tuple[str, str, str, str | None]] = [
    ("Deployments / week", "deployment_frequency_per_week", "number", "deployment_frequency"),
    ("Deployments", "deployments", "count", None),
    ("Deploy success %", "deployment_success_rate", "percent", None),
    ("Change failure %", "change_failure_rate", "percent", "change_failure_rate"),
    ("Rework %", "rework_rate", "percent", None),
    ("Lead time h", "lead_time_hours", "distribution", "lead_time"),
    ("Cycle time h", "cycle_time_hours", "distribution", None),
    *((f"  {stage} h", f"cycle_time_breakdown_hours.{stage}", "number", None)
      for stage in ("coding", "pickup", "review", "deploy")),
    ("PRs merged", "pull_requests_merged", "count", None),
    ("Pipeline min", "pipeline_duration_minutes", "distribution", None),
    ("Pipeline success %", "pipeline_success_rate", "percent", None),
    ("Incidents", "incidents", "count", None),
    ("Time to restore h", "time_to_restore_hours", "distribution", "recovery_time"),
    ("Libyears", "dependency_freshness.libyears", "number", None),
    ("Deps outdated", "dependency_freshness.outdated", "count", None),
]
SPARK_WEEKS = 12


def card_value(value: Any, kind: str) -> tuple[str, str, str]:
    """(median or value, p90, n) as shown on the card."""
    if kind == "distribution":
        value = value or {}
        return _median_only(value), number(value.get("p90")), count(value.get("n"))
    if kind == "percent":
        return _whole_percent(value), "", ""
    return (count(value) if kind == "count" else number(value)), "", ""


def history_values(history: dict[str, Any] | None, key: str, kind: str) -> list[float | None]:
    """The last SPARK_WEEKS weekly values of `key` for the card's repo (medians of a distribution)."""
    if not history:
        return []
    values = []
    for period in history["periods"][-SPARK_WEEKS:]:
        value = _get(period["repos"][0], key) if period["repos"] else None
        if kind == "distribution":
            value = (value or {}).get("median")
        values.append(value)
    return values


def render_card(report: dict[str, Any], screen: Screen, history: dict[str, Any] | None = None) -> str:
    """One repo's metrics down the page: median, p90, n, level, and the last 12 weeks."""
    row = report["repos"][0]
    buffer = io.StringIO()
    console = screen.console(buffer)
    console.print(safe(f"{row['repo']} ({row.get('forge') or 'unknown forge'})", "bold" if screen.color else ""))
    levels = row.get("levels") or {}
    cells: list[list[str | Text]] = []
    for label, key, kind, level_key in CARD_ROWS:
        if key.startswith("cycle_time_breakdown_hours.") and not row.get("cycle_time_breakdown_hours"):
            continue
        value, p90, n = card_value(_get(row, key), kind)
        level = levels.get(level_key) if level_key else None
        weekly = history and not key.startswith("dependency_freshness")  # a snapshot, not weekly
        spark = sparkline(history_values(history, key, kind)) if weekly else ""
        cells.append([label, value, p90, n,
                      Text(level or "", style=LEVEL_STYLES.get(level or "", "") if screen.color else ""),
                      spark])
    weeks = (history or {}).get("periods", [])[-SPARK_WEEKS:]
    spark_header = f"{weeks[0]['period']}..{weeks[-1]['period'][5:]}" if weeks else "Weeks"
    columns = [Column("Metric", left=True), Column("Median"), Column("p90"), Column("n"),
               Column("Level", left=True), Column(spark_header, left=True, wraps=False)]
    print_tables(console, fitted_tables(columns, cells, screen, title=window_title(report)))
    console.print(f"Median, 90th percentile and count in the window; the level by the {report['levels_benchmark']} "
                  f"benchmarks; one mark a week for the last {SPARK_WEEKS} ISO weeks (· no data).",
                  style="dim" if screen.color else "")
    console.print(safe(coverage_line(row)))
    return finish(buffer.getvalue())


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


def render_report(report: dict[str, Any], fmt: str = "table", screen: Screen | None = None, wide: bool = False,
                  history: dict[str, Any] | None = None) -> str:
    """The report as text in one of table, json, csv, markdown; the table for `screen`
    (render_card's `history` is a weekly trend whose last 12 weeks make the sparklines)."""
    if fmt == "table":
        return as_table(report, screen, wide, history)
    return RENDERERS[fmt](report)
