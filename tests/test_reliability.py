"""Reliability promises (docs/reliability.md), proved against the sandbox forge.

- Crash safety: a sync killed with SIGKILL at random moments, then run to the end, leaves
  exactly the database an uninterrupted sync leaves (no duplicate, no missing row).
- Secrets: a token set to a unique marker appears nowhere: stdout, stderr, logs, database.
- Concurrency: two syncs at once on one database: one waits, nothing is corrupted.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devmetrics.errors import EXIT_LOCKED
from devmetrics.models import now_utc
from reliability import dump, forge_process, sync_command, sync_env, write_config

pytestmark = pytest.mark.slow

NOW = now_utc().replace(microsecond=0).isoformat()
KILLS = 20


def run_sync(config: Path, *args: str, token: str = "reliability-token-0000") -> subprocess.CompletedProcess[str]:
    return subprocess.run(sync_command(config, *args), env=sync_env(token), capture_output=True,
                          text=True, timeout=300)


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    with forge_process(NOW) as forge:
        clean = write_config(tmp_path / "clean", forge)
        started = time.monotonic()
        done = run_sync(clean)
        duration = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        crashed = write_config(tmp_path / "crashed", forge)
        kill_points = sorted(rng.uniform(0.3, duration) for _ in range(KILLS))
        for delay in kill_points:  # each run starts from wherever the last one was killed
            process = subprocess.Popen(sync_command(crashed), env=sync_env(), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        final = run_sync(crashed)
        assert final.returncode == 0, final.stderr
    expected = dump(f"sqlite:///{tmp_path / 'clean' / 'devmetrics.db'}")
    got = dump(f"sqlite:///{tmp_path / 'crashed' / 'devmetrics.db'}")
    assert sum(len(rows) for rows in expected.values()) > 1000
    for table, rows in expected.items():
        assert got[table] == rows, f"{table}: {len(got[table])} rows after crashes, {len(rows)} expected"


def test_token_marker_appears_nowhere(tmp_path: Path) -> None:
    marker = "dmSECRETmarker7f3a9c2e51"
    with forge_process(NOW) as forge:
        config = write_config(tmp_path, forge)
        outputs = []
        for args in (("-vv",), ("-vv", "--repo", "acme/nope")):
            done = run_sync(config, *args, token=marker)
            outputs += [done.stdout, done.stderr]
        forge.process.send_signal(signal.SIGSTOP)  # a forge that stops answering: errors are printed
        try:
            done = subprocess.run(sync_command(config, "-vv"), env={**sync_env(marker)}, capture_output=True,
                                  text=True, timeout=120)
            outputs += [done.stdout, done.stderr]
        finally:
            forge.process.send_signal(signal.SIGCONT)
        report = subprocess.run([*sync_command(config)[:3], "report", "--config", str(config), "--format", "json"],
                                env=sync_env(marker), capture_output=True, text=True, timeout=120)
        outputs += [report.stdout, report.stderr]
    assert all(marker not in text for text in outputs)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path


def test_two_syncs_at_once_on_sqlite(tmp_path: Path) -> None:
    with forge_process(NOW) as forge:
        config = write_config(tmp_path, forge)
        first = subprocess.Popen(sync_command(config), env=sync_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        refused = run_sync(config, "--no-wait")
        waited = run_sync(config)  # waits for the first, then re-syncs incrementally
        first_out = first.communicate(timeout=300)
    assert first.returncode == 0, first_out[1]
    assert refused.returncode == EXIT_LOCKED and "another devmetrics sync is running" in refused.stderr
    assert waited.returncode == 0, waited.stderr
    assert "Traceback" not in refused.stderr + waited.stderr
    rows = dump(f"sqlite:///{tmp_path / 'devmetrics.db'}")
    assert len(rows["pull_request"]) == len(set(rows["pull_request"]))


@pytest.mark.postgres
def test_two_syncs_at_once_on_postgres(tmp_path: Path, postgres_schema: str) -> None:
    with forge_process(NOW) as forge:
        config = write_config(tmp_path, forge, database_url=postgres_schema)
        first = subprocess.Popen(sync_command(config), env=sync_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        refused = run_sync(config, "--no-wait")
        first_out = first.communicate(timeout=300)
        again = run_sync(config)
    assert first.returncode == 0, first_out[1]
    assert refused.returncode == EXIT_LOCKED, refused.stderr
    assert again.returncode == 0, again.stderr
    assert dump(postgres_schema)["pull_request"]
