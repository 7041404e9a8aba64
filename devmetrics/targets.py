"""Targets (metrics.md §9): which report keys they may name, and met / breached per repo.

A target's metric is any key of the JSON report a number sits at: a top-level figure
(`change_failure_rate`), a distribution's field (`lead_time_hours.p90`) or a dependency
freshness count (`dependency_freshness.more_than_one_major_behind`). The keys are read from
the report itself (built once over an empty store), so a metric added to the report is a
valid target at once.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from devmetrics.errors import ConfigError

# A rate's "events": the count its denominator is (few events below report.min_events).
DENOMINATORS = {
    "deployment_frequency_per_week": "deployments",
    "deployment_days_per_week_median": "deployments",
    "deployment_success_rate": "deployments",
    "change_failure_rate": "deployments",
    "incidents_per_deploy": "deployments",
    "rework_rate": "pull_requests_merged",
    "lead_time_coverage": "pull_requests_merged",
    "incident_link_coverage": "incidents",
    "pipeline_success_rate": "pipelines",
}
NOT_METRICS = {"repo", "forge", "deployment_signal", "levels"}
DISTRIBUTION_FIELDS = ("median", "p90", "mean", "n")

MET, BREACHED, FEW_EVENTS, NO_DATA = "met", "breached", "few events", "no data"


@functools.cache
def report_keys() -> tuple[str, ...]:
    """Every key a target may name, from a report over an empty in-memory store."""
    from datetime import date

    from devmetrics.deps.freshness import SUMMARY_KEYS
    from devmetrics.metrics import ReportSettings
    from devmetrics.report import build_report
    from devmetrics.store import open_engine

    row = build_report(open_engine("sqlite://"), ReportSettings(), date(2000, 1, 3), date(2000, 1, 10))["all"]
    keys: list[str] = []
    for key, value in row.items():
        if key in NOT_METRICS:
            continue
        if key == "dependency_freshness":
            keys += [f"{key}.{field}" for field in SUMMARY_KEYS]
        elif isinstance(value, dict):
            keys += [f"{key}.{field}" for field in DISTRIBUTION_FIELDS if field in value]
        else:
            keys.append(key)
    return tuple(keys)


def check_targets(targets: Sequence[Any], where: str = "") -> None:
    """Unique names, known metric keys, guardrails naming other targets: else one line."""
    names: list[str] = []
    for i, target in enumerate(targets):
        if target.name in names:
            raise ConfigError(f"{where}targets[{i}].name: {target.name!r} is used by another target")
        names.append(target.name)
    known = report_keys()
    for i, target in enumerate(targets):
        if target.metric not in known:
            raise ConfigError(f"{where}targets[{i}].metric: unknown report key {target.metric!r}"
                              f"{_did_you_mean(target.metric, known)}")
        for guard in target.guardrail:
            if guard == target.name:
                raise ConfigError(f"{where}targets[{i}].guardrail: a target cannot guard itself")
            if guard not in names:
                raise ConfigError(f"{where}targets[{i}].guardrail: no target named {guard!r}"
                                  f"{_did_you_mean(guard, names)}")


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if "." in word and not any(k.startswith(word.split(".")[0] + ".") for k in known):
        return ""
    return " (see docs/targets.md for the keys)"


@dataclass(frozen=True)
class Result:
    """One target over one repo's window."""

    target: str
    repo: str
    status: str  # met | breached | few events | no data
    value: float | None
    bound: str  # "<= 48" or ">= 1"
    owner: str | None
    events: int | None  # the distribution's n or the rate's denominator
    guarded_by: tuple[str, ...] = ()  # guardrails not met (a met target becomes breached)
    state: str | None = None  # ok | alerting, from the weekly states (weekly_states)
    since: str | None = None  # the ISO week that state began


def value_of(row: dict[str, Any], metric: str) -> tuple[float | None, int | None]:
    """The metric's value in a report row and the number of events it rests on."""
    head, _, field = metric.partition(".")
    if field:
        holder = row.get(head) or {}
        value = holder.get(field)
        events = holder.get("n") if head != "dependency_freshness" else holder.get("dependencies")
    else:
        value = row.get(head)
        denominator = DENOMINATORS.get(head)
        events = row.get(denominator) if denominator else None
    return (None if value is None else float(value)), (None if events is None else int(events))


def evaluate_target(target: Any, row: dict[str, Any], min_events: int) -> Result:
    value, events = value_of(row, target.metric)
    bound = f"<= {target.at_most:g}" if target.at_most is not None else f">= {target.at_least:g}"
    if value is None:
        status = NO_DATA
    elif events is not None and events < min_events and not target.metric.startswith("dependency_freshness."):
        status = FEW_EVENTS
    elif (target.at_most is not None and value > target.at_most) or (
            target.at_least is not None and value < target.at_least):
        status = BREACHED
    else:
        status = MET
    return Result(target.name, row["repo"], status, value, bound, target.owner, events)


def applies(target: Any, repo: str) -> bool:
    return not target.repos or any(fnmatch.fnmatchcase(repo, glob) for glob in target.repos)


def evaluate(targets: Sequence[Any], rows_by_window: dict[int, list[dict[str, Any]]], default_days: int,
             min_events: int) -> list[Result]:
    """Every target on every repo it applies to; a met target whose guardrail (on the same
    repo) is not met counts as breached, naming the guardrail."""
    plain: dict[tuple[str, str], Result] = {}
    for target in targets:
        for row in rows_by_window[target.window_days or default_days]:
            if applies(target, row["repo"]):
                plain[target.name, row["repo"]] = evaluate_target(target, row, min_events)
    results = []
    for (name, repo), result in plain.items():
        target = next(t for t in targets if t.name == name)
        failing = tuple(g for g in target.guardrail if (g, repo) in plain and plain[g, repo].status == BREACHED)
        if result.status == MET and failing:
            result = Result(**{**asdict(result), "status": BREACHED, "guarded_by": failing})
        results.append(result)
    return results


# ------------------------------------------------------------------------------ output

def _value(result: Result) -> str:
    return "-" if result.value is None else f"{result.value:.4g}"


def _line(result: Result) -> str:
    owner = f" (owner {result.owner})" if result.owner else ""
    guard = f", guardrail {', '.join(result.guarded_by)} breached" if result.guarded_by else ""
    events = f", n={result.events}" if result.events is not None else ""
    state = f"; {result.state} since {result.since}" if result.state else ""
    return (f"{result.target} on {result.repo}: {result.status}{guard}: {_value(result)} "
            f"(target {result.bound}{events}){owner}{state}")


def render(results: Sequence[Result], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"targets": [asdict(r) for r in results],
                           "breached": sum(r.status == BREACHED for r in results)}, indent=2)
    if fmt == "markdown":
        lines = ["| target | repo | status | value | target | n | owner | state | since |",
                 "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r.target} | {r.repo} | {r.status} | {_value(r)} | {r.bound} | "
                  f"{'' if r.events is None else r.events} | {r.owner or ''} | {r.state or ''} | {r.since or ''} |"
                  for r in results]
        return "\n".join(lines)
    if fmt == "github":  # workflow commands: a breach is an error annotation, few events a notice
        kinds = {BREACHED: "error", FEW_EVENTS: "notice", NO_DATA: "notice", MET: "notice"}
        return "\n".join(f"::{kinds[r.status]} title={_escape_property('target ' + r.target)}::"
                         f"{_escape_data(_line(r))}" for r in results)
    return "\n".join(_line(r) for r in results) or "no targets in the config"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# ------------------------------------------------------------------ weekly states (alerts)

OK, ALERTING = "ok", "alerting"


@dataclass(frozen=True)
class WeekState:
    week: str
    status: str  # the week on its own
    value: float | None
    state: str  # ok | alerting
    since: str  # the week the state began
    event: str | None  # "breach" when it turned alerting this week, "recover" when it turned ok


def track(weeks: Sequence[tuple[str, str, float | None]], breach_after: int, recover_after: int,
          start: tuple[str, str] | None = None) -> list[WeekState]:
    """(week, status, value) in order -> the alert state each week (metrics.md §9).

    The state turns alerting only after `breach_after` consecutive breached weeks and back to
    ok only after `recover_after` consecutive met weeks; a few-events or no-data week leaves
    the state as it was and neither extends nor breaks a run. `start` is (state, since) carried
    over from the week before the first one (the store's last row).
    """
    state, since = start or (OK, weeks[0][0] if weeks else "")
    run_status, run = None, 0
    out = []
    for week, status, value in weeks:
        event = None
        if status in (MET, BREACHED):
            run = run + 1 if status == run_status else 1
            run_status = status
            if state == OK and status == BREACHED and run >= breach_after:
                state, since, event = ALERTING, _run_start(out, week, run), "breach"
            elif state == ALERTING and status == MET and run >= recover_after:
                state, since, event = OK, _run_start(out, week, run), "recover"
        out.append(WeekState(week, status, value, state, since, event))
    return out


def _run_start(done: Sequence[WeekState], week: str, run: int) -> str:
    """The first week of the run of `run` judged weeks that ends at `week`."""
    judged = [w.week for w in done if w.status in (MET, BREACHED)] + [week]
    return judged[-run]


def with_states(results: Sequence[Result], tracked: dict[tuple[str, str], list[WeekState]]) -> list[Result]:
    """Each result with its alert state and since when, from the last tracked week."""
    out = []
    for result in results:
        found = tracked.get((result.target, result.repo))
        last = found[-1] if found else None
        out.append(Result(**{**asdict(result), "state": last.state if last else None,
                             "since": last.since if last else None}))
    return out


def weekly_states(engine: Any, config: Any, until: Any, weeks: int = 12) -> dict[tuple[str, str], list[WeekState]]:
    """Every target on every repo for the `weeks` full ISO weeks before `until`'s week, each
    week over its own window, with the alert state; the rows are written to target_week."""
    from datetime import timedelta

    from devmetrics.clock import now_utc
    from devmetrics.models import TargetWeek
    from devmetrics.report import build_report, settings_from_config
    from devmetrics.store import upsert

    settings = settings_from_config(config)
    end = until - timedelta(days=until.weekday())  # the Monday of until's week: full weeks only
    report = build_report(engine, settings, end - timedelta(weeks=weeks), end, by="week")
    per_week = [(p["period"], {w: p["repos"] for w in {t.window_days or 0 for t in config.targets}})
                for p in report["trend"]["periods"]]
    statuses: dict[tuple[str, str], list[tuple[str, str, float | None]]] = {}
    for week, rows in per_week:
        for result in evaluate(config.targets, rows, 0, config.report.min_events):
            statuses.setdefault((result.target, result.repo), []).append((week, result.status, result.value))
    targets = {t.name: t for t in config.targets}
    tracked = {key: track(found, targets[key[0]].breach_after, targets[key[0]].recover_after)
               for key, found in statuses.items()}
    stamp = now_utc()
    upsert(engine, TargetWeek, [
        TargetWeek(target=name, repo=repo, week=w.week, status=w.status, value=w.value, state=w.state,
                   since=w.since, event=w.event, evaluated_at=stamp)
        for (name, repo), found in tracked.items() for w in found])
    return tracked
