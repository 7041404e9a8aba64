"""How a figure and its change are written, the same in Markdown, Slack and text.

    fmt_value(value, unit) -> str             # "—" for no data, never 0
    fmt_n(row) -> str                          # "n=12" for a median, "of 5" for a rate
    fmt_delta(delta, unit) -> str              # "▲ +2", "▼ -9.5 h", "▲ +5.0 pp"
    fmt_change(row) -> str                     # "🟢 better ▼ -9.5 h (-32%)"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UP, DOWN, SAME = "▲", "▼", "="
# Emoji that GitHub and Slack both render; the word beside each says it without colour.
MARKS = {"better": "🟢", "worse": "🔴", "within noise": "⚪", "few events": "◌", "flat": "⚪",
         "no data": "", "not tested": ""}


COMPACT = {"better": " 🟢", "worse": " 🔴", "few events": " ◌"}  # the overview: marks without words


def shorten(text: object, length: int) -> str:
    """`text` cut to `length` characters at a word where it can be, with an ellipsis."""
    value = " ".join(str(text or "").split())
    if len(value) <= length:
        return value
    cut = value[: length - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > length // 2 else cut).rstrip() + "…"


def fmt_value(value: float | None, unit: str) -> str:
    """`—` for no data (never 0); counts whole, rates as percent, durations with a unit."""
    if value is None:
        return "—"
    if unit == "count":
        return f"{value:g}"
    if unit == "rate":
        return f"{value * 100:.0f}%"
    return f"{value:.1f} {'h' if unit == 'hours' else 'min'}"


def fmt_n(n: int | None, unit: str) -> str:
    """The sample a figure rests on: `n=12` for a median, `of 5` for a rate; counts need none."""
    if n is None or unit == "count":
        return ""
    return f"of {n}" if unit == "rate" else f"n={n}"


def fmt_figure(value: float | None, n: int | None, unit: str) -> str:
    """`20.5 h (n=12)`, `20% (of 5)`, `5`; `—` alone when there is no value."""
    text, size = fmt_value(value, unit), fmt_n(n, unit)
    return f"{text} ({size})" if size and value is not None else text


def fmt_delta(delta: float | None, unit: str) -> str:
    """`▲ +2`, `▼ -9.6 h`, `▲ +5.0 pp` (rates change in percentage points), `= 0`."""
    if delta is None:
        return "—"
    if delta == 0:
        return f"{SAME} 0"
    arrow = UP if delta > 0 else DOWN
    if unit == "count":
        return f"{arrow} {delta:+g}"
    if unit == "rate":
        return f"{arrow} {delta * 100:+.1f} pp"
    return f"{arrow} {delta:+.1f} {'h' if unit == 'hours' else 'min'}"


def fmt_relative(relative: float | None) -> str:
    return "" if relative is None else f" ({relative * 100:+.0f}%)"


def fmt_change(row: Mapping[str, Any], marks: bool = True) -> str:
    """The verdict first, then the absolute and relative change: `🟢 better ▼ -9.5 h (-32%)`."""
    word = row.get("verdict") or "not tested"
    if word == "no data":
        return "—"
    if row["delta"] == 0:
        return f"{MARKS['flat'] if marks else ''} flat".strip()
    change = fmt_delta(row["delta"], row["unit"]) + fmt_relative(row.get("relative"))
    if word == "not tested":
        return change
    mark = MARKS.get(word, "") if marks else ""
    return " ".join(part for part in (mark, word, change) if part)
