"""`devmetrics deps --repo R`: a repo's dependencies from the store, worst first."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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


def render_dependencies(rows: Sequence[dict[str, Any]], fmt: str = "table", width: int = 140) -> str:
    """`list_dependencies` rows as a rich table (missing values print as —) or JSON."""
    if fmt == "json":
        return json.dumps([_jsonable(row) for row in rows], indent=2) + "\n"
    table = Table(title="Dependency freshness", show_lines=False)
    for header, justify in (("Package", "left"), ("Ecosystem", "left"), ("Manifest", "left"),
                            ("Current", "left"), ("Latest", "left"), ("Libyears", "right"),
                            ("Majors behind", "right"), ("Resolution", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(row["name"], row["ecosystem"], row["manifest_path"],
                      _text(row["current_version"]), _text(row["latest_version"]),
                      _text(row["libyears"], "{:.2f}"), _text(row["majors_behind"]),
                      row["resolution"] if row["status"] == "ok" else row["status"])
    buffer = io.StringIO()
    Console(file=buffer, width=width, force_terminal=False, color_system=None).print(table)
    return buffer.getvalue()


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _text(value: Any, template: str = "{}") -> str:
    return "—" if value is None else template.format(value)
