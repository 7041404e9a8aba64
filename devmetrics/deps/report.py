"""`devmetrics deps --repo R`: a repo's dependencies from the store, worst first."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from devmetrics.models import Dependency, Repository

COLUMNS = ("manifest_path", "ecosystem", "name", "spec", "current_version", "latest_version",
           "libyears", "majors_behind", "resolution", "status", "current_released_at",
           "latest_released_at")
STATUS_ORDER = {"ok": 0, "unknown": 1, "unsupported": 2}


def list_dependencies(engine: Engine, repo_full_name: str) -> list[dict[str, Any]]:
    """The repo's dependencies as dicts (COLUMNS plus `repo`), worst first: most majors
    behind, then most libyears; unknown and unsupported ones last."""
    dep, repo = Dependency.__table__, Repository.__table__  # type: ignore[attr-defined]
    query = (sa.select(repo.c.full_name.label("repo"), *[dep.c[c] for c in COLUMNS])
             .join(repo, repo.c.id == dep.c.repo_id)
             .where(repo.c.full_name == repo_full_name))
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    return sorted(rows, key=_worst_first)


def _worst_first(row: dict[str, Any]) -> tuple[Any, ...]:
    return (STATUS_ORDER.get(row["status"], 3), -(row["majors_behind"] or 0),
            -(row["libyears"] or 0.0), row["ecosystem"], row["name"], row["manifest_path"])


def render_dependencies(rows: Sequence[dict[str, Any]], fmt: str = "table", width: int | None = None) -> str:
    """`list_dependencies` rows as a rich table (missing values print as —) or JSON.

    The table is as wide as the console (`width` None: the terminal's, as rich finds it,
    else $COLUMNS, else 80); see `fit_widths` for what gives way when it is narrow.
    """
    if fmt == "json":
        return json.dumps([_jsonable(row) for row in rows], indent=2) + "\n"
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(_table(rows, console.width))
    return buffer.getvalue()


# (header, justify, fewest characters it is given). Package and Manifest are shortened in
# the middle, the others fold; Libyears and Majors never give way.
COLUMNS_SHOWN = (("Package", "left", 12), ("Ecosystem", "left", 6), ("Manifest", "left", 10),
                 ("Current", "left", 7), ("Latest", "left", 7), ("Libyears", "right", 8),
                 ("Majors\nbehind", "right", 6), ("Resolution", "left", 8))
TIGHTEST = 4
GAP = 2  # between columns: one space of padding and the box's blank separator
SHORTENED = {"Package", "Manifest"}
GIVE_WAY_FIRST = SHORTENED | {"Current", "Latest"}


def _cells(row: dict[str, Any]) -> list[str]:
    return [row["name"], row["ecosystem"], row["manifest_path"], _text(row["current_version"]),
            _text(row["latest_version"]), _text(row["libyears"], "{:.2f}"), _text(row["majors_behind"]),
            row["resolution"] if row["status"] == "ok" else row["status"]]


def _table(rows: Sequence[dict[str, Any]], console_width: int) -> Table:
    cells = [_cells(row) for row in rows]
    widths = fit_widths(cells, console_width - GAP * len(COLUMNS_SHOWN) + 1)
    table = Table(title="Dependency freshness", caption=_caption(rows), caption_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, padding=(0, 1, 0, 0))
    for (header, justify, _), column_width in zip(COLUMNS_SHOWN, widths, strict=True):
        table.add_column(header, justify=justify, width=column_width, overflow="fold")  # type: ignore[arg-type]
    for line in cells:
        table.add_row(*(shorten_middle(cell, w) if header in SHORTENED else cell
                        for (header, _, _), cell, w in zip(COLUMNS_SHOWN, line, widths, strict=True)))
    return table


def fit_widths(cells: Sequence[Sequence[str]], room: int) -> list[int]:
    """Each column's width: as wide as its widest cell and header while all fit in `room`.
    Else, one character at a time from whichever column has the most to spare: first the
    long-text ones (name, path, versions) down to their fewest characters, then the others
    down to their widest cell (a header folds before a value does), then every column
    down to TIGHTEST."""
    longest = [max([len(line[i]) for line in cells] or [1]) for i in range(len(COLUMNS_SHOWN))]
    widths = [max(longest[i], *(len(part) for part in header.split("\n")))
              for i, (header, _, _) in enumerate(COLUMNS_SHOWN)]
    long_text = [header in GIVE_WAY_FIRST for header, _, _ in COLUMNS_SHOWN]
    fewest = [min(least, width) if text else width
              for (_, _, least), width, text in zip(COLUMNS_SHOWN, widths, long_text, strict=True)]
    values = [least if text else max(cell, TIGHTEST)
              for least, cell, text in zip(fewest, longest, long_text, strict=True)]
    for floor in (fewest, values, [TIGHTEST] * len(widths)):
        while sum(widths) > room:
            spare = [width - least for width, least in zip(widths, floor, strict=True)]
            if max(spare) <= 0:
                break  # narrower still: rich folds what is left
            widths[spare.index(max(spare))] -= 1
    return widths


def _caption(rows: Sequence[dict[str, Any]]) -> str:
    """The total, and how it is rounded: the sum is of the unrounded values, so it may
    differ by a few hundredths from adding up the column."""
    from devmetrics.deps.freshness import summarise  # freshness imports this module

    summary = summarise([SimpleNamespace(**row) for row in rows])
    total = "—" if summary["libyears"] is None else f"{summary['libyears']:.2f}"
    return (f"{total} libyears over {summary['dependencies']} evaluated dependencies. Libyears: years "
            "of 365.25 days between the release in use and the latest, shown to 2 decimals; the "
            "total adds the unrounded values, then rounds.")


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters: its start and end, an ellipsis between them
    (a Go module's host and last path part, an npm scope and package, both stay readable)."""
    if len(text) <= width:
        return text
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _text(value: Any, template: str = "{}") -> str:
    return "—" if value is None else template.format(value)
