"""Posting the digest: sandbox GitHub issue and discussion, step summary, Slack, splitting."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from devmetrics import publish as publish_module
from devmetrics.config import Config, parse_config
from devmetrics.digest import assemble_digest, render_digest
from devmetrics.errors import ConfigError
from devmetrics.publish import (
    GRAPHQL_DOCUMENTS,
    MAX_BODY,
    PublishError,
    publish,
    slack_payload,
    split_markdown,
)
from devmetrics.sandbox.dataset import build_dataset
from devmetrics.sandbox.github import GitHubApp
from devmetrics.sandbox.github_posts import FakeSlack, Posts, add_post_routes
from devmetrics.sandbox.server import Sandbox, serving

TOKEN = "ghp_SECRETtoken0123456789"
WEEK = date(2026, 11, 16)


@pytest.fixture(autouse=True)
def no_write_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_module, "WRITE_PAUSE_SECONDS", 0)
    monkeypatch.setattr(publish_module, "REQUEST_PAUSE_SECONDS", 0)


@pytest.fixture(scope="module")
def github() -> Iterator[tuple[Sandbox, Posts]]:
    """The sandbox GitHub (read-only dataset app) with the digest's write routes added."""
    app = GitHubApp(build_dataset(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC)))
    posts = add_post_routes(app)
    with serving([("/github", app)]) as sandbox:
        yield sandbox, posts


def config_for(sandbox: Sandbox, repo: str, **digest: Any) -> Config:
    return parse_config({
        "github": [{"api_url": sandbox.url + "/github", "token_env": "DM_TOKEN", "repos": [repo]}],
        "digest": {"repo": repo, "labels": ["devmetrics", "metrics"], **digest},
    })


def digest_dict(title: str = "Deploys") -> dict[str, Any]:
    row = {"repo": "acme/api", "deployments": 5, "lead_time_hours": {"median": 20.5, "n": 3}}
    weeks = [{"timezone": "UTC", "repos": [row], "all": {**row, "repo": "all"}}] * 12
    incident = {"repo": "acme/api", "title": title, "url": "https://github.com/acme/api/issues/1",
                "created_at": "2026-11-17T10:00:00+00:00", "restore_hours": None}
    return assemble_digest(WEEK, weeks, [incident])


def huge_markdown() -> str:
    """A digest over 65,536 characters: 40 repos, each with a 60-row incident table."""
    blocks = ["<!-- devmetrics-digest week=2026-W47 -->", "# Engineering metrics 2026-W47"]
    for n in range(40):
        rows = "\n".join(f"| incident {n}-{i} | {'x' * 20} | 3.5 h |" for i in range(60))
        blocks += [f"## acme/repo-{n}", f"| Incident | Detail | Restore |\n|---|---|---:|\n{rows}"]
    return "\n\n".join(blocks) + "\n"


# ----------------------------------------------------------------------------- splitting

def tables_in(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.split("\n\n") if block.startswith("|")]


def test_a_digest_over_the_limit_is_split_without_cutting_a_table() -> None:
    markdown = huge_markdown()
    assert len(markdown) > MAX_BODY
    parts = split_markdown(markdown)
    assert len(parts) >= 2
    assert all(len(part) < MAX_BODY for part in parts)
    for part in parts:
        for table in tables_in(part):
            # every table is whole: header, separator and all 60 rows of one repo
            assert table[0] == "| Incident | Detail | Restore |" and table[1] == "|---|---|---:|"
            assert len(table) == 62
    # nothing lost, nothing repeated: the rows of all parts are the rows of the digest
    rows = [ln for part in parts for ln in part.splitlines() if ln.startswith("| incident")]
    assert rows == [ln for ln in markdown.splitlines() if ln.startswith("| incident")]


def test_one_table_larger_than_a_part_becomes_several_whole_tables() -> None:
    rows = "\n".join(f"| row {i} | {'y' * 50} |" for i in range(3000))
    markdown = f"# Title\n\n| Name | Value |\n|---|---|\n{rows}\n"
    parts = split_markdown(markdown, limit=20_000)
    assert len(parts) > 5 and all(len(p) <= 20_000 for p in parts)
    for part in parts:
        for table in tables_in(part):
            assert table[:2] == ["| Name | Value |", "|---|---|"]
            assert all(re.fullmatch(r"\| row \d+ \| y{50} \|", line) for line in table[2:])


def test_a_rendered_digest_of_many_repos_splits_into_whole_sections_and_charts() -> None:
    from tests.test_digest import mermaid_blocks

    rows = [{"repo": f"acme/service-{n:02d}", "deployments": n, "lead_time_hours": {"median": 5.0}}
            for n in range(60)]
    weeks = [{"timezone": "UTC", "repos": rows, "all": {"repo": "all", "deployments": 1}}] * 12
    # every repo in detail (no overview): a digest longer than one issue body
    markdown = render_digest(assemble_digest(WEEK, weeks, []) | {"detail_repos": 60}, "markdown")
    assert len(markdown) > MAX_BODY
    parts = split_markdown(markdown)
    assert len(parts) >= 2 and all(len(p) < MAX_BODY for p in parts)
    charts = [chart for part in parts for chart in mermaid_blocks(part)]  # each one parses
    # per repo: deployments, PRs merged, lead time (no pipeline data: a note, no chart) = 3;
    # the aggregate has deployments and PRs merged only: 60 * 3 + 2 = 182 charts in all
    assert len(charts) == len(mermaid_blocks(markdown)) == 182
    for part in parts:
        for table in tables_in(part):
            # outcomes (6 rows), leading indicators (4) or the stages (4), each with 2 header lines
            assert len(table) in (8, 6)


def test_an_oversized_step_summary_keeps_whole_blocks(tmp_path: Any) -> None:
    summary = tmp_path / "summary.md"
    publish("\n".join([huge_markdown()] * 20), ["step-summary"], Config(), env={"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert len(text.encode()) < publish_module.STEP_SUMMARY_LIMIT
    assert text.endswith("the whole digest is in the action's digest-path output._\n")
    assert all(len(table) == 62 for table in tables_in(text))


def test_a_small_digest_is_one_part() -> None:
    markdown = render_digest(digest_dict(), "markdown")
    assert split_markdown(markdown) == [markdown]


# -------------------------------------------------------------------------- github-issue

def test_github_issue_is_created_then_edited_never_duplicated(
        github: tuple[Sandbox, Posts], monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, posts = github
    config = config_for(sandbox, "acme/api")
    env = {"DM_TOKEN": TOKEN}
    first = publish(render_digest(digest_dict("first"), "markdown"), ["github-issue"], config,
                    env=env)
    second = publish(render_digest(digest_dict("second"), "markdown"), ["github-issue"], config,
                     env=env)
    ours = [i for i in posts.issues["acme/api"] if "week=2026-W47" in i["body"]]
    assert len(ours) == 1, "the second run edits the week's issue"
    issue = ours[0]
    assert first == second == [f"github-issue: acme/api#{issue['number']} {issue_url(issue)}"]
    assert issue["title"] == "Engineering metrics 2026-W47"
    assert issue["labels"] == ["devmetrics", "metrics"]
    assert "[second](https://github.com/acme/api/issues/1)" in issue["body"]
    assert issue["comment_ids"] == []  # small: no continuation comments


def issue_url(issue: dict[str, Any]) -> str:
    return f"https://github.sandbox/acme/api/issues/{issue['number']}"


def test_a_huge_digest_goes_to_the_issue_and_its_comments_edited_in_place(
        github: tuple[Sandbox, Posts]) -> None:
    sandbox, posts = github
    config = config_for(sandbox, "acme/web")
    for _ in range(2):
        publish(huge_markdown(), ["github-issue"], config, env={"DM_TOKEN": TOKEN})
    [issue] = posts.issues["acme/web"]
    comments = [posts.comments[c]["body"] for c in issue["comment_ids"] if c in posts.comments]
    assert len(issue["body"]) < MAX_BODY and all(len(c) < MAX_BODY for c in comments)
    assert len(comments) == len(split_markdown(huge_markdown())) - 1
    assert "Continued in" in issue["body"]
    assert comments[0].startswith("<!-- devmetrics-digest week=2026-W47 part=2 -->")


def test_another_week_opens_another_issue(github: tuple[Sandbox, Posts]) -> None:
    sandbox, posts = github
    config = config_for(sandbox, "acme/legacy")
    for week in ("2026-W46", "2026-W47"):
        markdown = f"<!-- devmetrics-digest week={week} -->\n\n# Digest {week}\n"
        publish(markdown, ["github-issue"], config, env={"DM_TOKEN": TOKEN})
    assert sorted(i["title"] for i in posts.issues["acme/legacy"]) == [
        "Engineering metrics 2026-W46", "Engineering metrics 2026-W47"]


def test_errors_never_show_the_token(github: tuple[Sandbox, Posts]) -> None:
    sandbox, _ = github
    sandbox.faults.add(path="/issues", status=422, times=None,
                       body={"message": f"boom {TOKEN}"})
    try:
        with pytest.raises(PublishError) as caught:
            publish(render_digest(digest_dict(), "markdown"), ["github-issue"],
                    config_for(sandbox, "acme/api"), env={"DM_TOKEN": TOKEN})
    finally:
        sandbox.faults.clear()
    assert TOKEN not in str(caught.value)
    assert "github-issue: GitHub answered 422 Unprocessable Entity: boom ***" in str(caught.value)


def test_missing_token_or_repo_is_a_config_error(github: tuple[Sandbox, Posts]) -> None:
    sandbox, _ = github
    with pytest.raises(ConfigError, match="DM_TOKEN is not set"):
        publish(render_digest(digest_dict(), "markdown"), ["github-issue"],
                config_for(sandbox, "acme/api"), env={})
    with pytest.raises(ConfigError, match="unknown target 'email'"):
        publish("x", ["email"], config_for(sandbox, "acme/api"), env={})


def test_action_environment_gives_api_url_token_and_repo(github: tuple[Sandbox, Posts]) -> None:
    sandbox, posts = github
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": sandbox.url + "/github",
           "GITHUB_REPOSITORY": "acme/forked-lib"}
    result = publish(render_digest(digest_dict(), "markdown"), ["github-issue"], Config(), env=env)
    assert result[0].startswith("github-issue: acme/forked-lib#")
    assert posts.issues["acme/forked-lib"][0]["labels"] == ["devmetrics"]


# --------------------------------------------------------------------- github-discussion

def test_discussion_is_created_in_the_category_then_edited(github: tuple[Sandbox, Posts]) -> None:
    sandbox, posts = github
    config = config_for(sandbox, "acme/api", discussion_category="announcements")
    for title in ("first", "second"):
        publish(render_digest(digest_dict(title), "markdown"), ["github-discussion"], config,
                env={"DM_TOKEN": TOKEN})
    [discussion] = posts.discussions["acme/api"]
    assert discussion["category"]["name"] == "Announcements"
    assert "[second](" in discussion["body"]


def test_discussion_parts_become_comments(github: tuple[Sandbox, Posts]) -> None:
    sandbox, posts = github
    publish(huge_markdown(), ["github-discussion"], config_for(sandbox, "acme/web"),
            env={"DM_TOKEN": TOKEN})
    [discussion] = posts.discussions["acme/web"]
    assert len(discussion["comment_ids"]) == len(split_markdown(huge_markdown())) - 1


def test_unknown_discussion_category_names_the_ones_there(github: tuple[Sandbox, Posts]) -> None:
    sandbox, _ = github
    with pytest.raises(ConfigError, match="no category 'Weekly'.*General, Announcements"):
        publish(render_digest(digest_dict(), "markdown"), ["github-discussion"],
                config_for(sandbox, "acme/legacy", discussion_category="Weekly"),
                env={"DM_TOKEN": TOKEN})


def test_discussion_queries_are_valid_against_githubs_schema() -> None:
    from devmetrics.sandbox.github_graphql import validation_errors

    for document in GRAPHQL_DOCUMENTS:
        assert validation_errors(document) == [], document


# ------------------------------------------------------------- step summary, stdout, slack

def test_step_summary_is_appended(tmp_path: Any) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    markdown = render_digest(digest_dict(), "markdown")
    result = publish(markdown, ["step-summary"], Config(), env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result == [f"step-summary: {summary}"]
    assert summary.read_text() == "earlier step\n" + markdown
    with pytest.raises(ConfigError, match="GITHUB_STEP_SUMMARY is not set"):
        publish(markdown, ["step-summary"], Config(), env={})


def test_stdout_prints_the_text_it_is_given() -> None:
    out = io.StringIO()
    markdown = "<!-- devmetrics-digest week=2026-W47 -->\n"
    assert publish(markdown, ["stdout"], Config(), env={}, out=out) == ["stdout: written"]
    assert publish(markdown, ["stdout"], Config(), stdout='{"week": 1}', env={}, out=out) \
        == ["stdout: written"]
    assert out.getvalue() == markdown + '{"week": 1}\n'
    assert publish(markdown, [], Config(), env={}, out=out) == []  # no targets: nothing posted


def test_slack_post_reaches_the_webhook_with_blocks_in_mrkdwn() -> None:
    slack = FakeSlack()
    digest = digest_dict("@here <!channel> outage #12")
    with serving([("/hooks", slack)]) as sandbox:
        url = f"{sandbox.url}/hooks/services/T000/B000/XXXX"
        result = publish(render_digest(digest, "markdown"), ["slack"], Config(),
                         digest=digest, env={"SLACK_WEBHOOK_URL": url})
    assert result == ["slack: posted to the webhook in SLACK_WEBHOOK_URL"]
    [post] = slack.posts
    assert post["path"] == "services/T000/B000/XXXX"
    assert post["content_type"] == "application/json"
    payload = post["json"]
    assert payload["text"] == "*Engineering metrics 2026-W47* (vs 2026-W46)"
    [block] = payload["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert "• Deployments: *5* (⚪ flat)" in block["text"]["text"]
    assert "<!channel>" not in block["text"]["text"] and "@here" not in block["text"]["text"]


def test_slack_failure_never_shows_the_webhook_url() -> None:
    slack = FakeSlack()
    with serving([("/hooks", slack)]) as sandbox:
        url = f"{sandbox.url}/hooks/secret-path"
        sandbox.faults.add(path="/hooks", status=404)
        with pytest.raises(PublishError) as caught:
            publish("<!-- devmetrics-digest week=2026-W47 -->\n# x\n", ["slack"], Config(),
                    env={"SLACK_WEBHOOK_URL": url})
    assert "secret-path" not in str(caught.value) and "HTTP 404" in str(caught.value)


def test_slack_payload_respects_block_limits() -> None:
    text = "\n".join(f"line {i} " + "z" * 90 for i in range(400))
    payload = slack_payload(text)
    assert len(payload["blocks"]) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in payload["blocks"])
