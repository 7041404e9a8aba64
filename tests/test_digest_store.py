"""build_digest over a SQLite store filled by hand through store.upsert (the CLI's path)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from devmetrics import store
from devmetrics.config import parse_config
from devmetrics.digest import build_digest, render_digest
from devmetrics.digest.assemble import explain_worsened
from devmetrics.digest.build import load_weeks
from devmetrics.digest.drivers import add_titles, week_drivers
from devmetrics.digest.history import record_figures
from devmetrics.digest.weeks import trend_mondays
from devmetrics.metrics import ReportSettings, Window
from devmetrics.models import Deployment, Incident, PullRequest, Repository
from devmetrics.safe_text import ZWJ


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def deployment(repo_id: int, n: int, when: datetime, env: str = "production") -> Deployment:
    return Deployment(repo_id=repo_id, source="environments", deployment_id=str(n), environment=env,
                      created_at=when, finished_at=when, status="success", updated_at=when)


def pull(repo_id: int, number: int, first_commit: datetime, created: datetime,
         merged: datetime) -> PullRequest:
    return PullRequest(repo_id=repo_id, number=number, title=f"PR {number}", author="alice",
                       created_at=created, ready_at=created, first_commit_at=first_commit,
                       merged_at=merged, closed_at=merged, updated_at=merged,
                       base_branch="main", head_branch=f"feature-{number}")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return seeded(f"sqlite:///{tmp_path_factory.mktemp('store') / 'dm.db'}")


def seeded(url: str) -> Engine:
    """One repo. Weeks: W44 = 26 Oct-1 Nov, W46 = 9-15 Nov, W47 = 16-22 Nov 2026."""
    engine = store.open_engine(url)
    rid = store.save_repository(engine, Repository(
        forge="github", host="github.com", full_name="acme/api", default_branch="main",
        url="https://github.com/acme/api", deployment_signal="environments"))
    store.upsert(engine, Deployment, [
        deployment(rid, 1, at(28, 12, month=10)),  # W44
        deployment(rid, 2, at(10, 12)),  # W46: 1 deployment
        deployment(rid, 3, at(16, 12)), deployment(rid, 4, at(18, 12)),  # W47: 3 deployments
        deployment(rid, 5, at(20, 12)),
        deployment(rid, 6, at(17, 12), env="staging"),  # not production: not counted
    ])
    store.upsert(engine, PullRequest, [
        # W46: start 9 Nov 12:00, shipped by the 10 Nov 12:00 deployment -> lead 24 h
        pull(rid, 3, at(9, 12), at(9, 12), at(10, 10)),
        # W47: start 16 Nov 06:00, shipped 16 Nov 12:00 -> lead 6 h (cycle 4 h)
        pull(rid, 1, at(16, 6), at(16, 8), at(16, 10)),
        # W47: start 17 Nov 10:00, shipped 18 Nov 12:00 -> lead 26 h (cycle 24 h)
        pull(rid, 2, at(17, 10), at(17, 11), at(18, 10)),
    ])
    store.upsert(engine, Incident, [Incident(
        repo_id=rid, source="issues", incident_id="7", url="https://github.com/acme/api/issues/7",
        title="API down @oncall #12 <b>|</b>", created_at=at(18, 14), resolved_at=at(18, 17, 30),
        labels=["incident"])])
    return engine


@pytest.fixture(scope="module")
def digest(engine: Engine) -> dict[str, Any]:
    return build_digest(engine, parse_config({"digest": {"title": "Delivery {week}"}}),
                        "2026-W47", ["acme/*"])


def row(section: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in section["comparison"] if r["key"] == key)


def test_build_digest_from_the_store(digest: dict[str, Any]) -> None:
    assert digest["title"] == "Delivery 2026-W47"
    repo = digest["repos"][0]
    assert repo["repo"] == "acme/api"
    # 3 production deployments in W47 against 1 in W46: +2 (the staging one is not counted)
    deployments = row(repo, "deployments")
    assert (deployments["this"], deployments["previous"], deployments["delta"]) == (3, 1, 2)
    # lead time median W47 = median(6, 26) = 16 h; W46 = 24 h; change -8 h
    lead = row(repo, "lead_time_hours.median")
    assert (lead["this"], lead["previous"], lead["delta"]) == (16.0, 24.0, -8.0)
    # trend W36..W47: W44 has 1, W46 1, W47 3; every other week is 0, not missing
    assert repo["trend"]["deployments"] == [0] * 8 + [1, 0, 1, 3]
    assert repo["trend"]["lead_time_median_hours"][-2:] == [24.0, 16.0]
    assert repo["trend"]["lead_time_median_hours"][0] is None  # no PR then: unknown, not 0
    [incident] = repo["incidents"]
    assert incident["restore_hours"] == 3.5  # 14:00 -> 17:30
    assert row(digest["all"], "deployments")["this"] == 3


def test_rendered_digest_from_the_store(digest: dict[str, Any]) -> None:
    text = render_digest(digest, "markdown")
    # 3 and 1 deployments, 2 and 1 lead times: fewer than 5 events, so no verdict
    assert "| Deployments | _3_ | _1_ | ◌ few events ▲ +2 (+200%) |" in text
    assert "| Lead time, median | _16.0 h (n=2)_ | _24.0 h (n=1)_ | ◌ few events ▼ -8.0 h (-33%) |" in text
    assert f"[API down @{ZWJ}oncall #{ZWJ}12 &lt;b&gt;\\|&lt;/b&gt;](https://github.com/acme/api/issues/7)" in text
    assert "restored after 3.5 h" in text


def test_repo_filter_leaves_other_repos_out(engine: Engine) -> None:
    digest = build_digest(engine, parse_config({}), "2026-W47", ["other/*"])
    assert digest["repos"] == [] and digest["all"]["incidents"] == []


def test_the_noise_tests_get_the_weeks_values_from_the_store(engine: Engine) -> None:
    config = parse_config({"report": {"min_events": 1}})
    repo = build_digest(engine, config, "2026-W47", ["acme/*"])["repos"][0]
    # deployments 3 vs 1: exact binomial, 3 of 4 at 1/2: P(X >= 3) = 5/16, two-sided 10/16
    deployments = row(repo, "deployments")
    assert (deployments["verdict"], deployments["p_value"]) == ("within noise", 0.625)
    # lead times [6, 26] (W47) vs [24] (W46): U = 1 of 2, p = 1
    lead = row(repo, "lead_time_hours.median")
    assert (lead["n_this"], lead["n_previous"], lead["test"]) == (2, 1, "mann-whitney-u")
    assert lead["verdict"] == "within noise"
    # change failure rate: 1 of 3 (the 18 Nov incident links to that noon's deployment) vs
    # 0 of 1; Fisher exact on [[1, 2], [0, 1]]: every table with these margins is at least as
    # likely, so p = 1: within noise
    cfr = row(repo, "change_failure_rate")
    assert (cfr["verdict"], cfr["p_value"], cfr["n_this"], cfr["n_previous"]) == ("within noise", 1.0, 3, 1)


def test_levels_come_from_the_four_weeks_w44_to_w47(digest: dict[str, Any]) -> None:
    assert digest["level_weeks"] == ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    levels = digest["repos"][0]["levels"]
    # deployments in W44..W47: 1 + 0 + 1 + 3 = 5, enough for a level
    assert levels["deployment_frequency"]["n"] == 5 and levels["deployment_frequency"]["level"]
    # lead times in those weeks: W46's PR 3 and W47's PRs 1 and 2 = 3 < 5: few events
    assert levels["lead_time"] == {"level": None, "n": 3, "few_events": True}


def test_drivers_of_the_week_from_the_store(engine: Engine) -> None:
    linked, _ = load_weeks(engine, ReportSettings(), trend_mondays(date(2026, 11, 16)), None)
    drivers = week_drivers(linked, Window.from_dates(date(2026, 11, 16), date(2026, 11, 23)))
    add_titles(engine, drivers, {"acme/api": int(linked.repositories["id"].iloc[0])})
    found = drivers["acme/api"]
    # slowest first: PR 2 (lead 26 h: coding 1 h, no review, deploy 2 h), then PR 1 (6 h)
    assert [(p["number"], p["lead_time_hours"]) for p in found["pull_requests"]] == [(2, 26.0), (1, 6.0)]
    assert found["pull_requests"][0]["title"] == "PR 2" and found["pull_requests"][0]["deploy_hours"] == 2.0
    # the 18 Nov 12:00 deployment is failed by the incident opened at 14:00
    [failed] = found["failed_deployments"]
    assert failed["deployment"] == "4"
    assert failed["incidents"] == [{"incident_id": "7", "title": "API down @oncall #12 <b>|</b>",
                                    "url": "https://github.com/acme/api/issues/7"}]
    assert found["workflows"] == []


def test_a_worse_figure_shows_its_drivers_and_the_explain_command(engine: Engine) -> None:
    config = parse_config({"report": {"min_events": 1}})
    digest = build_digest(engine, config, "2026-W47", ["acme/*"])
    # change failure rate 1 of 3 against 0 of 1 is within noise; time to restore is new this
    # week (no value in W46), so nothing is "worse" here: the drivers appear only when worse
    assert all("drivers" not in r for r in digest["repos"][0]["comparison"])
    section = digest["repos"][0]
    row(section, "lead_time_hours.median")["verdict"] = "worse"
    linked, _ = load_weeks(engine, ReportSettings(), trend_mondays(date(2026, 11, 16)), None)
    drivers = week_drivers(linked, Window.from_dates(date(2026, 11, 16), date(2026, 11, 23)))
    add_titles(engine, drivers, {"acme/api": int(linked.repositories["id"].iloc[0])})
    explain_worsened(section, drivers["acme/api"], date(2026, 11, 16))
    text = render_digest(digest, "markdown")
    assert f"**Why lead time, median worsened** — slowest pull requests:\n- #{ZWJ}2 PR 2: lead time 26.0 h " \
           "(coding 1.0 h · pickup — · review — · deploy 2.0 h)" in text
    assert "- all rows: `devmetrics explain lead_time_hours --repo acme/api --since 2026-11-16 " \
           "--until 2026-11-23`" in text


def test_a_figure_changed_since_it_was_posted_is_flagged_once(tmp_path: Any) -> None:
    engine = seeded(f"sqlite:///{tmp_path / 'dm.db'}")
    config = parse_config({})
    record_figures(engine, build_digest(engine, config, "2026-W46"))  # posted on 16 Nov
    rid = store.repo_id(engine, "github", "github.com", "acme/api")
    # a PR of W46 synced late: start 9 Nov 00:00, merged 10 Nov 11:00, shipped 10 Nov 12:00 -> 36 h;
    # W46's lead time median becomes median(24, 36) = 30 h, 25 % above the 24 h posted
    store.upsert(engine, PullRequest, [pull(rid, 4, at(9, 0), at(9, 1), at(10, 11))])
    # The report's ADBC reader (its own SQLite library in this process) sees rows written
    # through the pool only once the pool's connections are closed; a sync and a digest are
    # separate processes, so only a test that writes and then reads in one process needs this.
    engine.dispose()
    digest = build_digest(engine, config, "2026-W47")
    [revision] = [r for r in digest["repos"][0]["revised"] if r["key"] == "lead_time_hours.median"]
    assert (revision["week"], revision["posted"], revision["now"]) == ("2026-W46", 24.0, 30.0)
    text = render_digest(digest, "markdown")
    line = next(ln for ln in text.splitlines() if ln.startswith("**Revised since posted:**"))
    # the late PR also moved W46's cycle time (22 -> median(22, 35) = 28.5 h) and PR count (1 -> 2)
    assert line == ("**Revised since posted:** cycle time, median of 2026-W46 22.0 h → 28.5 h; "
                    "lead time, median of 2026-W46 24.0 h → 30.0 h; pull requests merged of 2026-W46 1 → 2.")
    # recording this digest stores the new value: the next digest does not repeat it
    record_figures(engine, digest)
    again = build_digest(engine, config, "2026-W47")
    assert not [r for r in again["repos"][0]["revised"] if r["key"] == "lead_time_hours.median"]


def test_the_digest_command_records_what_it_posted_unless_no_record(tmp_path: Any) -> None:
    import subprocess
    import sys

    from devmetrics.models import DigestFigure

    url = f"sqlite:///{tmp_path / 'dm.db'}"
    seeded(url).dispose()
    config = tmp_path / "devmetrics.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    # a subprocess, as a user runs it: the report's ADBC reader and this test's engines would
    # otherwise share the database file within one process
    args = [sys.executable, "-m", "devmetrics", "digest", "--config", str(config), "--week", "2026-W47"]
    preview = subprocess.run([*args, "--no-record"], capture_output=True, text=True, check=False)
    assert preview.returncode == 0, preview.stderr
    assert "| Deployments | _3_ | _1_ |" in preview.stdout
    assert store.count_rows(store.open_engine(url), DigestFigure) == 0
    posted = subprocess.run(args, capture_output=True, text=True, check=False)
    assert posted.returncode == 0, posted.stderr
    # 10 figures each for acme/api and the aggregate
    assert store.count_rows(store.open_engine(url), DigestFigure) == 20
