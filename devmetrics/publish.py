"""Post a rendered digest where people read it.

Public interface (the CLI's `devmetrics digest --post TARGET ...` calls this):

    publish(markdown: str, targets: Sequence[str], config: Config,
            digest: Mapping | None = None, *, stdout: str | None = None,
            env: Mapping[str, str] | None = None, out: TextIO | None = None) -> list[str]
        `markdown` is render_digest(digest, "markdown"); `digest` (the dict) lets Slack get
        its own short message; `stdout` is what the `stdout` target prints (default: the
        Markdown; the CLI passes the --format rendering); `env` defaults to os.environ;
        `out` defaults to sys.stdout. Returns one line per target saying where it went.
        Raises ConfigError (exit 2) for a bad target or missing setting, PublishError (exit
        1) when a service refuses; messages never contain a token or a webhook URL.
    split_markdown(markdown: str, limit: int = PART_LIMIT) -> list[str]

Targets: github-issue, github-discussion, step-summary, slack, stdout (TARGETS).
GitHub: the first [[github]] source's api_url and token_env, else GITHUB_API_URL and
GITHUB_TOKEN (as a GitHub Action has them); [digest] token_env overrides the token.
The week's issue or discussion is found again by the hidden marker the Markdown starts
with, so a second run for the same week edits it instead of opening another.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from devmetrics import secrets
from devmetrics.config import Config
from devmetrics.errors import ConfigError, DevmetricsError, forge_message, http_status
from devmetrics.repo_names import github_name_problem

TARGETS = ("github-issue", "github-discussion", "step-summary", "slack", "stdout")
MAX_BODY = 65_536  # GitHub's limit for an issue, comment or discussion body (characters)
PART_LIMIT = MAX_BODY - 1_000  # room for the part marker and the "continued" line
STEP_SUMMARY_LIMIT = 1_048_576  # GitHub refuses a step summary over 1 MiB
SLACK_SECTION_LIMIT = 3_000  # Slack's limit for one section block's text
SLACK_MAX_BLOCKS = 50
WRITE_PAUSE_SECONDS = 1.0  # GitHub asks for a second between content-creating requests
REQUEST_PAUSE_SECONDS = 0.25  # PyGithub's own default, against secondary rate limits
WEEK_MARKER = re.compile(r"<!-- devmetrics-digest week=(\S+) -->")
PART_MARKER = "<!-- devmetrics-digest week={week} part={part} -->"
DEFAULT_API_URL = "https://api.github.com"


class PublishError(DevmetricsError):
    """A target refused the digest (the message names the target, never a secret)."""


def publish(markdown: str, targets: Sequence[str], config: Config,
            digest: Mapping[str, Any] | None = None, *, stdout: str | None = None,
            env: Mapping[str, str] | None = None, out: TextIO | None = None) -> list[str]:
    """Send the digest to every target in order; one line per target says where it went."""
    env = os.environ if env is None else env
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ConfigError(f"--post: unknown target {unknown[0]!r} (one of {', '.join(TARGETS)})")
    posted_url: list[str] = []  # the issue or discussion just posted: the Slack message links to it

    def remember(result: str) -> str:
        found = re.search(r"https?://\S+$", result)
        if found:
            posted_url.append(found.group(0))
        return result

    posters: dict[str, Callable[[], str]] = {
        "github-issue": lambda: remember(post_issue(markdown, config, env, _title(markdown, config, digest))),
        "github-discussion": lambda: remember(post_discussion(markdown, config, env,
                                                              _title(markdown, config, digest))),
        "step-summary": lambda: write_step_summary(markdown, env),
        "slack": lambda: post_slack(slack_message(markdown, digest, posted_url[-1] if posted_url else None),
                                    config, env),
        "stdout": lambda: write_stdout(markdown if stdout is None else stdout, out or sys.stdout),
    }
    return [f"{target}: {posters[target]()}" for target in targets]


def week_of(markdown: str) -> str:
    found = WEEK_MARKER.search(markdown)
    if not found:
        raise ConfigError("publish: the Markdown has no devmetrics-digest marker (use render_digest)")
    return found.group(1)


def _title(markdown: str, config: Config, digest: Mapping[str, Any] | None) -> str:
    if digest and digest.get("title"):
        return str(digest["title"])
    return config.digest.title.format(week=week_of(markdown))


# ----------------------------------------------------------------------- splitting

def split_markdown(markdown: str, limit: int = PART_LIMIT) -> list[str]:
    """Parts of at most `limit` characters, cut only between whole blocks.

    A block is a paragraph, a whole table or a whole fenced code block; parts prefer to
    start at a heading. A single table longer than `limit` becomes several tables, each
    with the header rows repeated, so no part ever holds a truncated table.
    """
    parts: list[str] = []
    current: list[str] = []
    for section in _sections(markdown):
        for block in _fit(section, limit):
            if current and len("\n\n".join([*current, block])) > limit:
                parts.append("\n\n".join(current))
                current = []
            current.append(block)
    if current:
        parts.append("\n\n".join(current))
    return [part.strip("\n") + "\n" for part in parts]


def _blocks(markdown: str) -> Iterator[str]:
    """Blank-line separated blocks; a fenced code block stays whole."""
    block: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if block:
                yield "\n".join(block)
            block = []
            continue
        block.append(line)
    if block:
        yield "\n".join(block)


def _sections(markdown: str) -> Iterator[str]:
    """Groups of blocks, each starting at a heading (a part is best cut before one)."""
    group: list[str] = []
    for block in _blocks(markdown):
        if block.startswith("#") and group:
            yield "\n\n".join(group)
            group = []
        group.append(block)
    if group:
        yield "\n\n".join(group)


def _fit(section: str, limit: int) -> list[str]:
    """The section whole when it fits, else its blocks, oversized tables split by rows."""
    if len(section) <= limit:
        return [section]
    return [piece for block in _blocks(section) for piece in _split_block(block, limit)]


def _split_block(block: str, limit: int) -> list[str]:
    if len(block) <= limit:
        return [block]
    lines = block.splitlines()
    is_table = len(lines) > 2 and lines[0].startswith("|") and set(lines[1]) <= set("|-: ")
    head = lines[:2] if is_table else (lines[:1] if lines[0].startswith("```") else [])
    tail = ["```"] if head and head[0].startswith("```") else []
    body = lines[len(head): len(lines) - len(tail)]
    pieces, chunk = [], list(head)
    for line in body:
        if len("\n".join([*chunk, line, *tail])) > limit and len(chunk) > len(head):
            pieces.append("\n".join([*chunk, *tail]))
            chunk = list(head)
        chunk.append(line[: limit - 100])  # one line longer than a part: nothing else fits
    return [*pieces, "\n".join([*chunk, *tail])]


def numbered_parts(markdown: str, week: str) -> list[str]:
    """The split parts with their hidden markers and a line saying where the rest is."""
    parts = split_markdown(markdown)
    if len(parts) == 1:
        return parts
    first = parts[0] + f"\n_Continued in {len(parts) - 1} more part(s) below._\n"
    rest = [PART_MARKER.format(week=week, part=n) + f"\n\n_Part {n} of {len(parts)}._\n\n" + part
            for n, part in enumerate(parts[1:], start=2)]
    return [first, *rest]


def part_number(body: str, week: str) -> int | None:
    found = re.search(re.escape(PART_MARKER.format(week=week, part="X")).replace("X", r"(\d+)"),
                      body or "")
    return int(found.group(1)) if found else None


# ------------------------------------------------------------------------- GitHub

def github_settings(config: Config, env: Mapping[str, str]) -> tuple[str, str, str]:
    """(api_url, token, repo) for posting; ConfigError names what is missing."""
    source = config.github[0] if config.github else None
    api_url = source.api_url if source else env.get("GITHUB_API_URL") or DEFAULT_API_URL
    token_env = config.digest.token_env or (source.token_env if source else "GITHUB_TOKEN")
    token = env.get(token_env, "")
    repo = config.digest.repo or env.get("GITHUB_REPOSITORY", "")
    if not token:
        raise ConfigError(f"digest: environment variable {token_env} is not set (a token that "
                          "may write issues or discussions)")
    if not repo:
        raise ConfigError("digest.repo: set the owner/name that receives the digest")
    if github_name_problem(repo):  # the name goes into /repos/OWNER/NAME: it must not steer
        raise ConfigError(f"digest.repo: {repo!r} {github_name_problem(repo)}")
    try:
        secrets.check_token(token, f"environment variable {token_env}")
    except ValueError as exc:
        raise ConfigError(f"digest: {exc}") from None
    return api_url.rstrip("/"), token, repo


def github_client(api_url: str, token: str) -> Any:
    from github import Auth, Github

    # lazy: the repository is addressed by name; fetching it first would cost a request.
    return Github(base_url=api_url, auth=Auth.Token(token), timeout=30, lazy=True,
                  seconds_between_requests=REQUEST_PAUSE_SECONDS,
                  seconds_between_writes=WRITE_PAUSE_SECONDS)


def _github_call(what: str, token: str, call: Callable[[], Any]) -> Any:
    """Run a PyGithub call; its failure becomes a one-line PublishError without the token."""
    from github import GithubException

    try:
        return call()
    except GithubException as exc:
        message = forge_message(exc.data.get("message") if isinstance(exc.data, dict) else exc.data)
        answer = http_status(exc.status) + (f": {message}" if message else "")
        raise PublishError(scrub(f"{what}: GitHub answered {answer}", token)) from None
    except OSError as exc:
        raise PublishError(scrub(f"{what}: cannot reach GitHub: {exc}", token)) from None


def scrub(text: str, *values: str) -> str:
    """`text` by the one masking rule (devmetrics/secrets.py), these values included."""
    for value in values:
        secrets.remember(value)
    return secrets.redact(text)


def post_issue(markdown: str, config: Config, env: Mapping[str, str], title: str) -> str:
    """Create the week's issue, or edit it when it exists; extra parts become comments."""
    api_url, token, repo_name = github_settings(config, env)
    week = week_of(markdown)
    parts = numbered_parts(markdown, week)
    repo = github_client(api_url, token).get_repo(repo_name)
    labels = list(config.digest.labels)

    def run() -> str:
        issue = find_issue(repo, labels, WEEK_MARKER.pattern.replace(r"(\S+)", week))
        if issue is None:
            issue = repo.create_issue(title=title, body=parts[0], labels=labels)
        else:
            issue.edit(title=title, body=parts[0], labels=labels)
        sync_issue_comments(issue, parts[1:], week)
        return f"{repo_name}#{issue.number} {issue.html_url}"

    return str(_github_call("github-issue", token, run))


def find_issue(repo: Any, labels: list[str], marker: str) -> Any:
    """The issue whose body holds `marker` (newest first; pull requests are skipped)."""
    listing = repo.get_issues(state="all", labels=labels) if labels else repo.get_issues(state="all")
    for index, issue in enumerate(listing):
        if index >= 500:  # years of weekly digests; an older one is not this week's
            break
        if issue.pull_request is None and marker in (issue.body or ""):
            return issue
    return None


def sync_issue_comments(issue: Any, parts: Sequence[str], week: str) -> None:
    """Edit the part comments in place, add missing ones, delete those no longer needed."""
    existing = {part_number(c.body, week): c for c in issue.get_comments()
                if part_number(c.body, week) is not None}
    for number, body in enumerate(parts, start=2):
        comment = existing.pop(number, None)
        if comment is None:
            issue.create_comment(body)
        elif comment.body != body:
            comment.edit(body)
    for comment in existing.values():
        comment.delete()


# --------------------------------------------------------------------- discussions

FIND_DISCUSSION = """
query($owner: String!, $name: String!) {
  repository(owner: $owner, name: $name) {
    id
    discussionCategories(first: 100) { nodes { id name } }
    discussions(first: 100, orderBy: {field: CREATED_AT, direction: DESC}) {
      nodes { id url body comments(first: 100) { nodes { id body } } }
    }
  }
}"""
CREATE_DISCUSSION = """
mutation($input: CreateDiscussionInput!) {
  createDiscussion(input: $input) { discussion { id url } }
}"""
UPDATE_DISCUSSION = """
mutation($input: UpdateDiscussionInput!) {
  updateDiscussion(input: $input) { discussion { id url } }
}"""
ADD_DISCUSSION_COMMENT = """
mutation($input: AddDiscussionCommentInput!) {
  addDiscussionComment(input: $input) { comment { id } }
}"""
UPDATE_DISCUSSION_COMMENT = """
mutation($input: UpdateDiscussionCommentInput!) {
  updateDiscussionComment(input: $input) { comment { id } }
}"""
DELETE_DISCUSSION_COMMENT = """
mutation($input: DeleteDiscussionCommentInput!) {
  deleteDiscussionComment(input: $input) { comment { id } }
}"""
GRAPHQL_DOCUMENTS = (FIND_DISCUSSION, CREATE_DISCUSSION, UPDATE_DISCUSSION,
                     ADD_DISCUSSION_COMMENT, UPDATE_DISCUSSION_COMMENT, DELETE_DISCUSSION_COMMENT)


def post_discussion(markdown: str, config: Config, env: Mapping[str, str], title: str) -> str:
    """Create the week's discussion in the configured category, or edit it."""
    api_url, token, repo_name = github_settings(config, env)
    week = week_of(markdown)
    parts = numbered_parts(markdown, week)
    requester = github_client(api_url, token).requester
    owner, name = repo_name.split("/", 1)

    def query(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        return dict(requester.graphql_query(document, variables)[1]["data"])

    def run() -> str:
        repo = query(FIND_DISCUSSION, {"owner": owner, "name": name})["repository"]
        marker = WEEK_MARKER.pattern.replace(r"(\S+)", week)
        found = next((d for d in repo["discussions"]["nodes"] if marker in (d["body"] or "")), None)
        if found is None:
            data = {"repositoryId": repo["id"], "title": title, "body": parts[0],
                    "categoryId": category_id(repo, config.digest.discussion_category)}
            found = query(CREATE_DISCUSSION, {"input": data})["createDiscussion"]["discussion"]
            found["comments"] = {"nodes": []}
        else:
            query(UPDATE_DISCUSSION, {"input": {"discussionId": found["id"], "title": title,
                                                "body": parts[0]}})
        sync_discussion_comments(query, found, parts[1:], week)
        return str(found["url"])

    return str(_github_call("github-discussion", token, run))


def category_id(repo: Mapping[str, Any], wanted: str) -> str:
    for category in repo["discussionCategories"]["nodes"]:
        if category["name"].lower() == wanted.lower():
            return str(category["id"])
    names = ", ".join(c["name"] for c in repo["discussionCategories"]["nodes"]) or "none"
    raise ConfigError(f"digest.discussion_category: no category {wanted!r} (there are: {names})")


def sync_discussion_comments(query: Callable[[str, dict[str, Any]], dict[str, Any]],
                             discussion: Mapping[str, Any], parts: Sequence[str], week: str) -> None:
    existing = {part_number(c["body"], week): c for c in discussion["comments"]["nodes"]
                if part_number(c["body"], week) is not None}
    for number, body in enumerate(parts, start=2):
        comment = existing.pop(number, None)
        if comment is None:
            query(ADD_DISCUSSION_COMMENT, {"input": {"discussionId": discussion["id"], "body": body}})
        elif comment["body"] != body:
            query(UPDATE_DISCUSSION_COMMENT, {"input": {"commentId": comment["id"], "body": body}})
    for comment in existing.values():
        query(DELETE_DISCUSSION_COMMENT, {"input": {"id": comment["id"]}})


# ------------------------------------------------------------ files and webhooks

def write_step_summary(markdown: str, env: Mapping[str, str]) -> str:
    """Append to the job summary file GitHub Actions names in $GITHUB_STEP_SUMMARY."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        raise ConfigError("step-summary: GITHUB_STEP_SUMMARY is not set (it is, inside GitHub Actions)")
    if len(markdown.encode()) > STEP_SUMMARY_LIMIT:  # keep whole blocks; say what is left out
        markdown = split_markdown(markdown, STEP_SUMMARY_LIMIT // 4)[0] + (
            "\n_The digest is longer than a job summary may be; the whole digest is in the "
            "action's digest-path output._\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


def write_stdout(markdown: str, out: TextIO) -> str:
    out.write(markdown if markdown.endswith("\n") else markdown + "\n")
    out.flush()
    return "written"


def slack_message(markdown: str, digest: Mapping[str, Any] | None, posted_url: str | None = None) -> str:
    """Slack mrkdwn: the digest's own short form (linking to the issue just posted), else the
    Markdown without charts."""
    if digest is not None:
        from devmetrics.digest import render_digest

        return render_digest({**digest, "posted_url": posted_url} if posted_url else digest, "slack")
    text = re.sub(r"```mermaid.*?```\n*", "", markdown, flags=re.DOTALL)
    text = re.sub(r"<!--.*?-->\n*", "", text, flags=re.DOTALL)
    return re.sub(r"^#+ (.*)$", r"*\1*", text, flags=re.MULTILINE).strip()


# A Slack link or mention (`<url|label>`, `<!here>`) and a run of non-space characters (an
# emoji, a multi-byte sequence, a word) are never cut: a long line breaks only at spaces between them.
_SLACK_PIECE = re.compile(r"<[^<>\n]*>|[^\s<]+|\s+|<")


def slack_lines(text: str, limit: int = SLACK_SECTION_LIMIT) -> list[str]:
    """The lines of `text`, a line longer than `limit` broken at spaces outside links."""
    found: list[str] = []
    for line in text.splitlines():
        current = ""
        for piece in _SLACK_PIECE.findall(line):
            if len(current) + len(piece) > limit and current.strip():
                found.append(current.rstrip())
                current = piece.lstrip()
            else:
                current += piece
            if len(current) > limit:  # one piece longer than a block: a link keeps only its label
                current = _fit_piece(current, limit)
        found.append(current.rstrip())
    return found


def _fit_piece(piece: str, limit: int) -> str:
    label = piece[1:-1].split("|", 1)[-1] if piece.startswith("<") and piece.endswith(">") else piece
    return label if len(label) <= limit else label[: limit - 1] + "…"


def slack_payload(text: str) -> dict[str, Any]:
    """`text` (the notification fallback) plus mrkdwn section blocks within Slack's limits.

    Blocks are split on line boundaries (a line longer than a block at a space outside a
    link), so no `<url|label>` link, emoji or multi-byte character is ever cut in two.
    """
    chunks: list[str] = []
    for line in slack_lines(text):
        if chunks and len(chunks[-1]) + len(line) + 1 <= SLACK_SECTION_LIMIT:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
              for chunk in chunks[:SLACK_MAX_BLOCKS] if chunk.strip()]
    return {"text": text.splitlines()[0] if text else "devmetrics digest", "blocks": blocks}


def post_slack(text: str, config: Config, env: Mapping[str, str]) -> str:
    """POST to the incoming webhook whose URL is in the configured environment variable."""
    variable = config.digest.slack_webhook_env
    url = env.get(variable, "")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"digest.slack_webhook_env: environment variable {variable} holds no "
                          "webhook URL")
    data = json.dumps(slack_payload(text)).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) only
            response.read()
    except urllib.error.HTTPError as exc:  # the URL is the secret: never show it
        raise PublishError(f"slack: the webhook in {variable} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = scrub(str(getattr(exc, "reason", exc)), url)
        raise PublishError(f"slack: cannot reach the webhook in {variable}: {reason}") from None
    return f"posted to the webhook in {variable}"
