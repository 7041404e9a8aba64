"""Reliability promises (docs/reliability.md), proved against the sandbox forge.

- Crash safety: a sync killed with SIGKILL at points spread over its requests and writes,
  then run to the end, leaves exactly the database an uninterrupted sync leaves (no
  duplicate, no missing row).
- Secrets: see test_secrets_sweep.py (markers in tokens, URL passwords and query tokens,
  swept from every output, log, stored text and the digest, on success and every error path).
- Concurrency: two syncs at once on one database: one waits, nothing is corrupted.
"""

from __future__ import annotations

import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TEST_NOW
from reliability import (
    Forge,
    SyncLauncher,
    dump,
    forge_process,
    forge_requests,
    steps_started,
    sync_command,
    sync_env,
    write_config,
)

from devmetrics.errors import EXIT_LOCKED, LockedError
from devmetrics.lock import sync_lock
from devmetrics.store import open_engine

pytestmark = pytest.mark.slow

NOW = TEST_NOW.isoformat()
KILLS = 20  # at least this many syncs killed mid-way
KILL_POINTS = 26  # planned: a resumed sync may finish a step before its point (it skips what is stored)


def run_sync(config: Path, *args: str, token: str = "reliability-token-0000") -> subprocess.CompletedProcess[str]:
    return subprocess.run(sync_command(config, *args), env=sync_env(token), capture_output=True,
                          text=True, timeout=300)


@dataclass(frozen=True)
class KillPoint:
    """Kill when the forge has answered `offset` requests since the sync announced `step`."""

    step: str  # "acme/api: releases", or START: counted from the process start
    offset: int


START = "start"


def time_steps(launcher: SyncLauncher, forge: Forge, config: Path, output: Path) -> tuple[list[tuple[str, int]], int]:
    """An uninterrupted sync: each step with the forge's request count when it began, and the total."""
    first = forge_requests(forge)
    pid, seen = launcher.start(config, output, "-v"), [(START, 0)]
    while (status := launcher.poll(pid)) is None:
        for step in steps_started(output)[len(seen) - 1:]:
            seen.append((step, forge_requests(forge) - first))
        time.sleep(0.005)
    assert status == 0, output.read_text()
    return seen, forge_requests(forge) - first


def kill_points(steps: list[tuple[str, int]], total: int, count: int, rng: random.Random) -> list[KillPoint]:
    """`count` points spread evenly over the sync's requests, each aimed at the step it falls in."""
    points = []
    for slot in range(count):
        at = int((slot + rng.uniform(0.05, 0.95)) * total / count) + 1
        step, began = [(s, c) for s, c in steps if c < at][-1]
        points.append(KillPoint(step, at - began))
    return points


def kill_at(launcher: SyncLauncher, forge: Forge, config: Path, output: Path, point: KillPoint,
            rng: random.Random) -> str | None:
    """Run a sync and SIGKILL it at `point` (plus up to 20 ms, to land in its writes too).

    The step it was in when killed, or None when it finished first (a resumed sync skips
    what is stored: known compare ranges, cached registry answers)."""
    first = forge_requests(forge)
    pid = launcher.start(config, output, "-v")
    anchor = first if point.step == START else None
    while anchor is None:
        if launcher.poll(pid) is not None:
            return None
        if point.step in steps_started(output):
            anchor = forge_requests(forge)
        time.sleep(0.005)
    while forge_requests(forge, anchor + point.offset, timeout=0.5) < anchor + point.offset:
        if launcher.poll(pid) is not None:
            return None
    time.sleep(rng.uniform(0, 0.02))
    if launcher.poll(pid) is not None:
        return None
    launcher.kill(pid)
    return (steps_started(output) or [START])[-1]


def test_sigkill_during_requests_and_writes_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    launcher = SyncLauncher()
    try:
        with forge_process(NOW) as forge:
            clean = write_config(tmp_path / "clean", forge)
            steps, total = time_steps(launcher, forge, clean, tmp_path / "clean.out")
            crashed = write_config(tmp_path / "crashed", forge)
            killed = [kill_at(launcher, forge, crashed, tmp_path / f"kill-{n}.out", point, rng)
                      for n, point in enumerate(kill_points(steps, total, KILL_POINTS, rng))]
            final = launcher.start(crashed, tmp_path / "final.out")
            assert launcher.wait(final) == 0, (tmp_path / "final.out").read_text()
    finally:
        launcher.close()
    kills = [step for step in killed if step is not None]
    assert len(kills) >= KILLS and len(set(kills)) >= KILLS // 2, killed  # spread over many steps
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
