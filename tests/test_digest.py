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
    # W46 (previous): 3 deployments, lead 30.0 h, CFR 0.25, pickup 2.0 h, coding 5.0 h.
    weeks.append(report(metrics(3, 30.0, change_failure_rate=0.25,
                                cycle_time_breakdown_hours={"coding": 5.0, "pickup": 2.0})))
    # W47 (this week): 5 deployments, lead 20.5 h, CFR 0.2, pickup 3.5 h, coding 4.0 h.
    weeks.append(report(metrics(5, 20.5, change_failure_rate=0.2,
                                cycle_time_breakdown_hours={"coding": 4.0, "pickup": 3.5},
                                dependency_freshness={"dependencies": 40, "outdated": 12,
                                                      "major_behind": 5,
                                                      "more_than_one_major_behind": 2,
                                                      "libyears": 8.4})))
    return weeks


INCIDENT = {"repo": "acme/api", "title": EVIL, "url": "https://github.com/acme/api/issues/7",
            "created_at": "2026-11-17T10:00:00+00:00", "resolved_at": "2026-11-17T13:30:00+00:00",
            "restore_hours": 3.5}


@pytest.fixture
def digest() -> dict[str, Any]:
    return assemble_digest(WEEK, scenario(), [INCIDENT])


def row_of(section: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in section["comparison"] if r["key"] == key)


# --------------------------------------------------------------------------- the numbers

def test_week_vs_previous_week_numbers_and_deltas(digest: dict[str, Any]) -> None:
    repo = digest["repos"][0]
    # deployments: 5 this week, 3 the week before -> +2, up, better (more is better)
    deployments = row_of(repo, "deployments")
    assert (deployments["this"], deployments["previous"], deployments["delta"]) == (5, 3, 2)
    assert (deployments["direction"], deployments["better"]) == ("up", True)
    # lead time median: 20.5 - 30.0 = -9.5 h, down, better (shorter is better)
    lead = row_of(repo, "lead_time_hours.median")
    assert (lead["this"], lead["previous"], lead["delta"], lead["better"]) == (20.5, 30.0, -9.5, True)
    # change failure rate: 0.20 - 0.25 = -0.05 = -5.0 percentage points
    cfr = row_of(repo, "change_failure_rate")
    assert cfr["delta"] == pytest.approx(-0.05)
    # unchanged pipeline success rate 0.9 vs 0.9: "same", neither better nor worse
    assert row_of(repo, "pipeline_success_rate")["direction"] == "same"
    assert row_of(repo, "pipeline_success_rate")["better"] is None


def test_markdown_shows_arrows_deltas_and_dashes(digest: dict[str, Any]) -> None:
    text = render_digest(digest, "markdown")
    assert "| Deployments | 5 | 3 | ▲ +2 |" in text
    assert "| Lead time, median | 20.5 h | 30.0 h | ▼ -9.5 h |" in text
    assert "| Change failure rate | 20% | 25% | ▼ -5.0 pp |" in text
    assert "| Pipeline success rate | 90% | 90% | = 0 |" in text
    # no incident count in the scenario: a missing metric is a dash, never 0
    assert "| Incidents | — | — | — |" in text
    # lead-time stages: pickup 3.5 vs 2.0 -> +1.5 h; review has no data either week
    assert "| pickup | 3.5 h | 2.0 h | ▲ +1.5 h |" in text
    assert "| review | — | — | — |" in text
    assert "**DORA levels:** deployment frequency **high** · lead time **elite**" in text
    assert "median 7.5 min, p90 12.0 min over 10 runs; success rate 90%" in text
    assert "40 direct dependencies, 12 outdated, 5 a major version behind (2 more than one), " \
           "8.4 libyears (summed, then rounded to 0.1)." in text
    assert "deployments counted from environments; 75% of 4 merged pull requests" in text
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


def test_trend_keeps_zero_counts_and_leaves_null_medians_out(digest: dict[str, Any]) -> None:
    trend = digest["repos"][0]["trend"]
    assert digest["trend_weeks"][0] == "2026-W36" and digest["trend_weeks"][-1] == "2026-W47"
    assert trend["deployments"] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 3, 5]
    assert trend["lead_time_median_hours"][:5] == [None, 11.0, 12.0, 13.0, None]
    charts = mermaid_blocks(render_digest(digest, "markdown"))
    lead = next(c for c in charts if c["title"] == "Lead time median (hours)")
    # W36, W40, W44 have no median: 12 - 3 = 9 points, and W36 is not on the axis
    assert len(lead["x"]) == 9 and "W36" not in lead["x"]
    assert lead["series"][0][1][-2:] == [30.0, 20.5]


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
    assert deployments["series"] == [("bar", [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 3, 5])]


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
    assert "• Deployments: *5* (▲ +2)" in text
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
