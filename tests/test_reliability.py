"""Reliability promises (docs/reliability.md), proved against the sandbox forge.

- Crash safety: a sync killed with SIGKILL at random moments, then run to the end, leaves
  exactly the database an uninterrupted sync leaves (no duplicate, no missing row).
- Secrets: see test_secrets_sweep.py (markers in tokens, URL passwords and query tokens,
  swept from every output, log, stored text and the digest, on success and every error path).
- Concurrency: two syncs at once on one database: one waits, nothing is corrupted.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TEST_NOW
from reliability import dump, forge_process, sync_command, sync_env, write_config

from devmetrics.errors import EXIT_LOCKED, LockedError
from devmetrics.lock import sync_lock
from devmetrics.store import open_engine

pytestmark = pytest.mark.slow

NOW = TEST_NOW.isoformat()
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


def wait_until_locked(database_url: str, first: subprocess.Popen[str], seconds: float = 120) -> None:
    """Poll until the first sync holds the lock (under load its start-up takes a while)."""
    engine = open_engine(database_url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and first.poll() is None:
        try:
            with sync_lock(engine, wait=False):
                pass
        except LockedError:
            return
        time.sleep(0.05)
    raise AssertionError("the first sync never took the lock")


def test_two_syncs_at_once_on_sqlite(tmp_path: Path) -> None:
    with forge_process(NOW) as forge:
        config = write_config(tmp_path, forge)
        first = subprocess.Popen(sync_command(config), env=sync_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        wait_until_locked(f"sqlite:///{tmp_path / 'devmetrics.db'}", first)
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
        wait_until_locked(postgres_schema, first)
        refused = run_sync(config, "--no-wait")
        first_out = first.communicate(timeout=300)
        again = run_sync(config)
    assert first.returncode == 0, first_out[1]
    assert refused.returncode == EXIT_LOCKED, refused.stderr
    assert again.returncode == 0, again.stderr
    assert dump(postgres_schema)["pull_request"]
