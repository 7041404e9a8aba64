"""The pure part of the digest: report dicts (and the weeks' samples) in, the digest dict out.

    assemble_digest(week, reports, incidents, title=DEFAULT_TITLE, samples=None,
                    min_events=DEFAULT_MIN_EVENTS) -> dict

`reports` are metrics.md §8 report dicts for the trend weeks ending with `week` (oldest
first), each with "repos" and an "all" aggregate. `samples` is {"this": ..., "previous":
...}, each samples.week_samples() of that week; without them only counts can be tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from devmetrics.digest.noise import DEFAULT_MIN_EVENTS, Kind, sample_size, verdict
from devmetrics.digest.weeks import LEVEL_WEEKS, trend_mondays, week_label
from devmetrics.metrics.levels import lookup

DEFAULT_TITLE = "Engineering metrics {week}"
Group = Literal["lagging", "leading"]


@dataclass(frozen=True)
class Row:
    """One metric compared week on week; `higher_is_better` decides better or worse."""

    key: str  # a report key; a dot reads into a distribution ("lead_time_hours.median")
    label: str
    unit: Literal["count", "hours", "minutes", "rate"]
    higher_is_better: bool
    # lagging: an outcome the team sees after the fact (DORA's four and incidents);
    # leading: what moves first and can be acted on this week (docs/metrics.md says which guards which)
    group: Group

    @property
    def kind(self) -> Kind:
        return "count" if self.unit == "count" else "rate" if self.unit == "rate" else "distribution"

    @property
    def n_key(self) -> str | None:
        return f"{self.key.split('.')[0]}.n" if self.kind == "distribution" else None


ROWS = (
    Row("deployments", "Deployments", "count", True, "lagging"),
    Row("lead_time_hours.median", "Lead time, median", "hours", False, "lagging"),
    Row("change_failure_rate", "Change failure rate", "rate", False, "lagging"),
    Row("time_to_restore_hours.median", "Time to restore, median", "hours", False, "lagging"),
    Row("deployment_success_rate", "Deployment success rate", "rate", True, "lagging"),
    Row("incidents", "Incidents", "count", False, "lagging"),
    Row("cycle_time_hours.median", "Cycle time, median", "hours", False, "leading"),
    Row("pull_requests_merged", "Pull requests merged", "count", True, "leading"),
    Row("pipeline_duration_minutes.median", "Pipeline duration, median", "minutes", False, "leading"),
    Row("pipeline_success_rate", "Pipeline success rate", "rate", True, "leading"),
)
# What each DORA level rests on: the level is given only when this n reaches min_events.
LEVEL_EVIDENCE = {"deployment_frequency": "deployments", "lead_time": "lead_time_hours.n",
                  "change_failure_rate": "deployments", "recovery_time": "failed_deployment_recovery_hours.n"}
GROUPS: dict[Group, str] = {"lagging": "Outcomes (lagging)", "leading": "Leading indicators"}
STAGES = ("coding", "pickup", "review", "deploy")
# Trend series: counts are 0 in a week without data; medians and rates stay None there.
TRENDS: dict[str, tuple[str, str, bool]] = {  # name -> (report key, chart title, is a count)
    "deployments": ("deployments", "Deployments per week", True),
    "pull_requests_merged": ("pull_requests_merged", "Pull requests merged per week", True),
    "lead_time_median_hours": ("lead_time_hours.median", "Lead time median (hours)", False),
    "pipeline_duration_median_minutes": ("pipeline_duration_minutes.median",
                                         "Pipeline duration median (minutes)", False),
}


def assemble_digest(week: date, reports: Sequence[Mapping[str, Any]],
                    incidents: Sequence[Mapping[str, Any]], title: str = DEFAULT_TITLE,
                    samples: Mapping[str, Mapping[str, Any]] | None = None,
                    min_events: int = DEFAULT_MIN_EVENTS,
                    level_report: Mapping[str, Any] | None = None,
                    drivers: Mapping[str, Mapping[str, Any]] | None = None,
                    revisions: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> dict:
    """The digest dict from report dicts of the trend weeks (oldest first; the last is `week`).

    `level_report` is the report over the trailing LEVEL_WEEKS weeks, which the DORA levels
    are judged on (one week's handful of events flips a level); without it they are judged
    on the week alone, and "level_weeks" says which weeks were used. `drivers` (from
    drivers.week_drivers) go under each worsened figure with its explain command;
    `revisions` (history.find_revisions) are the past weeks' figures changed since posted.
    """
    this, previous = reports[-1], (reports[-2] if len(reports) > 1 else {})
    mondays = trend_mondays(week, len(reports))
    found = samples or {}
    levels_from = level_report or this
    level_weeks = LEVEL_WEEKS if level_report else 1

    def build(name: str, weeks: list[dict[str, Any]], before: dict[str, Any],
              own: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        pair = {side: (found.get(side) or {}).get(name) or {} for side in ("this", "previous")}
        built = section(name, weeks, before, own, pair, min_events)
        judged = _all_of(levels_from) if name == "all" else _repo_of(levels_from, name)
        built["levels"] = judged_levels(judged, min_events)
        explain_worsened(built, (drivers or {}).get(name) or {}, week)
        built["revised"] = [dict(r) for r in (revisions or {}).get(name) or []]
        built["attention"] = attention(built["comparison"])
        return built

    names = [str(repo["repo"]) for repo in this.get("repos", [])]
    repos = [build(name, [_repo_of(r, name) for r in reports], _repo_of(previous, name),
                   [i for i in incidents if i.get("repo") == name]) for name in names]
    overall = build("all", [_all_of(r) for r in reports], _all_of(previous), incidents)
    # Each repo counts deployments from its own signal; the aggregate names them all.
    overall["coverage"]["deployment_signals"] = {
        repo["repo"]: repo["coverage"]["deployment_signal"] for repo in repos}
    return {
        "week": week_label(week), "previous_week": week_label(week - timedelta(weeks=1)),
        "since": week.isoformat(), "until": (week + timedelta(days=7)).isoformat(),
        "timezone": this.get("timezone", "UTC"), "title": title.format(week=week_label(week)),
        "min_events": min_events, "trend_weeks": [week_label(monday) for monday in mondays],
        "level_weeks": [week_label(week - timedelta(weeks=back)) for back in range(level_weeks - 1, -1, -1)],
        "targets": [],  # filled by the targets section (issue 20) when targets are configured
        # rendering choices ([digest] in the config; build_digest sets them)
        "title_length": 80, "detail_repos": 5, "dashboard_url": None,
        "all": overall, "repos": repos,
    }


def _all_of(report: Mapping[str, Any]) -> dict[str, Any]:
    found = report.get("all")
    if isinstance(found, Mapping):
        return dict(found)
    repos = report.get("repos") or []
    return dict(repos[0]) if len(repos) == 1 else {}


def _repo_of(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next((dict(r) for r in report.get("repos", []) if r.get("repo") == name), {})


def section(name: str, weeks: Sequence[Mapping[str, Any]], previous: Mapping[str, Any],
            incidents: Sequence[Mapping[str, Any]], samples: Mapping[str, Mapping[str, Any]] | None = None,
            min_events: int = DEFAULT_MIN_EVENTS) -> dict[str, Any]:
    """One repo (or "all"): `weeks` are its metrics per trend week, the last is this week."""
    this = weeks[-1]
    pair = samples or {}
    return {
        "repo": name, "forge": this.get("forge"), "url": this.get("url"),
        "comparison": [compare(row, this, previous, pair.get("this"), pair.get("previous"), min_events)
                       for row in ROWS],
        "levels": dict(this.get("levels") or {}),
        "lead_time_stages": {"this": stages(this), "previous": stages(previous)},
        "pipeline": {"duration_minutes": this.get("pipeline_duration_minutes"),
                     "success_rate": this.get("pipeline_success_rate")},
        "incidents": [dict(i) for i in incidents],
        "dependency_freshness": this.get("dependency_freshness"),
        "trend": {name: [_trend_value(w, key, count) for w in weeks]
                  for name, (key, _, count) in TRENDS.items()},
        "coverage": coverage(this),
    }


def compare(row: Row, this: Mapping[str, Any], previous: Mapping[str, Any],
            this_samples: Mapping[str, Any] | None = None, previous_samples: Mapping[str, Any] | None = None,
            min_events: int = DEFAULT_MIN_EVENTS) -> dict[str, Any]:
    """This week against the previous: the change, and whether it is better, worse or noise."""
    now, before = _number(lookup(this, row.key)), _number(lookup(previous, row.key))
    delta = None if now is None or before is None else round(now - before, 4)
    direction = None if delta is None else ("up" if delta > 0 else "down" if delta < 0 else "same")
    sample_now = _sample(row, this, this_samples)
    sample_before = _sample(row, previous, previous_samples)
    judged = verdict(row.kind, sample_now, sample_before, delta, row.higher_is_better, min_events)
    return {"key": row.key, "label": row.label, "unit": row.unit, "group": row.group,
            "this": now, "previous": before,
            "n_this": _n(row, this, sample_now), "n_previous": _n(row, previous, sample_before),
            "delta": delta, "relative": _relative(delta, before), "direction": direction,
            "verdict": judged.word, "better": {"better": True, "worse": False}.get(judged.word),
            "test": judged.test, "p_value": None if judged.p_value is None else round(judged.p_value, 4)}


def _sample(row: Row, metrics: Mapping[str, Any], samples: Mapping[str, Any] | None) -> Any:
    """The week's sample; a count is its own sample, so the report alone can test it."""
    if samples and row.key in samples:
        return samples[row.key]
    if row.kind == "count":
        value = _number(lookup(metrics, row.key))
        return None if value is None else int(value)
    return None


def _n(row: Row, metrics: Mapping[str, Any], sample: Any) -> int | None:
    if sample is not None:
        return sample_size(row.kind, sample)
    value = _number(lookup(metrics, row.n_key)) if row.n_key else None
    return None if value is None else int(value)


def _relative(delta: float | None, before: float | None) -> float | None:
    """The change as a share of last week's figure; None from zero (no meaningful ratio)."""
    if delta is None or not before:
        return None
    return round(delta / abs(before), 4)


def attention(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How much a section needs a look: its worse and better figures, and how far they moved."""
    judged = [row for row in rows if row["verdict"] in ("better", "worse")]
    return {"worse": sum(row["verdict"] == "worse" for row in rows),
            "better": sum(row["verdict"] == "better" for row in rows),
            "moved": round(sum(abs(row["relative"] or 0) for row in judged), 4)}


def by_attention(sections: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Most worsened figures first, then the largest judged moves, then by name."""
    return sorted(sections, key=lambda sec: (-sec["attention"]["worse"], -sec["attention"]["moved"],
                                             -sec["attention"]["better"], sec["repo"]))


def explain_worsened(sec: dict[str, Any], found: Mapping[str, Any], week: date) -> None:
    """Under each worsened figure: the rows behind it and the explain command listing them all."""
    from devmetrics.digest.drivers import DRIVER_OF, explain_command

    since, until = week.isoformat(), (week + timedelta(days=7)).isoformat()
    for row in sec["comparison"]:
        if row["verdict"] != "worse":
            continue
        kind = DRIVER_OF.get(row["key"])
        row["drivers"] = {"kind": kind, "rows": list(found.get(kind) or []) if kind else [],
                          "explain": explain_command(row["key"], sec["repo"], since, until)}


def judged_levels(metrics: Mapping[str, Any], min_events: int) -> dict[str, dict[str, Any]]:
    """Each DORA level with the n it rests on; fewer than min_events: no level, "few events"."""
    judged = {}
    for key, value in (metrics.get("levels") or {}).items():
        evidence = LEVEL_EVIDENCE.get(key)
        n = _number(lookup(metrics, evidence)) if evidence else None
        few = n is not None and n < min_events
        judged[key] = {"level": None if few else value, "n": None if n is None else int(n),
                       "few_events": few}
    return judged


def stages(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """Median hours per lead-time stage; a stage may be a number or a {median, …} dict."""
    breakdown = metrics.get("cycle_time_breakdown_hours") or {}
    return {stage: _number(_median(breakdown.get(stage))) for stage in STAGES}


def _median(value: Any) -> Any:
    return value.get("median") if isinstance(value, Mapping) else value


def coverage(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What the numbers rest on: the deployment signal, PR-to-deployment links, sample sizes."""
    return {
        "deployment_signal": metrics.get("deployment_signal"),
        "deployment_signals": metrics.get("deployment_signals"),
        "lead_time_coverage": _number(metrics.get("lead_time_coverage")),
        "pull_requests_merged": _number(metrics.get("pull_requests_merged")),
        "lead_time_n": _number(lookup(metrics, "lead_time_hours.n")),
        "pipeline_runs": _number(lookup(metrics, "pipeline_duration_minutes.n")),
    }


def _trend_value(metrics: Mapping[str, Any], key: str, count: bool) -> float | None:
    value = _number(lookup(metrics, key))
    return (value or 0) if count else value  # a missing median is unknown, never 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if value == value else None  # NaN is "no data"
