"""Snapshot files in tests/snapshots/: compared byte for byte; DEVMETRICS_UPDATE_SNAPSHOTS=1 rewrites them.

A missing snapshot fails (it is never created silently): run once with the variable set,
read the file, and commit it.
"""

from __future__ import annotations

import os
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("DEVMETRICS_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no snapshot {path}: run with DEVMETRICS_UPDATE_SNAPSHOTS=1 and review it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its snapshot (DEVMETRICS_UPDATE_SNAPSHOTS=1 rewrites it)"
