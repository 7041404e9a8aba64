"""A repo evaluated end to end: the demo dataset's manifests, the fake registries over
loopback, the store. Expected values are worked out by hand from the curated histories in
sandbox/registries.py."""

from __future__ import annotations

import importlib.machinery
import json
import logging
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from devmetrics import store
from devmetrics.deps.freshness import (
    evaluate_repo,
    latest_snapshot,
    list_dependencies,
    registries_for,
    render_dependencies,
    save_freshness,
    summarise,
)
from devmetrics.models import Dependency, DependencySnapshot, Repository
from devmetrics.sandbox.dataset import manifest_files
from devmetrics.sandbox.registries import serving_registries
from devmetrics.sandbox.server import Sandbox

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
YEAR = 365.25
FILES = {path: text.encode() for path, text in manifest_files(("python", "node", "go")).items()}

# name -> (current, resolution, latest, days from current's release to latest's, majors)
EXPECTED = {
    "requests": ("2.28.0", "pin", "2.32.3", 720, 0),  # 2022-06-09 -> 2024-05-29; 2.32.0 yanked
    "click": ("8.1.7", "range-max", "8.1.7", 0, 0),  # >=8.0
    "flask": ("2.3.3", "range-max", "3.0.3", 230, 1),  # ~=2.2: 2023-08-21 -> 2024-04-07
    "pyyaml": ("6.0.1", "unconstrained", "6.0.1", 0, 0),
    "pydantic": ("1.10.13", "range-max", "2.7.1", 209, 1),  # <2; 2.8.0b1 is a pre-release
    "sqlalchemy": ("1.4.46", "pin", "2.0.30", 487, 1),  # 2023-01-04 -> 2024-05-05
    "react": ("17.0.2", "range-max", "18.3.1", 1131, 1),  # 2021-03-22 -> 2024-04-26
    "lodash": ("4.17.20", "pin", "4.17.21", 191, 0),  # 2020-08-13 -> 2021-02-20
    "express": ("4.17.3", "range-max", "4.19.2", 767, 0),  # ~4.17.1: 2022-02-17 -> 2024-03-25
    "typescript": ("4.9.5", "range-max", "5.4.5", 437, 1),  # 2023-01-30 -> 2024-04-11
    "github.com/spf13/cobra": ("v1.6.0", "pin", "v1.8.0", 390, 0),  # 2022-10-11 -> 2023-11-05
    "golang.org/x/sync": ("v0.1.0", "pin", "v0.7.0", 525, 0),  # 2022-09-26 -> 2024-03-04
}


@pytest.fixture(scope="module")
def registries() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    with serving_registries() as served:
        yield served


@pytest.fixture
def sandbox(registries: tuple[Sandbox, dict[str, str]]) -> Iterator[Sandbox]:
    registries[0].reset_counts()
    registries[0].faults.clear()
    yield registries[0]
    registries[0].faults.clear()


@pytest.fixture
def engine(tmp_path: object) -> sa.Engine:
    return store.open_engine(f"sqlite:///{tmp_path}/deps.db")


def evaluate(engine: sa.Engine | None, urls: dict[str, str], now: datetime = NOW,
             files: dict[str, bytes] = FILES) -> object:
    lookups = registries_for(engine, urls)
    lookups.client.retries = 0
    return evaluate_repo(list(files), files.__getitem__, lookups, now)


def test_every_dependency_worked_out(registries: tuple[Sandbox, dict[str, str]], engine: sa.Engine) -> None:
    result = evaluate(engine, registries[1])
    found = {d.name: d for d in result.dependencies}
    assert set(found) == set(EXPECTED)  # vendor/lib/requirements.txt is not read
    for name, (current, resolution, latest, days, majors) in EXPECTED.items():
        dep = found[name]
        assert (dep.current_version, dep.resolution, dep.latest_version) == (current, resolution, latest), name
        assert dep.libyears == pytest.approx(days / YEAR, abs=1e-4), name
        assert (dep.majors_behind, dep.status) == (majors, "ok"), name
    assert found["react"].manifest_path == "node/package.json"


def test_summary_worked_out(registries: tuple[Sandbox, dict[str, str]]) -> None:
    summary = evaluate(None, registries[1]).summary
    # 12 dependencies; all but click and pyyaml are behind; five a major behind
    # (flask, pydantic, sqlalchemy, react, typescript), none two. Days behind add up to
    # 720+230+209+487+1131+191+767+437+390+525 = 5087 -> 13.93 libyears; max 1131 -> 3.10.
    assert summary == {"dependencies": 12, "outdated": 10, "major_behind": 5,
                       "more_than_one_major_behind": 0, "libyears": 13.93, "libyears_max": 3.1,
                       "unsupported": 0, "unknown": 0}


def test_registry_outage_is_unknown_with_a_warning_and_the_rest_evaluated(
        sandbox: Sandbox, registries: tuple[Sandbox, dict[str, str]],
        caplog: pytest.LogCaptureFixture) -> None:
    sandbox.faults.add(path="/registries/npm/", status=503, times=None)
    with caplog.at_level(logging.WARNING, logger="devmetrics.deps"):
        result = evaluate(None, registries[1])
    status = {d.name: d.status for d in result.dependencies}
    assert {n for n, s in status.items() if s == "unknown"} == {"react", "lodash", "express", "typescript"}
    assert result.summary["unknown"] == 4 and result.summary["dependencies"] == 8
    assert "npm package react" in caplog.text


def test_missing_package_and_unsupported_sources(registries: tuple[Sandbox, dict[str, str]]) -> None:
    files = {"package.json": b'{"dependencies": {"missing-thing": "^1.0.0", "lib": "file:../lib",'
                             b' "ui": "workspace:*", "fork": "github:me/fork"}}'}
    result = evaluate(None, registries[1], files=files)
    assert {d.name: d.status for d in result.dependencies} == {
        "missing-thing": "unknown", "lib": "unsupported", "ui": "unsupported", "fork": "unsupported"}
    assert (result.summary["unknown"], result.summary["unsupported"]) == (1, 3)
    assert result.summary["libyears"] is None  # no data is null, never 0


def test_summary_deduplicates_by_ecosystem_name_version() -> None:
    rows = [Dependency(manifest_path=p, ecosystem="npm", name="react", current_version="17.0.2",
                       latest_version="18.3.1", majors_behind=1, libyears=3.0, status="ok")
            for p in ("a/package.json", "b/package.json")]
    summary = summarise(rows)
    assert (summary["dependencies"], summary["libyears"], summary["major_behind"]) == (1, 3.0, 1)


def test_save_list_render_and_history(registries: tuple[Sandbox, dict[str, str]],
                                      sandbox: Sandbox, engine: sa.Engine) -> None:
    repo_id = store.save_repository(engine, Repository(forge="github", host="github.com",
                                                       full_name="acme/api"))
    save_freshness(engine, repo_id, evaluate(engine, registries[1]))
    cold = sandbox.requests()
    sandbox.reset_counts()
    # A day later, with a dependency dropped: its row goes, a second snapshot is added.
    smaller = {k: v for k, v in FILES.items() if not k.startswith("go/")}
    later = evaluate(engine, registries[1], NOW + timedelta(hours=20), files=smaller)
    save_freshness(engine, repo_id, later)
    assert cold == 12 + 2 and sandbox.requests() == 0  # Go: + .info for v1.6.0 and v0.1.0
    rows = list_dependencies(engine, "acme/api")
    assert len(rows) == 10 and rows[0]["name"] == "react"  # worst first: 1 major, 3.10 years
    assert [r["name"] for r in rows[:5]] == ["react", "sqlalchemy", "typescript", "flask", "pydantic"]
    assert store.count_rows(engine, DependencySnapshot) == 2
    assert latest_snapshot(engine, repo_id)["dependencies"] == 10
    table = render_dependencies(rows)
    assert "react" in table and "17.0.2" in table and "3.10" in table
    listed = json.loads(render_dependencies(rows, "json"))
    assert listed[0]["name"] == "react" and listed[0]["latest_released_at"].startswith("2024-04-26")


@pytest.mark.slow
def test_bench_500_dependencies_one_request_per_package_cold_none_warm() -> None:
    """scripts/bench-deps as a test: the issue's request budget, and the script kept working."""
    script = Path(__file__).parents[1] / "scripts" / "bench-deps"
    loader = importlib.machinery.SourceFileLoader("bench_deps", str(script))
    bench = types.ModuleType(loader.name)
    bench.__file__ = str(script)
    loader.exec_module(bench)
    figures = bench.run()
    assert figures["dependencies"] == 500 and figures["statuses"] == {"ok": 500}
    expected = {eco: n * (2 if eco == "go" else 1) for eco, n in bench.PLAN.items()}  # Go: @latest + .info
    assert figures["cold_requests"] == expected
    assert figures["warm_requests"] == 0


def test_a_second_sync_asks_nothing_for_a_package_that_failed_within_the_ttl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `devmetrics sync`'s own path: a private package no registry knows, a typo."""
    from devmetrics.config import parse_config
    from devmetrics.sandbox import build_sandbox
    from devmetrics.sandbox.dataset import RepoPlan, build_dataset
    from devmetrics.sync import SyncOptions, run_sync

    data = build_dataset(now=NOW, plans=(RepoPlan("github", "acme/api", prs=3, releases=0, incidents=0),))
    data.repos[0].files["requirements.txt"] += "missing-internal-lib==1.0\nmissing-typo==2.0\n"
    data.repos[0].files.pop("pyproject.toml")
    monkeypatch.setenv("DM_DEPS_TOKEN", "deps-token-1234")
    sandbox, registries = build_sandbox(data)

    def sync(ttl_hours: float) -> dict[str, int]:
        config = parse_config({
            "database": {"url": f"sqlite:///{tmp_path}/dm.db"}, "registries": registries,
            "deps": {"failed_lookup_ttl_hours": ttl_hours},
            "github": [{"api_url": f"{sandbox.url}/github", "token_env": "DM_DEPS_TOKEN", "repos": ["acme/api"]}]})
        sandbox.reset_counts()
        result = run_sync(config, store.open_engine(config.database.url), SyncOptions(deps=True))
        assert not result.failures, result.failures
        asked = [target.split("/")[4] for _, target, _ in sandbox.log if target.startswith("/registries/pypi/")]
        return {name: asked.count(name) for name in asked}

    with sandbox:
        first = sync(24)
        second = sync(24)
        third = sync(0)  # 0: a failed look-up is asked again at every sync
    assert first == {"requests": 1, "click": 1, "flask": 1, "pyyaml": 1,
                     "missing-internal-lib": 1, "missing-typo": 1}
    assert second == {}  # the four found are fresh for a day, the two failed for the TTL
    assert third == {"missing-internal-lib": 1, "missing-typo": 1}


def table_rows() -> list[dict[str, object]]:
    def row(name: str, ecosystem: str, manifest: str, current: str | None, latest: str | None,
            years: float | None, majors: int | None, status: str = "ok") -> dict[str, object]:
        return {"name": name, "ecosystem": ecosystem, "manifest_path": manifest, "spec": None,
                "current_version": current, "latest_version": latest, "libyears": years,
                "majors_behind": majors, "resolution": "lock", "status": status,
                "current_released_at": None, "latest_released_at": None}

    return [row("github.com/aws/aws-sdk-go-v2/service/s3", "go", "services/storage/go.mod", "v1.2.0", "v1.58.0",
                0.004, 0),
            row("@typescript-eslint/eslint-plugin", "npm", "web/package.json", "5.0.0", "8.1.0", 0.004, 3),
            row("react", "npm", "web/package.json", "17.0.2", "18.3.1", 0.004, 1),
            row("missing-thing", "pypi", "requirements.txt", None, None, None, None, "unknown")]


@pytest.mark.parametrize("width", [72, 80, 100, 200])
def test_the_deps_table_fits_the_console(width: int) -> None:
    table = render_dependencies(table_rows(), width=width)
    assert max(len(line) for line in table.splitlines()) <= width
    assert {"react", "17.0.2", "18.3.1", "v1.58.0", "unknown"} <= set(table.split())  # versions stay whole


def test_long_names_are_shortened_in_the_middle() -> None:
    narrow, wide = render_dependencies(table_rows(), width=80), render_dependencies(table_rows(), width=200)
    assert "github.com/aws/aws-sdk-go-v2/service/s3" in wide and "@typescript-eslint/eslint-plugin" in wide
    shortened = next(line.split()[0] for line in narrow.splitlines() if line.startswith("github"))
    head, tail = shortened.split("…")
    assert "github.com/aws/aws-sdk-go-v2/service/s3".startswith(head) and tail and \
        "github.com/aws/aws-sdk-go-v2/service/s3".endswith(tail)


def test_the_deps_table_says_how_libyears_are_rounded() -> None:
    text = " ".join(render_dependencies(table_rows(), width=100).split())
    # Each 0.004 shows as 0.00; the total adds them unrounded: 0.012 -> 0.01.
    assert text.count(" 0.00 ") == 3
    assert "0.01 libyears over 3 evaluated dependencies" in text
    assert "shown to 2 decimals; the total adds the unrounded values, then rounds" in text


def test_deps_on_the_command_line_fits_columns(tmp_path: Path, engine: sa.Engine) -> None:
    from click.testing import CliRunner

    from devmetrics.cli import cli

    repo_id = store.save_repository(engine, Repository(forge="github", host="github.com", full_name="acme/api"))
    store.upsert(engine, Dependency, [Dependency(repo_id=repo_id, direct=True, evaluated_at=NOW, **{
        key: value for key, value in row.items() if key not in ("current_released_at", "latest_released_at")})
        for row in table_rows()])
    config = tmp_path / "devmetrics.toml"
    config.write_text(f'[database]\nurl = "{engine.url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["deps", "--repo", "acme/api", "--config", str(config)], env={"COLUMNS": "72"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 72
    assert "…" in result.output and "react" in result.output
