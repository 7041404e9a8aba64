"""Text for the terminal it is read in: width, colour, and tables that fit.

    Screen.detect(to_file=False) -> Screen   # width, colour, box characters of stdout
    screen.console(buffer) -> rich Console    # render into a buffer as that screen shows it
    fitted_tables(columns, rows, screen) -> list[Table]   # one or more blocks, none too wide
    safe(value) -> Text                       # forge text: no markup, no control characters
    shorten_middle(text, width) -> str        # "acme/plat…ools/cli"
    sparkline(values) -> str                  # "▁▃█·▅"

A terminal gets box characters and (unless NO_COLOR is set or TERM=dumb) colour; piped or
written to a file, the same tables come as plain aligned text without either. Nothing from a
forge (repo names, titles, authors, workflow names) is read as rich markup, and control
characters in it print as U+FFFD, so a title cannot style or corrupt the terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

NONE = "—"
ELLIPSIS = "…"
# C0 and C1 control characters (ESC, CR, BEL, backspace, CSI...): replaced, never sent.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")  # spaces at a line's end, before its style resets
_BARS = "▁▂▃▄▅▆▇█"
NO_DATA = "·"
LEVEL_STYLES = {"elite": "bold green", "high": "green", "medium": "yellow", "low": "red"}


@dataclass(frozen=True)
class Screen:
    """How output will be shown: `width` columns, with colour and/or box characters."""

    width: int = 80
    color: bool = False
    boxes: bool = False

    @classmethod
    def detect(cls, stream: IO[str] | None = None, to_file: bool = False) -> Screen:
        """stdout's screen: a terminal's size ($COLUMNS wins), else $COLUMNS or 80 columns.

        A terminal gets box characters, and colour unless NO_COLOR is set or TERM is dumb
        (https://no-color.org); a pipe or a file gets plain text."""
        stream = stream or sys.stdout
        try:
            tty = not to_file and stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        width = shutil.get_terminal_size((80, 24)).columns if tty else _columns_env()
        color = tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        return cls(width=max(width, 40), color=color, boxes=tty)

    gap = 1  # characters between two columns: the box's blank rule, or a space of padding

    def console(self, file: IO[str]) -> Console:
        return Console(file=file, width=self.width, force_terminal=self.color, no_color=not self.color,
                       color_system="standard" if self.color else None, markup=False, highlight=False,
                       emoji=False, legacy_windows=False)

    def table(self, **options: Any) -> Table:
        return Table(box=box.SIMPLE_HEAD if self.boxes else None, show_edge=False,
                     padding=(0, 0, 0, 0) if self.boxes else (0, 1, 0, 0),
                     pad_edge=False, header_style="bold" if self.color else "", title_justify="left",
                     title_style="bold" if self.color else "", **options)


def _columns_env() -> int:
    try:
        return int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return 80


def clean(value: object) -> str:
    """Forge text on one line, control characters (ESC, CR, ...) as U+FFFD."""
    text = "" if value is None else str(value)
    return _CONTROL.sub("\ufffd", text)


def safe(value: object, style: str = "") -> Text:
    """A cell that rich prints as is: `[bold]` stays text, no control character gets through."""
    return Text(clean(value), style=style)


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters: its start and end with an ellipsis between
    (an owner and a repo's last part, a scope and a package, both stay readable)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def sparkline(values: Sequence[float | None]) -> str:
    """One block per value, scaled from 0 (or the lowest, if negative) to the highest;
    `·` where a period has no value."""
    known = [v for v in values if v is not None]
    if not known:
        return NO_DATA * len(values)
    low, high = min(0.0, *known), max(known)
    span = high - low
    marks = []
    for value in values:
        if value is None:
            marks.append(NO_DATA)
        elif span == 0:
            marks.append(_BARS[0])
        else:
            marks.append(_BARS[round((value - low) / span * (len(_BARS) - 1))])
    return "".join(marks)


@dataclass(frozen=True)
class Column:
    """A table column: `header` (its words may wrap), right-aligned unless `left`, and
    whether long values are `shortened` in the middle to fit (names, titles, paths)."""

    header: str
    left: bool = False
    shortened: bool = False
    fewest: int = 10  # a shortened column keeps at least this many characters
    wraps: bool = True  # the header may wrap at spaces (else the column is as wide as it)


def fitted_tables(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], screen: Screen,
                  keep: int = 1, title: str | None = None, styles: Sequence[str] = (),
                  section: int | None = None) -> list[Table]:
    """The rows as tables no wider than the screen: shortened columns give way first (down
    to their `fewest` characters, in the middle), headers wrap at spaces; when that is still
    too wide the columns are split into blocks of tables, each repeating the first `keep`
    columns (the repo, the period) so every block reads on its own. A rule goes above row
    `section` (the all-repos row) where the screen draws boxes."""
    texts = [[cell.plain if isinstance(cell, Text) else cell for cell in row] for row in rows]
    widths = [_natural(column, [row[i] for row in texts]) for i, column in enumerate(columns)]
    room = screen.width

    def width_of(indexes: Sequence[int]) -> int:
        return sum(widths[i] for i in indexes) + screen.gap * (len(indexes) - 1)

    floors = [max(column.fewest, _natural(Column(column.header), [])) if column.shortened else widths[i]
              for i, column in enumerate(columns)]
    everything = list(range(len(columns)))
    if sum(floors) + screen.gap * (len(columns) - 1) <= room:
        shrink(widths, floors, everything, width_of, room)  # one block: give way to fit in it
    blocks: list[list[int]] = []
    current = list(range(keep))
    for index in range(keep, len(columns)):
        if len(current) > keep and width_of([*current, index]) > room:
            blocks.append(current)
            current = list(range(keep))
        current.append(index)
    blocks.append(current)
    for block in blocks:  # a block still too wide: its shortened columns give way
        shrink(widths, [least if i in block else widths[i] for i, least in enumerate(floors)], block, width_of, room)
    tables = []
    for number, block in enumerate(blocks):
        table = screen.table(title=title if number == 0 else None)
        for i in block:
            header = "\n".join(textwrap.wrap(columns[i].header, widths[i])) or columns[i].header
            table.add_column(header, justify="left" if columns[i].left else "right",
                             width=widths[i], no_wrap=True, overflow="ellipsis")
        for row_number, row in enumerate(rows):
            style = styles[row_number] if row_number < len(styles) else ""
            table.add_row(*(_cell(row[i], columns[i], widths[i]) for i in block), style=style,
                          end_section=section is not None and row_number == section - 1)
        tables.append(table)
    return tables


def shrink(widths: list[int], floors: Sequence[int], indexes: Sequence[int], width_of: Any, room: int) -> None:
    """Narrow the columns of `indexes`, one character at a time from the one with the most
    to spare over its floor, until they fit in `room` or reach their floors."""
    while width_of(indexes) > room:
        spare = [widths[i] - floors[i] for i in indexes]
        if max(spare) <= 0:
            return
        widths[indexes[spare.index(max(spare))]] -= 1


def _natural(column: Column, cells: Sequence[str]) -> int:
    words = column.header.split() if column.wraps else [column.header]
    return max([*(len(word) for word in words), 1, *(len(cell) for cell in cells)])


def _cell(value: str | Text, column: Column, width: int) -> Text:
    text = value if isinstance(value, Text) else safe(value)
    if column.shortened and len(text.plain) > width:
        return Text(shorten_middle(text.plain, width), style=text.style)
    return text


def print_tables(console: Console, tables: Sequence[Table]) -> None:
    for number, table in enumerate(tables):
        if number:
            console.print()
        console.print(table)


def finish(text: str) -> str:
    """Rendered text without the spaces rich pads lines with (a title, a blank row)."""
    return "".join(_TRAILING.sub(r"\1", line) + "\n" for line in text.splitlines())
