"""[[targets]] (metrics.md §9): validated in the config, evaluated by `devmetrics check`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from devmetrics import store
from devmetrics.cli import cli
from devmetrics.config import load_config, parse_config
from devmetrics.errors import EXIT_BREACHED, EXIT_USAGE, ConfigError
from devmetrics.models import Deployment, Repository
from devmetrics.targets import BREACHED, FEW_EVENTS, MET, NO_DATA, evaluate, report_keys, track

ROOT = Path(__file__).parents[1]


def config_error(text: str) -> str:
    import tomllib

    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(text))
    assert caught.value.exit_code == EXIT_USAGE
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_every_report_key_is_a_metric_a_target_may_name() -> None:
    keys = report_keys()
    for key in ("change_failure_rate", "lead_time_hours.p90", "lead_time_hours.mean",
                "dependency_freshness.more_than_one_major_behind", "deployments", "pipeline_duration_minutes.n"):
        assert key in keys
    assert "repo" not in keys and "levels" not in keys


def test_an_unknown_metric_key_is_one_line_with_did_you_mean() -> None:
    message = config_error('[[targets]]\nname = "a"\nmetric = "lead_time_hours.p09"\nat_most = 48\n')
    assert message == ("targets[0].metric: unknown report key 'lead_time_hours.p09'"
                       " (did you mean 'lead_time_hours.p90'?)")


def test_exactly_one_bound() -> None:
    assert "exactly one of at_most or at_least" in config_error(
        '[[targets]]\nname = "a"\nmetric = "rework_rate"\nat_most = 1\nat_least = 0\n')
    assert "exactly one of at_most or at_least" in config_error('[[targets]]\nname = "a"\nmetric = "rework_rate"\n')


def test_names_are_unique_and_guardrails_name_other_targets() -> None:
    two = '[[targets]]\nname = "a"\nmetric = "rework_rate"\nat_most = 1\n'
    assert "'a' is used by another target" in config_error(two + two)
    guarded = two + '[[targets]]\nname = "b"\nmetric = "deployments"\nat_least = 1\nguardrail = ["aa"]\n'
    assert config_error(guarded) == "targets[1].guardrail: no target named 'aa' (did you mean 'a'?)"
    assert "cannot guard itself" in config_error(two.replace('at_most = 1', 'at_most = 1\nguardrail = ["a"]'))


def test_a_bad_window_and_an_unknown_key_are_one_line() -> None:
    base = '[[targets]]\nname = "a"\nmetric = "rework_rate"\nat_most = 1\n'
    assert "is not a window like 28d or 4w" in config_error(base + 'window = "month"\n')
    assert "targets[0].ownr: unknown key (did you mean 'owner'?)" in config_error(base + 'ownr = "@x"\n')


def test_the_example_starter_set_loads_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "x")
    config = load_config(str(ROOT / "config.example.toml"))
    names = {t.name: t for t in config.targets}
    assert {"deploy often", "few failed changes", "short lead time", "quick recovery",
            "fast pipelines", "current dependencies"} <= set(names)
    assert names["deploy often"].guardrail == ["few failed changes"]
    assert (names["short lead time"].breach_after, names["short lead time"].recover_after) == (2, 2)


def target(name: str, metric: str, *, at_most: float | None = None, at_least: float | None = None,
           guardrail: tuple[str, ...] = (), repos: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(name=name, metric=metric, at_most=at_most, at_least=at_least, repos=list(repos),
                           owner="@acme/sre", guardrail=list(guardrail), window_days=None)


def test_met_breached_few_events_and_no_data() -> None:
    rows = {28: [
        {"repo": "acme/api", "lead_time_hours": {"p90": 50.0, "n": 12}, "change_failure_rate": 0.1,
         "deployments": 10},
        {"repo": "acme/web", "lead_time_hours": {"p90": 10.0, "n": 3}, "change_failure_rate": None,
         "deployments": None},
        {"repo": "other/x", "lead_time_hours": {"p90": 99.0, "n": 99}, "change_failure_rate": 0.9,
         "deployments": 9},
    ]}
    targets = [target("lead", "lead_time_hours.p90", at_most=48, repos=("acme/*",)),
               target("cfr", "change_failure_rate", at_most=0.15, repos=("acme/*",))]
    got = {(r.target, r.repo): r.status for r in evaluate(targets, rows, 28, 5)}
    assert got == {("lead", "acme/api"): BREACHED, ("lead", "acme/web"): FEW_EVENTS,
                   ("cfr", "acme/api"): MET, ("cfr", "acme/web"): NO_DATA}


def test_a_target_counts_as_met_only_when_its_guardrails_are_met() -> None:
    rows = {28: [{"repo": "acme/api", "deployment_frequency_per_week": 9.0, "change_failure_rate": 0.4,
                  "deployments": 36}]}
    targets = [target("often", "deployment_frequency_per_week", at_least=5, guardrail=("safe",)),
               target("safe", "change_failure_rate", at_most=0.15)]
    often = next(r for r in evaluate(targets, rows, 28, 5) if r.target == "often")
    assert often.status == BREACHED and often.guarded_by == ("safe",)


def seeded_store(path: Path, deployments: int) -> str:
    url = f"sqlite:///{path}"
    engine = store.open_engine(url)
    rid = store.save_repository(engine, Repository(
        forge="github", host="github.com", full_name="acme/api", default_branch="main",
        url="https://github.com/acme/api", deployment_signal="environments"))
    when = [datetime(2026, 11, 2 + day, 12, tzinfo=UTC) for day in range(deployments)]
    store.upsert(engine, Deployment, [
        Deployment(repo_id=rid, source="environments", deployment_id=str(i), environment="production",
                   created_at=t, finished_at=t, status="success", updated_at=t) for i, t in enumerate(when)])
    engine.dispose()
    return url


def write_config(tmp_path: Path, url: str, at_least: int) -> Path:
    path = tmp_path / "devmetrics.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[report]\nwindow_days = 14\n'
                    f'[[targets]]\nname = "deploy often"\nmetric = "deployments"\nat_least = {at_least}\n'
                    'owner = "@acme/platform"\n')
    return path


@pytest.mark.parametrize(("at_least", "code", "status"), [(5, 0, "met"), (20, EXIT_BREACHED, "breached")])
def test_check_exits_non_zero_only_on_a_breach(tmp_path: Path, at_least: int, code: int, status: str) -> None:
    config = write_config(tmp_path, seeded_store(tmp_path / "dm.db", 10), at_least)
    done = CliRunner().invoke(cli, ["check", "--config", str(config), "--until", "2026-11-15"])
    assert done.exit_code == code, done.output
    assert done.output.strip() == (f"deploy often on acme/api: {status}: 10 (target >= {at_least})"
                                   " (owner @acme/platform); alerting since 2026-W34")
    # the 12 weeks before: W34-W44 had no deployment (breached), W45 six: one met week, no recovery
    github = CliRunner().invoke(cli, ["check", "--config", str(config), "--until", "2026-11-15",
                                      "--format", "github"])
    kind = "error" if code else "notice"
    assert github.output.startswith(f"::{kind} title=target deploy often::deploy often on acme/api: {status}")
    as_json = CliRunner().invoke(cli, ["check", "--config", str(config), "--until", "2026-11-15", "--format", "json"])
    assert '"breached": ' + ("1" if code else "0") in as_json.output


FLAPPING = [BREACHED, BREACHED, MET, BREACHED, MET, BREACHED, MET, BREACHED, MET, BREACHED, MET, BREACHED]


def test_twelve_weeks_of_a_flapping_metric_alert_once_not_six() -> None:
    weeks = [(f"2026-W{n:02d}", status, None) for n, status in enumerate(FLAPPING, start=30)]
    naive = sum(1 for i, s in enumerate(FLAPPING) if s == BREACHED and (i == 0 or FLAPPING[i - 1] != BREACHED))
    assert naive == 6
    states = track(weeks, breach_after=2, recover_after=2)
    assert [w.event for w in states].count("breach") == 1
    assert states[1].event == "breach" and states[-1].state == "alerting" and states[-1].since == "2026-W30"
    assert not any(w.event == "recover" for w in states)


def test_recovery_needs_recover_after_met_weeks_and_few_events_leave_the_state() -> None:
    statuses = [BREACHED, BREACHED, MET, FEW_EVENTS, MET, MET, NO_DATA]
    states = track([(f"2026-W{n:02d}", s, None) for n, s in enumerate(statuses, start=40)], 2, 2)
    assert [w.state for w in states] == ["ok", "alerting", "alerting", "alerting", "ok", "ok", "ok"]
    assert states[4].event == "recover" and states[4].since == "2026-W42"


def test_weekly_states_replay_a_flapping_store_and_keep_the_history(tmp_path: Path) -> None:
    """12 ISO weeks (W36-W47 2026): 6 deployments in even weeks, 2 in odd ones; at least 5."""
    url = f"sqlite:///{tmp_path / 'dm.db'}"
    engine = store.open_engine(url)
    rid = store.save_repository(engine, Repository(
        forge="github", host="github.com", full_name="acme/api", default_branch="main",
        url="https://github.com/acme/api", deployment_signal="environments"))
    monday = datetime(2026, 8, 31, 12, tzinfo=UTC)  # 2026-W36
    from datetime import timedelta

    rows, n = [], 0
    for week, status in enumerate(FLAPPING):
        for day in range(2 if status == BREACHED else 6):
            t = monday + timedelta(weeks=week, days=day)
            rows.append(Deployment(repo_id=rid, source="environments", deployment_id=str(n), environment="production",
                                   created_at=t, finished_at=t, status="success", updated_at=t))
            n += 1
    store.upsert(engine, Deployment, rows)
    config = parse_config({"database": {"url": url}, "targets": [
        {"name": "deploy often", "metric": "deployments", "at_least": 5, "owner": "@acme/platform"}]})
    from datetime import date

    from devmetrics.models import TargetWeek
    from devmetrics.targets import weekly_states

    tracked = weekly_states(engine, config, date(2026, 11, 23), weeks=12)
    states = tracked["deploy often", "acme/api"]
    assert [w.week for w in states] == [f"2026-W{n}" for n in range(36, 48)]
    assert [w.status for w in states] == FLAPPING
    assert [w.event for w in states].count("breach") == 1
    assert store.count_rows(engine, TargetWeek) == 12
    weekly_states(engine, config, date(2026, 11, 23), weeks=12)  # again: the same rows, not more
    assert store.count_rows(engine, TargetWeek) == 12
