"""The report reads PostgreSQL into Arrow (ADBC's PostgreSQL driver) into the same frames
as SQLite: a generated store copied into the local server gives equal frames, dtypes
included, and the same JSON report, and no row passes through Python on the way."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_scale import copy_store

from devmetrics import report
from devmetrics.metrics import ReportSettings, Window
from devmetrics.report import build_report, load_frames, render_report
from devmetrics.store import open_engine

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


def bench_generator() -> Any:
    """scripts/bench-report's store generator, made small (20 repos, 4,000 PRs)."""
    loader = importlib.machinery.SourceFileLoader("bench_report_small", str(ROOT / "scripts" / "bench-report"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    module.REPOS, module.PRS, module.DEPLOYMENTS, module.RUNS, module.INCIDENTS = 20, 4_000, 800, 4_000, 200
    return module


@pytest.fixture
def stores(tmp_path: Path, postgres_schema: str) -> tuple[str, str]:
    generator = bench_generator()
    path = tmp_path / "bench.db"
    generator.build(path)
    sqlite_url = f"sqlite:///{path}"
    copy_store(sqlite_url, postgres_schema)
    return sqlite_url, postgres_schema


def no_row_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the report read rows through pd.read_sql")

    monkeypatch.setattr(report.pd, "read_sql", refuse)


def test_postgres_frames_equal_sqlite_frames(stores: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    no_row_reads(monkeypatch)
    window = Window.from_dates(date(2026, 1, 1), date(2026, 7, 1))
    sqlite_url, postgres_url = stores
    frames = {url: load_frames(open_engine(url), None, window) for url in stores}
    for kind in vars(frames[sqlite_url]):
        from_sqlite, from_postgres = getattr(frames[sqlite_url], kind), getattr(frames[postgres_url], kind)
        assert len(from_sqlite) > 0, kind
        key = [c for c in ("id", "repo_id", "deployment_id", "sha", "started_at") if c in from_sqlite.columns]
        ordered = [frame.sort_values(key).reset_index(drop=True) for frame in (from_sqlite, from_postgres)]
        pd.testing.assert_frame_equal(ordered[1], ordered[0], obj=kind)


def test_postgres_report_equals_sqlite_report(stores: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    no_row_reads(monkeypatch)
    since, until = date(2025, 11, 23), date(2026, 11, 23)
    reports = [render_report(build_report(open_engine(url), ReportSettings(), since, until, by="month"), "json")
               for url in stores]
    assert '"deployments": null' not in reports[0].split('"trend"')[0]  # real work in the whole window
    assert reports[1] == reports[0]
