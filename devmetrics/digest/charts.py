"""Mermaid xychart-beta blocks for the trend weeks (GitHub renders them in issues)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devmetrics.digest.assemble import TRENDS


def trend_charts(weeks: Sequence[str], trend: Mapping[str, Sequence[float | None]]) -> list[str]:
    """One chart per trend series (bars for counts, lines for medians)."""
    charts = []
    for name, (_, title, count) in TRENDS.items():
        points = [(week, value) for week, value in zip(weeks, trend[name], strict=True)
                  if value is not None]  # a week without a median is left out, not drawn as 0
        if not points:
            charts.append(f"_{title}: no data in these weeks._")
            continue
        charts.append(mermaid_chart(title, points, "bar" if count else "line"))
    return charts


def mermaid_chart(title: str, points: Sequence[tuple[str, float]], kind: str) -> str:
    labels = ", ".join(f'"{week.split("-")[-1]}"' for week, _ in points)
    values = ", ".join(f"{round(value, 1):g}" for _, value in points)
    top = max(1.0, max(value for _, value in points))
    return "\n".join(["```mermaid", "xychart-beta", f'    title "{title}"',
                      f"    x-axis [{labels}]", f"    y-axis 0 --> {top:g}",
                      f"    {kind} [{values}]", "```"])
