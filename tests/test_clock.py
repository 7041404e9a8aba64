"""The one clock: `--now` / DEVMETRICS_NOW fix "now" for every command of a run."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import TEST_NOW
from sqlmodel import Session

from devmetrics import models
from devmetrics.cli import main
from devmetrics.clock import NOW_ENV, now_utc, parse_now
from devmetrics.store import open_engine


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-23T12:00:00Z", datetime(2026, 11, 23, 12, tzinfo=UTC)),
    ("2026-11-23T14:00:00+02:00", datetime(2026, 11, 23, 12, tzinfo=UTC)),
    ("2026-11-23T12:00:00", datetime(2026, 11, 23, 12, tzinfo=UTC)),  # naive reads as UTC
    ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
])
def test_parse_now_reads_iso_times_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_now(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


def test_the_suite_runs_on_the_pinned_clock() -> None:
    assert now_utc() == TEST_NOW


def test_the_system_clock_when_nothing_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NOW_ENV)
    before = datetime.now(UTC)
    assert before <= now_utc() <= datetime.now(UTC)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """`devmetrics ARGS` through the entry point a user runs: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["devmetrics", *args])
    try:
        main()
        code = 0
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_now_option_sets_the_default_report_window(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "dm.db"
    engine = open_engine(f"sqlite:///{database}")
    with Session(engine) as session:
        session.add(models.Repository(id=1, forge="github", host="github.com", full_name="acme/api",
                                      default_branch="main", url="https://github.com/acme/api"))
        session.commit()
    engine.dispose()
    config = tmp_path / "devmetrics.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{database}"\n')
    monkeypatch.setenv(NOW_ENV, TEST_NOW.isoformat())  # restored after the test: --now writes it
    code, out, err = run_cli(["--now", "2025-03-10T01:00:00+00:00", "report", "--config", str(config),
                              "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    report = json.loads(out)
    assert (report["since"], report["until"]) == ("2025-02-10", "2025-03-10")  # 28 days before that day


def test_a_bad_now_is_one_usage_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NOW_ENV, TEST_NOW.isoformat())
    code, out, err = run_cli(["--now", "next tuesday", "report"], capsys, monkeypatch)
    assert code == 2
    assert err.count("\n") == 1 and "'next tuesday' is not an ISO datetime" in err and "Traceback" not in err
