"""Mermaid xychart-beta blocks for the trend weeks (GitHub renders them in issues)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devmetrics.digest.assemble import TRENDS


def trend_charts(weeks: Sequence[str], trend: Mapping[str, Sequence[float | None]]) -> list[str]:
    """One chart per trend series (bars for counts, lines for medians), every week on the axis.

    A week without events is drawn at 0: leaving it out would squeeze the x-axis and make
    the weeks around it look adjacent. The JSON keeps such a median null; the chart's note says
    which weeks had none.
    """
    charts = []
    for name, (_, title, count) in TRENDS.items():
        values = list(trend[name])
        if all(value is None for value in values):
            charts.append(f"_{title}: no data in these weeks._")
            continue
        points = [(week, 0.0 if value is None else value) for week, value in zip(weeks, values, strict=True)]
        chart = mermaid_chart(title, points, "bar" if count else "line")
        empty = [week.split("-")[-1] for week, value in zip(weeks, values, strict=True) if value is None]
        if empty and not count:
            chart += f"\n\n_{title}: no events in {', '.join(empty)} (drawn at 0)._"
        charts.append(chart)
    return charts


def mermaid_chart(title: str, points: Sequence[tuple[str, float]], kind: str) -> str:
    labels = ", ".join(f'"{week.split("-")[-1]}"' for week, _ in points)
    values = ", ".join(f"{round(value, 1):g}" for _, value in points)
    top = max(1.0, max(value for _, value in points))
    return "\n".join(["```mermaid", "xychart-beta", f'    title "{title}"',
                      f"    x-axis [{labels}]", f"    y-axis 0 --> {top:g}",
                      f"    {kind} [{values}]", "```"])
