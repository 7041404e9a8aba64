"""The report and explain over a real (SQLite) store, values worked out by hand."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from devmetrics import models
from devmetrics.explain import UnknownMetric, explain, render_explain
from devmetrics.metrics import ReportSettings, Window
from devmetrics.report import build_report, load_frames, render_report

SINCE, UNTIL = date(2026, 11, 2), date(2026, 11, 23)  # Mon..Mon: three ISO weeks 45-47
SECTION_8 = {
    "repo",
    "forge",
    "deployment_signal",
    "deployments",
    "deployment_frequency_per_week",
    "deployment_days_per_week_median",
    "deployment_success_rate",
    "change_failure_rate",
    "incidents",
    "incidents_per_deploy",
    "time_to_restore_hours",
    "lead_time_hours",
    "lead_time_coverage",
    "cycle_time_hours",
    "pipeline_duration_minutes",
    "pipeline_success_rate",
    "dependency_freshness",
    "levels",
}


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def deployment(repo: int, number: int, finished: datetime, sha: str, status: str = "success") -> models.Deployment:
    return models.Deployment(
        repo_id=repo,
        source="environments",
        deployment_id=str(number),
        environment="production",
        sha=sha,
        created_at=finished,
        finished_at=finished,
        status=status,
    )


def pull_request(number: int, author: str, merged: datetime, sha: str) -> models.PullRequest:
    return models.PullRequest(
        repo_id=1,
        number=number,
        author=author,
        created_at=at(6, 8),
        merged_at=merged,
        merge_commit_sha=sha,
        base_branch="main",
    )


def run(run_id: str, conclusion: str, minutes: int) -> models.PipelineRun:
    return models.PipelineRun(
        repo_id=1, run_id=run_id, name="ci", conclusion=conclusion, started_at=at(3, 9), finished_at=at(3, 9, minutes)
    )


def dependency(name: str, current: str, latest: str, **extra: object) -> models.Dependency:
    return models.Dependency(
        repo_id=1,
        manifest_path="pyproject.toml",
        ecosystem="pypi",
        name=name,
        current_version=current,
        latest_version=latest,
        **extra,
    )


def repository(number: int, forge: str, name: str, signal: str | None) -> models.Repository:
    host = f"{forge}.com"
    return models.Repository(
        id=number, forge=forge, host=host, full_name=name, default_branch="main", deployment_signal=signal
    )


def records() -> list[SQLModel]:
    return [
        repository(1, "github", "acme/api", "environments"),
        repository(2, "gitlab", "acme/web", "environments"),
        repository(3, "github", "other/tool", None),
        deployment(1, 1, at(3, 10), "a" * 40),
        # Sunday 23:30 UTC: week 45 in UTC, Monday 00:30 of week 46 in Berlin
        deployment(1, 2, at(8, 23, 30), "b" * 40),
        deployment(1, 3, at(17), "c" * 40, status="failure"),
        deployment(2, 1, at(4), "d" * 40),
        models.DeploymentCommit(repo_id=1, source="environments", deployment_id="2", sha="e" * 40),
        pull_request(10, "ann", merged=at(6, 10), sha="e" * 40),
        pull_request(11, "renovate[bot]", merged=at(6, 9), sha="f" * 40),
        # open at until (work in progress), closed only after until (still open then), and one
        # closed before the window: the report reads the first two only
        models.PullRequest(repo_id=1, number=12, author="ann", created_at=at(20), base_branch="main"),
        models.PullRequest(repo_id=1, number=13, author="ann", created_at=datetime(2026, 11, 1, 12, tzinfo=UTC),
                           closed_at=at(25), base_branch="main"),
        models.PullRequest(repo_id=1, number=14, author="ann", created_at=datetime(2026, 10, 20, tzinfo=UTC),
                           closed_at=datetime(2026, 10, 30, tzinfo=UTC), base_branch="main"),
        models.Incident(repo_id=1, source="issues", incident_id="7", created_at=at(9, 10), resolved_at=at(9, 13)),
        run("1", "success", minutes=6),
        run("2", "cancelled", minutes=1),
        dependency("click", "7.1", "8.1", majors_behind=1, libyears=2.5),
        dependency("rich", "13.0", "13.0", majors_behind=0, libyears=0.0),
    ]


def filled(engine: Engine) -> Engine:
    """The tables created and the records stored (repositories first: foreign keys)."""
    SQLModel.metadata.create_all(engine)
    rows = records()
    for batch in (
        [r for r in rows if isinstance(r, models.Repository)],
        [r for r in rows if not isinstance(r, models.Repository)],
    ):
        with Session(engine) as session:
            session.add_all(batch)
            session.commit()
    return engine


@pytest.fixture(params=["file", "memory"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """A file database (read through Arrow) and an in-memory one (read through SQLAlchemy)."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "file" else "sqlite://"
    return filled(create_engine(url))


def test_report_has_section_8_keys_per_repo_and_all(engine: Engine) -> None:
    report = build_report(engine, ReportSettings(), SINCE, UNTIL)
    assert (report["since"], report["until"], report["timezone"]) == ("2026-11-02", "2026-11-23", "UTC")
    assert [row["repo"] for row in report["repos"]] == ["acme/api", "acme/web", "other/tool"]
    for row in [*report["repos"], report["all"]]:
        assert set(row) >= SECTION_8
    api, web, tool = report["repos"]
    # api: 2 successful, 1 failed; 2 / (21 days / 7) = 2/3 per week; success 2/3
    assert api["deployments"] == 2
    assert api["deployment_frequency_per_week"] == pytest.approx(2 / 3)
    assert api["deployment_success_rate"] == pytest.approx(2 / 3)
    # the incident (Nov 9 10:00) follows deployment 2 (Nov 8 23:30) by 10.5h: 1 of 2 failed
    assert api["change_failure_rate"] == 0.5
    assert api["time_to_restore_hours"] == {"median": 3.0, "p90": 3.0, "mean": 3.0, "median_ci95": None, "n": 1}
    # created Nov 9 10:00 - deployment 2 finished Nov 8 23:30 = 10.5h to detect
    assert api["time_to_detect_hours"] == {"median": 10.5, "p90": 10.5, "mean": 10.5, "median_ci95": None, "n": 1}
    # PR 10 (start Nov 6 08:00) shipped by deployment 2's range at Nov 8 23:30: 63.5h;
    # the bot PR is left out
    assert api["pull_requests_merged"] == 1
    assert api["lead_time_hours"] == {"median": 63.5, "p90": 63.5, "mean": 63.5, "median_ci95": None, "n": 1}
    # open at Nov 23 00:00: PR 12 (Nov 20 12:00 -> 60h) and 13 (Nov 1 12:00 -> 516h), both
    # unanswered; median (60 + 516) / 2 = 288 = the mean; p90 = 60 + 0.9 * 456 = 470.4
    assert api["open_pull_requests"] == 2 and api["waiting_for_review"] == 2
    assert api["open_pull_request_age_hours"] == {
        "median": 288.0, "p90": pytest.approx(470.4), "mean": 288.0, "median_ci95": None, "n": 2
    }
    assert api["stale_pull_requests"] == 1  # 13: no updated_at, created 21.5 days before until
    # the cancelled run is left out: one 6-minute run
    assert api["pipeline_duration_minutes"] == {"median": 6.0, "p90": 6.0, "mean": 6.0, "median_ci95": None, "n": 1}
    # click 7.1 < 8.1 and a major behind; rich is current; libyears 2.5 + 0
    assert api["dependency_freshness"] == {
        "dependencies": 2,
        "outdated": 1,
        "major_behind": 1,
        "more_than_one_major_behind": 0,
        "libyears": 2.5,
        "libyears_max": 2.5,
        "unsupported": 0,
        "unknown": 0,
    }
    assert web["dependency_freshness"] is None
    # tool has no deployment signal and no data: nulls, never zeros
    assert tool["deployment_signal"] is None
    assert tool["deployments"] is None
    # a distribution with no data keeps its shape, so scripts can read n (revision 2026-12-01)
    for key in ("time_to_restore_hours", "failed_deployment_recovery_hours", "lead_time_hours",
                "cycle_time_hours", "pipeline_duration_minutes"):
        assert tool[key] == {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}, key
    # all repos: 3 successful (2 api + 1 web) of 4 finished
    assert report["all"]["deployments"] == 3
    assert report["all"]["deployment_success_rate"] == 0.75


def test_repo_globs_select_repos(engine: Engine) -> None:
    report = build_report(engine, ReportSettings(), SINCE, UNTIL, repos=["acme/w*"])
    assert [row["repo"] for row in report["repos"]] == ["acme/web"]
    assert report["all"]["deployments"] == 1


@pytest.mark.parametrize(("timezone", "per_week"), [("UTC", [2, 0, 0]), ("Europe/Berlin", [1, 1, 0])])
def test_weekly_trend_keeps_empty_weeks_in_the_report_timezone(
    engine: Engine, timezone: str, per_week: list[int]
) -> None:
    report = build_report(engine, ReportSettings(timezone=timezone), SINCE, UNTIL, repos=["acme/api"], by="week")
    periods = report["trend"]["periods"]
    assert [p["period"] for p in periods] == ["2026-W45", "2026-W46", "2026-W47"]
    # UTC: Nov 3 and Sun Nov 8 23:30 both in week 45; Berlin: the second is Mon Nov 9 (week 46).
    # Week 47 has only the failed deployment: 0, kept.
    assert [p["repos"][0]["deployments"] for p in periods] == per_week


def test_monthly_trend_clips_months_to_the_window(engine: Engine) -> None:
    report = build_report(engine, ReportSettings(), date(2026, 10, 20), UNTIL, by="month")
    assert [(p["period"], p["since"], p["until"]) for p in report["trend"]["periods"]] == [
        ("2026-10", "2026-10-20", "2026-11-01"),
        ("2026-11", "2026-11-01", "2026-11-23"),
    ]


def test_renderers(engine: Engine) -> None:
    report = build_report(engine, ReportSettings(), SINCE, UNTIL)
    table = render_report(report, "table")
    assert "acme/api" in table and "—" in table
    assert "acme/api: deployments from environments; 100% of merged PRs linked" in table
    assert "other/tool: no deployment signal has data" in table
    assert json.loads(render_report(report, "json")) == report
    rows = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    assert [row["repo"] for row in rows] == ["acme/api", "acme/web", "other/tool", "all"]
    assert rows[0]["lead_time_hours.median"] == "63.5"
    assert render_report(report, "markdown").splitlines()[2].startswith("| Repo | Deploys |")


def test_renderers_show_an_empty_distribution_as_a_dash(engine: Engine) -> None:
    report = build_report(engine, ReportSettings(), SINCE, UNTIL, repos=["other/tool"])
    empty = {"median": None, "p90": None, "mean": None, "median_ci95": None, "n": 0}
    assert json.loads(render_report(report, "json"))["repos"][0]["lead_time_hours"] == empty
    tool = next(line for line in render_report(report, "table", wide=True).splitlines() if "other/tool" in line)
    # Restore h, Lead time h, Cycle time h and Pipeline min all read "—", not "None (n=0)"
    assert "None" not in tool and tool.count("—") >= 4
    card = render_report(report, "table")  # one repo: its card, where the same read "—" too
    lead = next(line for line in card.splitlines() if line.startswith("Lead time h"))
    assert "None" not in card and lead.split()[3:6] == ["—", "—", "0"]
    markdown = next(line for line in render_report(report, "markdown").splitlines() if line.startswith("| other/tool"))
    assert "None" not in markdown and markdown.count("—") >= 4
    row = next(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    assert (row["lead_time_hours.median"], row["lead_time_hours.n"]) == ("", "0")


def test_both_read_paths_give_the_same_frames(tmp_path: Path) -> None:
    file_engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    memory_engine = create_engine("sqlite://")
    for engine in (file_engine, memory_engine):
        filled(engine)
    fast, plain = (load_frames(e, None) for e in (file_engine, memory_engine))
    for name in ("pull_requests", "deployments", "incidents"):
        left, right = getattr(fast, name), getattr(plain, name)
        assert list(left["created_at"]) == list(right["created_at"]), name


def test_explain_lists_the_rows_behind_a_metric(engine: Engine) -> None:
    settings = ReportSettings()
    deployments = explain(engine, settings, "change_failure_rate", "acme/api", SINCE, UNTIL)
    assert [(r["deployment"], r["counted_as"], r["change_failure"]) for r in deployments] == [
        ("1", "success", False),
        ("2", "success", True),
        ("3", "failed", False),
    ]
    prs = explain(engine, settings, "lead_time_hours", "acme/api", SINCE, UNTIL)
    assert [(r["pr"], r["counted"], r["linked_by"], r["lead_time_hours"]) for r in prs] == [
        (11, False, None, None),
        (10, True, "commits", 63.5),
    ]
    incidents = explain(engine, settings, "time_to_restore_hours", "acme/api", SINCE, UNTIL)
    assert incidents[0]["linked_by"] == "time" and incidents[0]["deployment"] == "2"
    assert "Rows behind lead_time_hours" in render_explain(prs, "table", "lead_time_hours")
    # `explain time-to-detect`: the one linked incident, 10.5h after deployment 2 (see above)
    detection = explain(engine, settings, "time-to-detect", "acme/api", SINCE, UNTIL)
    assert detection == [
        {
            "incident": "7",
            "created_at": "2026-11-09 10:00",
            "linked_by": "time",
            "deployment": "2",
            "deployed_at": "2026-11-08 23:30",
            "detect_hours": 10.5,
            "counted": True,
        }
    ]
    with pytest.raises(UnknownMetric):
        explain(engine, settings, "happiness", "acme/api", SINCE, UNTIL)


def test_settings_from_config_take_per_repo_overrides() -> None:
    from devmetrics.config import Config
    from devmetrics.report import settings_from_config

    config = Config.model_validate(
        {
            "report": {"timezone": "Europe/Berlin", "incident_window_hours": 48, "bots": ["robot"]},
            "github": [
                {
                    "repos": ["acme/api", "acme/web"],
                    "production": "^live$",
                    "overrides": {"acme/web": {"deployments": "merges", "production": "^prd$"}},
                }
            ],
        }
    )
    settings = settings_from_config(config, timezone="UTC")
    assert settings.timezone == "UTC"  # the command line wins over the file
    assert settings.incident_window_hours == 48 and settings.bots == ("robot",)
    assert settings.production_patterns == {"acme/api": "^live$", "acme/web": "^prd$"}
    # "auto" is left to what the sync recorded; an explicit signal is passed on
    assert settings.deployment_signals == {"acme/web": "merges"}


@pytest.mark.postgres
def test_report_on_postgresql(postgres_schema: str) -> None:
    """The same store in PostgreSQL (timestamptz, JSON labels, plain SQLAlchemy reads)."""
    engine = filled(create_engine(postgres_schema))
    report = build_report(engine, ReportSettings(timezone="Europe/Berlin"), SINCE, UNTIL, by="week")
    api = report["repos"][0]
    # the same hand-worked values as on SQLite (see test_report_has_section_8_keys_...)
    assert api["deployments"] == 2 and api["change_failure_rate"] == 0.5
    assert api["lead_time_hours"] == {"median": 63.5, "p90": 63.5, "mean": 63.5, "median_ci95": None, "n": 1}
    assert api["pipeline_duration_minutes"]["n"] == 1
    assert api["open_pull_requests"] == 2  # 13's closed_at compared as a timestamptz
    assert [p["repos"][0]["deployments"] for p in report["trend"]["periods"]] == [1, 1, 0]
    engine.dispose()


def test_the_report_reads_merged_prs_and_those_that_may_be_open_at_until(engine: Engine) -> None:
    frames = load_frames(engine, None, Window.from_dates(SINCE, UNTIL))
    # 10, 11 merged; 12 open; 13 closed after since; 14 closed before since: never open then
    assert sorted(frames.pull_requests["number"]) == [10, 11, 12, 13]
