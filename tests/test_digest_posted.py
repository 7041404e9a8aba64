"""The digest as posted: snapshots of a quiet, a bad, a revised week and 200 repos; the
Markdown through a CommonMark parser (markdown-it-py); Slack blocks within Block Kit limits."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from markdown_it import MarkdownIt

from devmetrics.digest import assemble_digest, render_digest
from devmetrics.publish import MAX_BODY, SLACK_MAX_BLOCKS, slack_message, slack_payload, split_markdown
from tests.snapshot import assert_snapshot
from tests.test_digest import INCIDENT, SAMPLES, mermaid_blocks, metrics, report, scenario

WEEK = date(2026, 11, 16)
LONG_TITLE = "Checkout fails for every customer paying with a saved card after the 2026-11 gateway migration"


def quiet_week() -> dict[str, Any]:
    """Two calm weeks: the same 12 deployments, lead times interleaved: nothing to flag."""
    values = {"deployments": 12, "change_failure_rate": (0, 12), "pipeline_success_rate": (19, 20),
              "lead_time_hours.median": [5, 7, 9, 11, 13, 15], "cycle_time_hours.median": [4, 6, 8, 10, 12],
              "pipeline_duration_minutes.median": [6, 7, 8, 9, 10], "time_to_restore_hours.median": []}
    before = {**values, "lead_time_hours.median": [6, 8, 10, 12, 14, 16]}
    row = metrics(12, 10.0, lead_time_hours={"median": 10.0, "p90": 14.0, "n": 6}, change_failure_rate=0.0,
                  cycle_time_hours={"median": 8.0, "p90": 11.0, "n": 5}, pull_requests_merged=6,
                  pipeline_duration_minutes={"median": 8.0, "p90": 9.6, "n": 20}, pipeline_success_rate=0.95,
                  incidents=0)
    previous = {**row, "lead_time_hours": {"median": 11.0, "p90": 15.0, "n": 6}}
    weeks = [report(row)] * 10 + [report(previous), report(row)]
    samples = {"this": {"acme/api": values, "all": values}, "previous": {"acme/api": before, "all": before}}
    return assemble_digest(WEEK, weeks, [], samples=samples)


def bad_week() -> dict[str, Any]:
    """The scenario with a slow pipeline, a long-titled incident and the drivers behind it."""
    incident = {**INCIDENT, "title": LONG_TITLE, "restore_hours": None, "resolved_at": None}
    drivers = {"workflows": [{"workflow": "CI", "median_minutes": 14.0, "runs": 5, "success_rate": 0.8}]}
    return assemble_digest(WEEK, scenario(), [incident], samples=SAMPLES,
                           drivers={"acme/api": drivers, "all": drivers})


def revised_week() -> dict[str, Any]:
    revision = {"week": "2026-W46", "key": "lead_time_hours.median", "label": "Lead time, median",
                "unit": "hours", "posted": 24.0, "now": 30.0}
    return assemble_digest(WEEK, scenario(), [], samples=SAMPLES,
                           revisions={"acme/api": [revision], "all": [revision]})


def many_repos(count: int = 200) -> dict[str, Any]:
    """`count` repos; every 7th has twice the lead time it had (worse), every 5th twice the deployments."""
    this, previous, samples_this, samples_previous = [], [], {}, {}
    for n in range(count):
        name = f"acme/service-{n:03d}"
        slow, busy = n % 7 == 0, n % 5 == 0
        lead_now = [20.0 + i for i in range(8)] if slow else [10.0 + i for i in range(8)]
        lead_before = [10.0 + i for i in range(8)]
        # 30 against 10: exact binomial, 30 of 40 at 1/2, p = 0.0022 -> better
        deploys_now, deploys_before = (30 if busy else 10), 10
        this.append({**metrics(deploys_now, lead_now[3] + 0.5), "repo": name,
                     "lead_time_hours": {"median": lead_now[3] + 0.5, "p90": lead_now[7], "n": 8}})
        previous.append({**metrics(deploys_before, 13.5), "repo": name,
                         "lead_time_hours": {"median": 13.5, "p90": 17.0, "n": 8}})
        samples_this[name] = {"deployments": deploys_now, "lead_time_hours.median": lead_now}
        samples_previous[name] = {"deployments": deploys_before, "lead_time_hours.median": lead_before}
    all_now = {**metrics(sum(r["deployments"] for r in this), 14.0), "repo": "all"}
    weeks = [{"timezone": "UTC", "repos": previous, "all": all_now}] * 11 + [
        {"timezone": "UTC", "repos": this, "all": all_now}]
    return assemble_digest(WEEK, weeks, [], samples={"this": samples_this, "previous": samples_previous}) | {
        "dashboard_url": "https://metrics.example.com/dashboard/2026-W47"}


def parse_commonmark(text: str) -> list[Any]:
    """CommonMark with GitHub's tables; no HTML may come out of the forge's text."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert not [t for t in tokens if t.type == "html_inline"], "inline HTML in the digest"
    inline_html = [c for t in tokens for c in (t.children or []) if c.type == "html_inline"]
    assert not inline_html, inline_html
    blocks = [t for t in tokens if t.type == "html_block"]
    assert [t.content.strip() for t in blocks] == [text.splitlines()[0]], "only the week marker is HTML"
    return tokens


def tables(tokens: list[Any]) -> int:
    return sum(t.type == "table_open" for t in tokens)


# ------------------------------------------------------------------------------ snapshots

def test_quiet_week_snapshot() -> None:
    digest = quiet_week()
    assert not {row["verdict"] for row in digest["repos"][0]["comparison"]} & {"better", "worse"}
    text = render_digest(digest, "markdown")
    parse_commonmark(text)
    assert_snapshot("digest-quiet-week.md", text)
    assert_snapshot("digest-quiet-week.slack.txt", render_digest(digest, "slack"))


def test_bad_week_snapshot() -> None:
    text = render_digest(bad_week(), "markdown")
    tokens = parse_commonmark(text)
    # per section: outcomes, leading indicators, stages = 3 tables; two sections
    assert tables(tokens) == 6
    assert "🔴 worse" in text and "**Why pipeline duration, median worsened**" in text
    # the incident title is shortened to 80 characters at a word, with an ellipsis
    assert "Checkout fails for every customer paying with a saved card after the 2026-11…" in text
    assert LONG_TITLE not in text
    assert_snapshot("digest-bad-week.md", text)
    assert_snapshot("digest-bad-week.slack.txt", render_digest(bad_week(), "slack"))


def test_revised_week_snapshot() -> None:
    text = render_digest(revised_week(), "markdown")
    parse_commonmark(text)
    assert "**Revised since posted:** lead time, median of 2026-W46 24.0 h → 30.0 h." in text
    assert_snapshot("digest-revised-week.md", text)


def test_200_repos_fit_one_issue_with_an_overview_first() -> None:
    digest = many_repos()
    text = render_digest(digest, "markdown")
    assert len(text) < MAX_BODY and split_markdown(text) == [text]  # one GitHub issue body
    tokens = parse_commonmark(text)
    # the overview, then all repositories and 5 repos in detail (3 tables each)
    assert tables(tokens) == 1 + 3 * 6
    overview = text.split("## Overview", 1)[1].split("\n\n")[1].splitlines()
    assert len(overview) == 2 + 200
    # needs attention first: the slow repos (0, 7, 14, ...; 0, 35, 70, ... are busy too, so 🟢 as well)
    assert overview[2].startswith("| acme/service-000 | 🔴 1 · 🟢 1 |")
    first_detail = re.findall(r"^## (acme/service-\d+)$", text, flags=re.MULTILINE)
    assert first_detail == ["acme/service-000", "acme/service-035", "acme/service-070",
                            "acme/service-105", "acme/service-140"]
    assert "[Every repository and figure on the dashboard](https://metrics.example.com/dashboard/2026-W47)" in text
    # "not evaluated" once for all repos, not 200 times
    assert text.count("not evaluated") == 1
    for chart in mermaid_blocks(text):
        assert len(chart["x"]) == 12
    assert_snapshot("digest-200-repos.md", text)


# ---------------------------------------------------------------------------------- slack

def check_block_kit(payload: dict[str, Any]) -> None:
    """Block Kit limits: at most 50 blocks, a section's mrkdwn text 1..3,000 characters."""
    assert isinstance(payload["text"], str) and payload["text"]
    assert 1 <= len(payload["blocks"]) <= SLACK_MAX_BLOCKS
    for block in payload["blocks"]:
        assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
        assert 1 <= len(block["text"]["text"]) <= 3000
        # every link is whole: as many `<` as `>`, none dangling at an edge
        text = block["text"]["text"]
        assert text.count("<") == text.count(">"), text[-80:]
        assert re.fullmatch(r"([^<>]|<[^<>]*>)*", text, flags=re.DOTALL)


def test_slack_blocks_never_cut_a_link_an_emoji_or_a_character() -> None:
    link = "<https://github.com/acme/api/pull/{n}|Fix the flaky checkout test 🟢 número {n}>"
    long_line = " ".join(link.format(n=n) for n in range(120))  # one line of ~9,000 characters
    text = "*Digest*\n" + long_line + "\n" + "é🟢 " * 1400 + "\nlast line"
    payload = slack_payload(text)
    check_block_kit(payload)
    joined = " ".join(b["text"]["text"] for b in payload["blocks"])
    assert all(link.format(n=n) in joined for n in range(120))  # no link lost or cut
    assert joined.split() == text.split()  # cut only at spaces: every word, emoji and character whole


def test_a_link_longer_than_a_block_keeps_its_label() -> None:
    giant = "<https://example.com/" + "a" * 3100 + "|the report>"
    payload = slack_payload("head\n" + giant)
    check_block_kit(payload)
    assert payload["blocks"][-1]["text"]["text"].endswith("the report")


def test_slack_message_links_to_the_posted_issue_and_the_dashboard() -> None:
    digest = many_repos(20)
    text = slack_message("", digest, "https://github.com/acme/eng/issues/42")
    assert text.splitlines()[1] == ("<https://github.com/acme/eng/issues/42|The whole digest> · "
                                    "<https://metrics.example.com/dashboard/2026-W47|the dashboard>")
    check_block_kit(slack_payload(text))
