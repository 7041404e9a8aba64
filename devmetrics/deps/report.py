"""`devmetrics deps --repo R`: a repo's dependencies from the store, worst first."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from devmetrics.models import Dependency, Repository
from devmetrics.terminal import Screen, clean, finish, shorten_middle

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


def render_dependencies(rows: Sequence[dict[str, Any]], fmt: str = "table", width: int | None = None,
                        screen: Screen | None = None) -> str:
    """`list_dependencies` rows as a table (missing values print as —) or JSON.

    The table is as wide as the `screen` (devmetrics/terminal.py: the terminal's, with box
    characters only there), else `width`, else $COLUMNS, else 80 columns of plain text; see
    `fit_widths` for what gives way when it is narrow. Names from manifests are never read
    as markup, and control characters in them print as U+FFFD.
    """
    if fmt == "json":
        return json.dumps([_jsonable(row) for row in rows], indent=2) + "\n"
    screen = screen or Screen(width=width or Screen.detect(to_file=True).width)
    buffer = io.StringIO()
    console = screen.console(buffer)
    console.print(_table(rows, screen))
    return finish(buffer.getvalue())


# (header, justify, fewest characters it is given). Package and Manifest are shortened in
# the middle, the others fold; Libyears and Majors never give way.
COLUMNS_SHOWN = (("Package", "left", 12), ("Ecosystem", "left", 6), ("Manifest", "left", 10),
                 ("Current", "left", 7), ("Latest", "left", 7), ("Libyears", "right", 8),
                 ("Majors\nbehind", "right", 6), ("Resolution", "left", 8))
TIGHTEST = 4
SHORTENED = {"Package", "Manifest"}
GIVE_WAY_FIRST = SHORTENED | {"Current", "Latest"}


def _cells(row: dict[str, Any]) -> list[str]:
    return [clean(row["name"]), clean(row["ecosystem"]), clean(row["manifest_path"]), _text(row["current_version"]),
            _text(row["latest_version"]), _text(row["libyears"], "{:.2f}"), _text(row["majors_behind"]),
            row["resolution"] if row["status"] == "ok" else row["status"]]


def _table(rows: Sequence[dict[str, Any]], screen: Screen) -> Table:
    cells = [_cells(row) for row in rows]
    widths = fit_widths(cells, screen.width - screen.gap * (len(COLUMNS_SHOWN) - 1))
    table = screen.table(title="Dependency freshness", caption=_caption(rows), caption_justify="left")
    for (header, justify, _), column_width in zip(COLUMNS_SHOWN, widths, strict=True):
        table.add_column(header, justify=justify, width=column_width, overflow="fold")  # type: ignore[arg-type]
    for line in cells:
        table.add_row(*(Text(shorten_middle(cell, w) if header in SHORTENED else cell)
                        for (header, _, _), cell, w in zip(COLUMNS_SHOWN, line, widths, strict=True)))
    return table


def fit_widths(cells: Sequence[Sequence[str]], room: int) -> list[int]:
    """Each column's width: as wide as its widest cell and header while all fit in `room`.
    Else, one character at a time from whichever column has the most to spare: first the
    long-text ones (name, path, versions) down to their fewest characters, then the others
    down to their widest cell or their header's longest word (so headers stay whole as
    long as they can), then every column down to TIGHTEST (a header folds before a value
    does)."""
    longest = [max([len(line[i]) for line in cells] or [1]) for i in range(len(COLUMNS_SHOWN))]
    widths = [max(longest[i], *(len(part) for part in header.split("\n")))
              for i, (header, _, _) in enumerate(COLUMNS_SHOWN)]
    long_text = [header in GIVE_WAY_FIRST for header, _, _ in COLUMNS_SHOWN]
    fewest = [min(least, width) if text else width
              for (_, _, least), width, text in zip(COLUMNS_SHOWN, widths, long_text, strict=True)]
    words = [max(len(word) for word in header.split()) for header, _, _ in COLUMNS_SHOWN]
    values = [least if text else max(cell, word, TIGHTEST)
              for least, cell, word, text in zip(fewest, longest, words, long_text, strict=True)]
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


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _text(value: Any, template: str = "{}") -> str:
    return "—" if value is None else clean(template.format(value))
