"""The weekly digest: numbers and deltas of a hand-made scenario, Mermaid charts, safe text."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from devmetrics.digest import (
    assemble_digest,
    fmt_delta,
    last_full_week,
    parse_week,
    render_digest,
    trend_mondays,
    week_label,
)
from devmetrics.errors import ConfigError
from devmetrics.safe_text import ZWJ, markdown_text, slack_text

WEEK = date(2026, 11, 16)  # Monday of 2026-W47
EVIL = "Deploy @team fix #12 <script>alert(1)</script> | col"


def metrics(deployments: int | None, lead: float | None, **extra: Any) -> dict[str, Any]:
    """One repo's §8 metrics for one week; only what the scenario needs."""
    row = {"repo": "acme/api", "forge": "github", "deployment_signal": "environments",
           "deployments": deployments, "lead_time_hours": {"median": lead, "p90": lead,
                                                           "n": 0 if lead is None else 2},
           "pull_requests_merged": 4, "lead_time_coverage": 0.75,
           "pipeline_duration_minutes": {"median": 7.5, "p90": 12.0, "n": 10},
           "pipeline_success_rate": 0.9, "change_failure_rate": None,
           "levels": {"deployment_frequency": "high", "lead_time": "elite",
                      "change_failure_rate": None, "recovery_time": None}}
    return row | extra


def report(row: dict[str, Any]) -> dict[str, Any]:
    # as build_report: the aggregate has no signal of its own
    return {"timezone": "UTC", "repos": [row], "all": {**row, "repo": "all", "deployment_signal": None}}


def scenario() -> list[dict[str, Any]]:
    """12 weeks, W36..W47. Deployments per week: 0,1,2,0,1,2,... (i % 3). Lead time median
    10 + i hours, except every 4th week (i = 0, 4, 8: W36, W40, W44) which has no median."""
    weeks = [report(metrics(i % 3, None if i % 4 == 0 else 10.0 + i)) for i in range(10)]
    # W46 (previous): 5 deployments, lead 30.0 h, CFR 0.6, pickup 2.0 h, coding 5.0 h.
    weeks.append(report(metrics(5, 30.0, change_failure_rate=0.6, pull_requests_merged=10,
                                cycle_time_hours={"median": 7.0, "p90": 8.6, "n": 5},
                                pipeline_duration_minutes={"median": 7.0, "p90": 8.6, "n": 5},
                                cycle_time_breakdown_hours={"coding": 5.0, "pickup": 2.0})))
    # W47 (this week): 20 deployments, lead 20.5 h, CFR 0.05, pickup 3.5 h, coding 4.0 h.
    weeks.append(report(metrics(20, 20.5, change_failure_rate=0.05, pull_requests_merged=10,
                                cycle_time_hours={"median": 7.5, "p90": 9.1, "n": 5},
                                pipeline_duration_minutes={"median": 12.0, "p90": 13.6, "n": 5},
                                cycle_time_breakdown_hours={"coding": 4.0, "pickup": 3.5},
                                dependency_freshness={"dependencies": 40, "outdated": 12,
                                                      "major_behind": 5,
                                                      "more_than_one_major_behind": 2,
                                                      "libyears": 8.4})))
    return weeks


# The values behind W47's and W46's figures (as samples.week_samples gives them).
THIS = {"deployments": 20, "change_failure_rate": (1, 20), "pipeline_success_rate": (9, 10),
        "lead_time_hours.median": [18, 19, 20.5, 22, 23], "cycle_time_hours.median": [5.5, 6.5, 7.5, 8.5, 9.5],
        "pipeline_duration_minutes.median": [10, 11, 12, 13, 14], "time_to_restore_hours.median": []}
PREVIOUS = {"deployments": 5, "change_failure_rate": (3, 5), "pipeline_success_rate": (9, 10),
            "lead_time_hours.median": [26, 28, 30, 32, 34], "cycle_time_hours.median": [5, 6, 7, 8, 9],
            "pipeline_duration_minutes.median": [5, 6, 7, 8, 9], "time_to_restore_hours.median": []}
SAMPLES = {"this": {"acme/api": THIS, "all": THIS}, "previous": {"acme/api": PREVIOUS, "all": PREVIOUS}}


INCIDENT = {"repo": "acme/api", "title": EVIL, "url": "https://github.com/acme/api/issues/7",
            "created_at": "2026-11-17T10:00:00+00:00", "resolved_at": "2026-11-17T13:30:00+00:00",
            "restore_hours": 3.5}


@pytest.fixture
def digest() -> dict[str, Any]:
    return assemble_digest(WEEK, scenario(), [INCIDENT], samples=SAMPLES)


def row_of(section: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in section["comparison"] if r["key"] == key)


# --------------------------------------------------------------------------- the numbers

def test_week_vs_previous_week_numbers_deltas_and_verdicts(digest: dict[str, Any]) -> None:
    repo = digest["repos"][0]
    # deployments: 20 this week, 5 the week before -> +15, +300 %; exact binomial test of 20
    # out of 25 at 1/2: P(X >= 20) = (C(25,20)+...+C(25,25)) / 2^25 = 68,406 / 33,554,432
    # = 0.00204, two-sided 0.0041 < 0.05 -> better (more is better)
    deployments = row_of(repo, "deployments")
    assert (deployments["this"], deployments["previous"], deployments["delta"]) == (20, 5, 15)
    assert (deployments["relative"], deployments["direction"]) == (3.0, "up")
    assert (deployments["verdict"], deployments["better"], deployments["test"]) == ("better", True, "binomial-exact")
    assert deployments["p_value"] == pytest.approx(0.0041, abs=1e-4)
    # lead time median: 20.5 - 30.0 = -9.5 h; every W47 value is below every W46 value, so
    # U = 0 and the exact two-sided p = 2 / C(10, 5) = 2 / 252 = 0.0079 -> better
    lead = row_of(repo, "lead_time_hours.median")
    assert (lead["this"], lead["previous"], lead["delta"], lead["verdict"]) == (20.5, 30.0, -9.5, "better")
    assert (lead["n_this"], lead["n_previous"], lead["test"]) == (5, 5, "mann-whitney-u")
    # pipeline duration: 12 vs 7 min, all five W47 runs slower than all five W46 runs -> worse
    pipeline = row_of(repo, "pipeline_duration_minutes.median")
    assert (pipeline["delta"], pipeline["verdict"], pipeline["better"]) == (5.0, "worse", False)
    # cycle time: 7.5 vs 7.0 h, the samples interleave (U = 15 of 25): p = 0.69 -> within noise
    cycle = row_of(repo, "cycle_time_hours.median")
    assert (cycle["verdict"], cycle["better"]) == ("within noise", None)
    assert cycle["p_value"] == pytest.approx(0.6905, abs=1e-4)
    # change failure rate: 1 of 20 against 3 of 5; Fisher exact on [[1, 19], [3, 2]]: p = 0.0162
    cfr = row_of(repo, "change_failure_rate")
    assert cfr["delta"] == pytest.approx(-0.55)
    assert (cfr["verdict"], cfr["test"], cfr["n_this"], cfr["n_previous"]) == ("better", "fisher-exact", 20, 5)
    # unchanged pipeline success rate 9/10 vs 9/10: flat, neither better nor worse
    assert row_of(repo, "pipeline_success_rate")["verdict"] == "flat"
    assert row_of(repo, "pipeline_success_rate")["better"] is None
    # no incident count in the scenario: no data
    assert row_of(repo, "incidents")["verdict"] == "no data"


def test_few_events_are_never_better_or_worse() -> None:
    weeks = scenario()
    # W46 with 3 deployments, W47 with 20: the test would say "better", but 3 < 5
    weeks[-2]["repos"][0]["deployments"] = 3
    digest = assemble_digest(WEEK, weeks, [], samples={"this": SAMPLES["this"], "previous": {
        "acme/api": {**PREVIOUS, "deployments": 3}}})
    deployments = row_of(digest["repos"][0], "deployments")
    assert (deployments["verdict"], deployments["better"], deployments["p_value"]) == ("few events", None, None)
    # a higher threshold makes 5-value medians few events too
    strict = assemble_digest(WEEK, scenario(), [], samples=SAMPLES, min_events=6)
    assert row_of(strict["repos"][0], "lead_time_hours.median")["verdict"] == "few events"
    text = render_digest(strict, "markdown")
    assert "| Lead time, median | _20.5 h (n=5)_ | _30.0 h (n=5)_ | ◌ few events ▼ -9.5 h (-32%) |" in text
    assert "fewer than 6 events in either week" in text


def test_markdown_shows_verdicts_n_and_dashes(digest: dict[str, Any]) -> None:
    text = render_digest(digest, "markdown")
    assert "| Deployments | 20 | 5 | 🟢 better ▲ +15 (+300%) |" in text
    assert "| Lead time, median | 20.5 h (n=5) | 30.0 h (n=5) | 🟢 better ▼ -9.5 h (-32%) |" in text
    assert "| Change failure rate | 5% (of 20) | 60% (of 5) | 🟢 better ▼ -55.0 pp (-92%) |" in text
    assert "| Pipeline duration, median | 12.0 min (n=5) | 7.0 min (n=5) | 🔴 worse ▲ +5.0 min (+71%) |" in text
    assert "| Cycle time, median | 7.5 h (n=5) | 7.0 h (n=5) | ⚪ within noise ▲ +0.5 h (+7%) |" in text
    assert "| Pipeline success rate | 90% (of 10) | 90% (of 10) | ⚪ flat |" in text
    # no incident count in the scenario: a missing metric is a dash, never 0
    assert "| Incidents | — | — | — |" in text
    # outcomes first, then leading indicators
    assert text.index("**Outcomes (lagging)**") < text.index("| Deployments |") \
        < text.index("**Leading indicators**") < text.index("| Cycle time, median |")
    # lead-time stages: pickup 3.5 vs 2.0 -> +1.5 h; review has no data either week
    assert "| pickup | 3.5 h | 2.0 h | ▲ +1.5 h |" in text
    assert "| review | — | — | — |" in text
    assert "the stage medians do not add up to the lead time" in text
    # no trailing-weeks report given: levels from the week itself; the lead time rests on the
    # week's 2 PRs (metrics() above), fewer than 5: no level
    assert "**DORA levels** (week 2026-W47): deployment frequency **high** (n=20) · " \
           "lead time _few events (n=2)_ · change failure rate — · recovery time —" in text
    assert "median 12.0 min, p90 13.6 min over 5 runs; success rate 90%" in text
    assert "40 direct dependencies, 12 outdated, 5 a major version behind (2 more than one), " \
           "8.4 libyears (summed, then rounded to 0.1)." in text
    assert "deployments counted from environments; 75% of 10 merged pull requests" in text
    assert "deployments counted from acme/api: environments;" in text  # the aggregate's line
    assert text.startswith("<!-- devmetrics-digest week=2026-W47 -->\n")
    assert "Week 2026-W47 (2026-11-16 to 2026-11-22, UTC) compared with 2026-W46" in text


def test_incident_of_the_week_is_linked_and_harmless(digest: dict[str, Any]) -> None:
    text = render_digest(digest, "markdown")
    line = next(ln for ln in text.splitlines() if "acme/api/issues/7" in ln)
    assert line.startswith("- [Deploy @" + ZWJ + "team fix #" + ZWJ + "12 &lt;script&gt;")
    assert "](https://github.com/acme/api/issues/7)" in line
    assert "restored after 3.5 h" in line
    assert "<script>" not in text


def test_levels_are_judged_on_the_trailing_four_weeks() -> None:
    # W44..W47 together: 31 deployments on 3 days a week, lead time median 30 h over 12 PRs,
    # change failure rate 2 of 31, no failed deployment recovered (n = 0)
    four_weeks = {**metrics(31, 30.0), "lead_time_hours": {"median": 30.0, "p90": 50.0, "n": 12},
                  "failed_deployment_recovery_hours": {"median": None, "p90": None, "n": 0},
                  "levels": {"deployment_frequency": "high", "lead_time": "high",
                             "change_failure_rate": "high", "recovery_time": None}}
    digest = assemble_digest(WEEK, scenario(), [], samples=SAMPLES, level_report=report(four_weeks))
    assert digest["level_weeks"] == ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    assert digest["repos"][0]["levels"]["lead_time"] == {"level": "high", "n": 12, "few_events": False}
    # no recovery in the four weeks: n = 0 < 5, few events, never a level
    assert digest["repos"][0]["levels"]["recovery_time"] == {"level": None, "n": 0, "few_events": True}
    text = render_digest(digest, "markdown")
    assert "**DORA levels** (4 weeks, 2026-W44 to 2026-W47): deployment frequency **high** (n=31) · " \
           "lead time **high** (n=12) · change failure rate **high** (n=31) · recovery time " \
           "_few events (n=0)_" in text


def test_trend_keeps_every_week_on_the_axis(digest: dict[str, Any]) -> None:
    trend = digest["repos"][0]["trend"]
    assert digest["trend_weeks"][0] == "2026-W36" and digest["trend_weeks"][-1] == "2026-W47"
    assert trend["deployments"] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 5, 20]
    assert trend["lead_time_median_hours"][:5] == [None, 11.0, 12.0, 13.0, None]  # JSON: unknown
    text = render_digest(digest, "markdown")
    lead = next(c for c in mermaid_blocks(text) if c["title"] == "Lead time median (hours)")
    # all 12 weeks are on the axis; W36, W40, W44 have no median and are drawn at 0, said below
    assert len(lead["x"]) == 12 and lead["x"][0] == "W36"
    assert lead["series"][0][1][:5] == [0, 11.0, 12.0, 13.0, 0]
    assert lead["series"][0][1][-2:] == [30.0, 20.5]
    assert "_Lead time median (hours): no events in W36, W40, W44 (drawn at 0)._" in text


def test_a_week_without_deployments_is_zero_in_the_trend_not_missing() -> None:
    weeks = scenario()
    weeks[5]["repos"][0]["deployments"] = None
    digest = assemble_digest(WEEK, weeks, [])
    assert digest["repos"][0]["trend"]["deployments"][5] == 0


# ------------------------------------------------------------------------- mermaid

def mermaid_blocks(markdown: str) -> list[dict[str, Any]]:
    """Parse every ```mermaid block as an xychart-beta and check its structure."""
    found = re.findall(r"```mermaid\n(.*?)\n```", markdown, flags=re.DOTALL)
    return [validate_xychart(block) for block in found]


def validate_xychart(block: str) -> dict[str, Any]:
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    assert lines[0] == "xychart-beta", lines[0]
    chart: dict[str, Any] = {"series": []}
    for line in lines[1:]:
        keyword, _, rest = line.partition(" ")
        if keyword == "title":
            assert re.fullmatch(r'"[^"]*"', rest), line
            chart["title"] = rest.strip('"')
        elif keyword == "x-axis":
            assert re.fullmatch(r'\[("[^"\[\]]*"(, )?)+\]', rest), line
            chart["x"] = re.findall(r'"([^"]*)"', rest)
        elif keyword == "y-axis":
            assert re.fullmatch(r"-?[\d.]+ --> -?[\d.]+", rest), line
        elif keyword in ("bar", "line"):
            assert re.fullmatch(r"\[(-?\d+(\.\d+)?(, )?)+\]", rest), line
            chart["series"].append((keyword, [float(v) for v in rest.strip("[]").split(", ")]))
        else:
            raise AssertionError(f"unexpected xychart line: {line}")
    assert chart["series"], "a chart without data"
    for _, values in chart["series"]:
        assert len(values) == len(chart["x"]), "x-axis and series lengths differ"
    return chart


def test_every_mermaid_block_is_a_valid_xychart(digest: dict[str, Any]) -> None:
    charts = mermaid_blocks(render_digest(digest, "markdown"))
    # 4 charts per section: all repositories + acme/api
    assert len(charts) == 8
    deployments = charts[0]
    assert deployments["title"] == "Deployments per week"
    assert deployments["x"][0] == "W36" and len(deployments["x"]) == 12
    assert deployments["series"] == [("bar", [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 5, 20])]


def test_no_data_at_all_gives_a_note_instead_of_an_empty_chart() -> None:
    weeks = [report(metrics(0, None)) for _ in range(12)]
    text = render_digest(assemble_digest(WEEK, weeks, []), "markdown")
    assert "_Lead time median (hours): no data in these weeks._" in text
    for chart in mermaid_blocks(text):
        assert chart["title"] != "Lead time median (hours)"


# ---------------------------------------------------------------------- formats, weeks

def test_json_round_trips_and_keeps_nulls(digest: dict[str, Any]) -> None:
    data = json.loads(render_digest(digest, "json"))
    assert data["week"] == "2026-W47" and data["previous_week"] == "2026-W46"
    assert data["repos"][0]["trend"]["lead_time_median_hours"][0] is None
    assert data["all"]["incidents"][0]["title"] == EVIL  # JSON keeps the raw text


def test_unknown_format_is_a_usage_error(digest: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        render_digest(digest, "html")  # type: ignore[arg-type]


def test_slack_form_is_short_and_harmless(digest: dict[str, Any]) -> None:
    text = render_digest(digest, "slack")
    assert "• Deployments: *20* (🟢 better ▲ +15 (+300%))" in text
    assert "• Lead time, median: *20.5 h (n=5)* (🟢 better ▼ -9.5 h (-32%))" in text
    assert "<https://github.com/acme/api/issues/7|Deploy @" + ZWJ + "team" in text
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_iso_weeks() -> None:
    assert parse_week("2026-W47") == date(2026, 11, 16)
    assert week_label(date(2021, 1, 4)) == "2021-W01"
    assert week_label(date(2026, 12, 28)) == "2026-W53"
    # Monday 23 Nov 2026 at 00:30 UTC is still Sunday 22 Nov in Los Angeles: the last full
    # week there is W46, while in UTC it is W47.
    now = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert last_full_week("UTC", now) == date(2026, 11, 16)
    assert last_full_week("America/Los_Angeles", now) == date(2026, 11, 9)
    assert trend_mondays(WEEK)[0] == date(2026, 8, 31)  # 11 weeks before W47 = W36
    with pytest.raises(ConfigError):
        parse_week("2026-47")


def test_delta_formats() -> None:
    assert fmt_delta(None, "count") == "—"
    assert fmt_delta(-3, "count") == "▼ -3"
    assert fmt_delta(0.034, "rate") == "▲ +3.4 pp"
    assert fmt_delta(12.25, "minutes") == "▲ +12.2 min"


# ------------------------------------------------------------------------- safe text

def test_hostile_title_comes_out_harmless() -> None:
    text = markdown_text("Fix @team and @org/devs, see #12 and !34\n| x | <script>alert(1)</script>")
    assert "<" not in text and ">" not in text
    assert not re.search(r"@[\w-]", text)  # no mention GitHub would notify
    assert not re.search(r"[#!]\d", text)  # no issue / MR reference
    assert "\n" not in text
    assert re.fullmatch(r"(\\\||[^|])*", text), "every pipe is escaped: the row stays one cell"
    assert text.startswith("Fix @" + ZWJ + "team")


def test_markdown_special_characters_do_not_format() -> None:
    assert markdown_text("*bold* _it_ [link](x) `code`") == \
        r"\*bold\* \_it\_ \[link\](x) \`code\`"


def test_slack_text_cannot_ping_a_channel() -> None:
    text = slack_text("<!channel> hello @here & <@U123>")
    assert "<!" not in text and "<@" not in text and "&amp;" in text


def test_a_worsened_figure_carries_its_drivers_and_explain_command() -> None:
    workflows = [{"workflow": "CI | build", "median_minutes": 14.0, "runs": 5, "success_rate": 0.8}]
    digest = assemble_digest(WEEK, scenario(), [], samples=SAMPLES,
                             drivers={"acme/api": {"workflows": workflows}})
    pipeline = row_of(digest["repos"][0], "pipeline_duration_minutes.median")  # worse (see above)
    assert pipeline["drivers"]["rows"] == workflows
    assert "drivers" not in row_of(digest["repos"][0], "lead_time_hours.median")  # better: none
    text = render_digest(digest, "markdown")
    assert ("**Why pipeline duration, median worsened** — slowest workflows:\n"
            "- CI \\| build: median 14.0 min over 5 runs, success 80%\n"
            "- all rows: `devmetrics explain pipeline_duration_minutes --repo acme/api "
            "--since 2026-11-16 --until 2026-11-23`") in text
    # the aggregate has no driver rows given: the command alone, for any repo
    assert "`devmetrics explain pipeline_duration_minutes --repo OWNER/NAME --since 2026-11-16" in text
