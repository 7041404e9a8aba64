"""The sandbox's GitHub REST v3 routes: repositories, pulls, deployments, runs, releases,
issues, compare, trees, contents, rate limit and GitHub App installation tokens.

Lists come newest first where GitHub's do, filters are applied as GitHub applies them
(including the 1,000-result cap on filtered workflow runs), and pages carry Link headers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from devmetrics.sandbox.dataset import (
    Commit,
    Deployment,
    DeploymentStatus,
    Issue,
    PullRequest,
    Release,
    Repo,
    Review,
    WorkflowRun,
)
from devmetrics.sandbox.github_graphql import iso
from devmetrics.sandbox.server import PageStyle, Request, Response, paginate

if TYPE_CHECKING:
    from devmetrics.sandbox.github import GitHubApp

Handler = Callable[..., Response | Any]
REPO = "/repos/{owner}/{repo}"
RUNS_CAP = 1000  # GitHub returns at most 1,000 workflow runs for a filtered listing
_RUN_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")


@cache
def templates() -> dict[str, Any]:
    """GitHub's REST examples, one item per endpoint (see the file's _note)."""
    text = resources.files("devmetrics.sandbox").joinpath("data/github-templates.json")
    return json.loads(text.read_text(encoding="utf-8"))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def created_filter(value: str | None) -> tuple[datetime | None, datetime | None]:
    """GitHub's date-range syntax as `created=` takes it: A..B, >=A, <=B, >A, <B, A (a day)."""
    if not value:
        return None, None
    if ".." in value:
        low, high = value.split("..", 1)
        return _bound_time(low), _bound_time(high)
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            at = parse_time(value[len(op):])
            return (at, None) if op.startswith(">") else (None, at)
    day = parse_time(value if "T" in value else value + "T00:00:00Z")
    return day, day + timedelta(days=1) - timedelta(seconds=1)


def _bound_time(text: str) -> datetime | None:
    return None if text in ("", "*") else parse_time(text)


def register(app: GitHubApp) -> None:
    """Mount every REST route on `app`."""
    for method, template, handler in _ROUTES:
        app.route(method, template)(_bound(app, handler))


def _bound(app: GitHubApp, handler: Callable[..., Any]) -> Handler:
    """Give a handler the app, and for /repos/{owner}/{repo}/... routes the dataset repo."""
    def call(request: Request, **params: str) -> Any:
        if "owner" in params and "repo" in params:
            repo = app.repo_or_404(params.pop("owner"), params.pop("repo"))
            if isinstance(repo, Response):
                return repo
            return handler(app, request, repo, **params)
        return handler(app, request, **params)
    return call


def _missing() -> Response:
    return Response(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})


# ------------------------------------------------------------------------ repositories

def repository(app: GitHubApp, request: Request, repo: Repo) -> dict[str, Any]:
    body = app.template("repository", request, repo.full_name)
    body.update(id=repo.id, name=repo.name, full_name=repo.full_name, archived=repo.archived,
                fork=repo.fork, default_branch=repo.default_branch, private=False,
                owner=app.user(request, repo.owner), created_at=iso(repo.created_at),
                pushed_at=iso(repo.main_line[-1].authored_at), updated_at=iso(repo.main_line[-1].authored_at))
    return body


def _nested_repo(app: GitHubApp, request: Request, repo: Repo, example: dict[str, Any]) -> dict[str, Any]:
    """A repository object inside another payload (a run's, a PR head's), renamed to `repo`."""
    return dict(example, id=repo.id, name=repo.name, full_name=repo.full_name, fork=repo.fork,
                owner=app.user(request, repo.owner))


def _owned(app: GitHubApp, owner: str) -> list[Repo]:
    return [r for r in app.dataset.forge_repos("github") if r.owner.lower() == owner.lower()]


def owner_repos(app: GitHubApp, request: Request, owner: str) -> Response:
    repos = _owned(app, owner)
    if not repos:
        return _missing()
    return paginate(request, [repository(app, request, r) for r in repos])


def owner_get(app: GitHubApp, request: Request, owner: str) -> Response:
    if not _owned(app, owner):
        return _missing()
    user = app.user(request, owner)
    user["type"] = "Organization" if request.path.startswith("/orgs/") else "User"
    return Response(200, user)


# ------------------------------------------------------------------------------- pulls

def _pull(app: GitHubApp, request: Request, repo: Repo, pull: PullRequest) -> dict[str, Any]:
    body = app.template("pull", request, repo.full_name)
    html = request.base_url.rsplit("/api/v3", 1)[0]
    body.update(id=repo.id * 1_000_000 + pull.number, number=pull.number, title=pull.title,
                body=pull.body, state=pull.state, draft=pull.draft,
                user=app.user(request, pull.author, pull.author_is_bot),
                created_at=iso(pull.created_at), updated_at=iso(pull.updated_at),
                closed_at=iso(pull.closed_at), merged_at=iso(pull.merged_at),
                merge_commit_sha=pull.merge_commit_sha, labels=[{"name": n} for n in pull.labels],
                url=f"{request.base_url}/repos/{repo.full_name}/pulls/{pull.number}",
                html_url=f"{html}/{repo.full_name}/pull/{pull.number}")
    for side, ref, sha in (("head", pull.head, pull.commits[-1].sha), ("base", pull.base, None)):
        body[side] = dict(body[side], ref=ref, sha=sha or body[side]["sha"], label=f"{repo.owner}:{ref}",
                          repo=_nested_repo(app, request, repo, body[side]["repo"]))
    return body


def pulls(app: GitHubApp, request: Request, repo: Repo) -> Response:
    state = request.arg("state", "open")
    items = [p for p in repo.pulls if state == "all" or p.state == state]
    key = {"updated": "updated_at", "created": "created_at"}.get(request.arg("sort", "created") or "")
    items.sort(key=lambda p: getattr(p, key or "created_at"), reverse=request.arg("direction", "desc") == "desc")
    return paginate(request, items, body=lambda page: [_pull(app, request, repo, p) for p in page])


def _find(items: Sequence[Any], attr: str, value: str) -> Any | None:
    """The item whose `attr` is `value` as a URL gives it, or None."""
    return next((item for item in items if str(getattr(item, attr)) == value), None)


def pull_get(app: GitHubApp, request: Request, repo: Repo, number: str) -> Response:
    pull = _find(repo.pulls, "number", number)
    return _missing() if pull is None else Response(200, _pull(app, request, repo, pull))


def _commit(app: GitHubApp, request: Request, repo: Repo, commit: Commit) -> dict[str, Any]:
    body = app.template("commit", request, repo.full_name)
    person = {"name": commit.author, "email": f"{commit.author}@example.com", "date": iso(commit.authored_at)}
    body.update(sha=commit.sha, author=app.user(request, commit.author), committer=app.user(request, commit.author),
                url=f"{request.base_url}/repos/{repo.full_name}/commits/{commit.sha}",
                commit=dict(body["commit"], author=person, committer=person, message=commit.message))
    return body


def _children(request: Request, parent: Any, items: Callable[[Any], Sequence[Any]],
              build: Callable[[Any, int, Any], dict[str, Any]]) -> Response:
    """A paged sub-list (a PR's commits or reviews, a deployment's statuses), 404 without its parent."""
    if parent is None:
        return _missing()
    children = list(items(parent))
    return paginate(request, range(len(children)), body=lambda page: [build(parent, i, children[i]) for i in page])


def pull_commits(app: GitHubApp, request: Request, repo: Repo, number: str) -> Response:
    return _children(request, _find(repo.pulls, "number", number), lambda pull: pull.commits,
                     lambda _pull, _i, commit: _commit(app, request, repo, commit))


def pull_reviews(app: GitHubApp, request: Request, repo: Repo, number: str) -> Response:
    def review(pull: PullRequest, index: int, item: Review) -> dict[str, Any]:
        body = app.template("review", request, repo.full_name)
        body.update(id=pull.number * 100 + index, user=app.user(request, item.author, item.author_is_bot),
                    state=item.state, body=item.body, submitted_at=iso(item.submitted_at))
        return body
    return _children(request, _find(repo.pulls, "number", number), lambda pull: pull.reviews, review)


# ------------------------------------------------------------------------- deployments

def _deployment(app: GitHubApp, request: Request, repo: Repo, dep: Deployment) -> dict[str, Any]:
    body = app.template("deployment", request, repo.full_name)
    url = f"{request.base_url}/repos/{repo.full_name}/deployments/{dep.id}"
    body.update(id=dep.id, sha=dep.sha, ref=dep.ref, environment=dep.environment,
                original_environment=dep.environment, creator=app.user(request, dep.creator),
                created_at=iso(dep.created_at), updated_at=iso(dep.updated_at), url=url,
                statuses_url=f"{url}/statuses", production_environment=dep.environment == "production")
    return body


def deployments(app: GitHubApp, request: Request, repo: Repo) -> Response:
    items = [d for d in reversed(repo.deployments)
             if all(request.arg(f) in (None, getattr(d, f)) for f in ("environment", "sha", "ref"))]
    return paginate(request, items, body=lambda page: [_deployment(app, request, repo, d) for d in page])


def deployment_get(app: GitHubApp, request: Request, repo: Repo, dep_id: str) -> Response:
    dep = _find(repo.deployments, "id", dep_id)
    return _missing() if dep is None else Response(200, _deployment(app, request, repo, dep))


def deployment_statuses(app: GitHubApp, request: Request, repo: Repo, dep_id: str) -> Response:
    def status(dep: Deployment, index: int, item: DeploymentStatus) -> dict[str, Any]:
        body = app.template("deployment_status", request, repo.full_name)
        body.update(id=dep.id * 100 + index, state=item.state, environment=dep.environment,
                    created_at=iso(item.at), updated_at=iso(item.at), creator=app.user(request, dep.creator))
        return body
    newest_first: Callable[[Deployment], list[DeploymentStatus]] = lambda dep: dep.statuses[::-1]  # noqa: E731
    return _children(request, _find(repo.deployments, "id", dep_id), newest_first, status)


# --------------------------------------------------------------------- runs, releases

def _run(app: GitHubApp, request: Request, repo: Repo, run: WorkflowRun) -> dict[str, Any]:
    body = app.template("workflow_run", request, repo.full_name)
    html = request.base_url.rsplit("/api/v3", 1)[0]
    body.update(id=run.id, name=run.workflow, path=run.path, head_branch=run.branch, head_sha=run.sha,
                event=run.event, status=run.status, conclusion=run.conclusion, display_title=run.workflow,
                created_at=iso(run.created_at), run_started_at=iso(run.started_at),
                updated_at=iso(run.updated_at), run_number=run.id % 100_000,
                url=f"{request.base_url}/repos/{repo.full_name}/actions/runs/{run.id}",
                html_url=f"{html}/{repo.full_name}/actions/runs/{run.id}",
                repository=_nested_repo(app, request, repo, body["repository"]),
                head_repository=_nested_repo(app, request, repo, body["head_repository"]))
    return body


def workflow_runs(app: GitHubApp, request: Request, repo: Repo) -> Response:
    items = _runs_created(repo.runs, *created_filter(request.arg("created")))
    wanted = {f: request.arg(f) for f in ("branch", "event", "status") if request.arg(f)}
    if wanted:
        items = [r for r in items if all(getattr(r, f) == v for f, v in wanted.items())]
    total = len(items)
    if any(request.arg(f) for f in _RUN_FILTERS):
        items = _capped(app, request, items)
    return paginate(request, items, body=lambda page: {
        "total_count": total, "workflow_runs": [_run(app, request, repo, r) for r in page]})


def _runs_created(runs: list[WorkflowRun], low: datetime | None, high: datetime | None) -> list[WorkflowRun]:
    """Runs created in [low, high], newest first (the dataset keeps them oldest first)."""
    start = bisect_left(runs, low, key=lambda r: r.created_at) if low else 0
    stop = bisect_right(runs, high, key=lambda r: r.created_at) if high else len(runs)
    return runs[start:stop][::-1]


def _capped(app: GitHubApp, request: Request, items: list[WorkflowRun]) -> list[WorkflowRun]:
    """Filtered run listings stop at 1,000 results (GitHub documents this limit)."""
    per_page = max(1, min(request.int_arg("per_page", 30), 100))
    if request.int_arg("page", 1) * per_page > RUNS_CAP and len(items) > RUNS_CAP:
        with app._lock:
            app.capped += 1
    return items[:RUNS_CAP]


def _release(app: GitHubApp, request: Request, repo: Repo, rel: Release) -> dict[str, Any]:
    body = app.template("release", request, repo.full_name)
    html = request.base_url.rsplit("/api/v3", 1)[0]
    body.update(id=rel.id, tag_name=rel.tag, name=rel.name, target_commitish=rel.sha, draft=rel.draft,
                prerelease=rel.prerelease, created_at=iso(rel.created_at), published_at=iso(rel.published_at),
                url=f"{request.base_url}/repos/{repo.full_name}/releases/{rel.id}",
                html_url=f"{html}/{repo.full_name}/releases/tag/{rel.tag}", author=app.user(request, "alice"))
    return body


def releases(app: GitHubApp, request: Request, repo: Repo) -> Response:
    items = sorted(repo.releases, key=lambda r: r.created_at, reverse=True)
    return paginate(request, items, body=lambda page: [_release(app, request, repo, r) for r in page])


# ------------------------------------------------------------------------------ issues

def _issue(app: GitHubApp, request: Request, repo: Repo, item: Issue | PullRequest) -> dict[str, Any]:
    body = app.template("issue", request, repo.full_name)
    html = request.base_url.rsplit("/api/v3", 1)[0]
    is_pull = isinstance(item, PullRequest)
    body.update(id=repo.id * 1_000_000 + item.number, number=item.number, title=item.title,
                body=item.body, state="closed" if item.closed_at else "open",
                labels=[{"name": n, "color": "d73a4a", "default": False} for n in item.labels],
                user=app.user(request, item.author), created_at=iso(item.created_at),
                updated_at=iso(item.updated_at), closed_at=iso(item.closed_at),
                url=f"{request.base_url}/repos/{repo.full_name}/issues/{item.number}",
                html_url=f"{html}/{repo.full_name}/{'pull' if is_pull else 'issues'}/{item.number}")
    if not is_pull:
        body.pop("pull_request", None)  # the issues endpoint marks PRs with this key
    return body


def _issue_matches(item: Issue | PullRequest, request: Request) -> bool:
    state, labels, since = request.arg("state", "open"), request.arg("labels"), request.arg("since")
    if state != "all" and ("closed" if item.closed_at else "open") != state:
        return False
    if labels and not set(labels.split(",")) <= set(item.labels):  # GitHub: every label given
        return False
    return not since or item.updated_at >= parse_time(since)


def issues(app: GitHubApp, request: Request, repo: Repo) -> Response:
    everything: list[Issue | PullRequest] = [*repo.issues, *repo.pulls]
    items = [i for i in everything if _issue_matches(i, request)]
    key = "updated_at" if request.arg("sort") == "updated" else "created_at"
    items.sort(key=lambda i: getattr(i, key), reverse=request.arg("direction", "desc") == "desc")
    return paginate(request, items, body=lambda page: [_issue(app, request, repo, i) for i in page])


# --------------------------------------------------------------- compare, trees, files

def compare(app: GitHubApp, request: Request, repo: Repo, basehead: str) -> Response:
    base, _, head = basehead.partition("...")
    if repo.commit(base) is None or repo.commit(head) is None:
        return _missing()
    commits = repo.compare(base, head)
    body = app.template("compare", request, repo.full_name)
    body.update(status="ahead" if commits else "identical", ahead_by=len(commits), behind_by=0,
                total_commits=len(commits), files=[],
                url=f"{request.base_url}/repos/{repo.full_name}/compare/{basehead}")
    # The compare API pages commits 250 at a time by default.
    return paginate(request, commits, style=PageStyle(250, 250),
                    body=lambda chunk: dict(body, commits=[_commit(app, request, repo, c) for c in chunk]))


def tree(app: GitHubApp, request: Request, repo: Repo, sha: str) -> Response:
    head = repo.commit(sha)
    if head is None:
        return _missing()
    entries: list[dict[str, Any]] = [{"path": path, "mode": "100644", "type": "blob", "size": len(text.encode()),
                "sha": _blob_sha(text), "url": f"{request.base_url}/repos/{repo.full_name}/git/blobs/{_blob_sha(text)}"}
               for path, text in sorted(repo.files.items())]
    if request.arg("recursive") in (None, "0", "false"):
        entries = [e for e in entries if "/" not in e["path"]]
    return Response(200, {"sha": head.sha, "url": f"{request.base_url}/repos/{repo.full_name}/git/trees/{head.sha}",
                          "tree": entries, "truncated": False})


def _blob_sha(text: str) -> str:
    raw = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()


def contents(app: GitHubApp, request: Request, repo: Repo, path: str) -> Response:
    """GET contents/{path}: real base64, wrapped at 60 characters as GitHub wraps it."""
    text = repo.files.get(path)
    if text is None:
        return _missing()
    raw = text.encode()
    encoded = base64.b64encode(raw).decode()
    body = app.template("content_file", request, repo.full_name)
    body.update(name=path.rsplit("/", 1)[-1], path=path, size=len(raw), encoding="base64", type="file",
                content="\n".join(encoded[i:i + 60] for i in range(0, len(encoded), 60)) + "\n",
                sha=_blob_sha(text), url=f"{request.base_url}/repos/{repo.full_name}/contents/{path}")
    return Response(200, body)


# ---------------------------------------------------------------- rate limit, app auth

def rate_limit(app: GitHubApp, request: Request) -> dict[str, Any]:
    body = dict(templates()["rate_limit"])
    resources = dict(body["resources"])
    with app._lock:
        for name, budget in app.budgets.items():
            budget.roll(time.time())
            resources[name] = {"limit": budget.limit, "used": budget.used,
                               "remaining": budget.remaining, "reset": budget.reset}
    body.update(resources=resources, rate=resources["core"])
    return body


def installation_token(app: GitHubApp, request: Request, installation_id: str) -> Response:
    """POST /app/installations/{id}/access_tokens: needs the app's JWT as a Bearer token."""
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return Response(401, {"message": "A JSON web token could not be decoded"})
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Response(201, {"token": f"ghs_sandbox{installation_id}", "expires_at": iso(expires),
                          "permissions": {"contents": "read", "pull_requests": "read",
                                          "deployments": "read", "actions": "read", "issues": "read"},
                          "repository_selection": "all"})


_ROUTES: Sequence[tuple[str, str, Callable[..., Any]]] = (
    ("GET", "/rate_limit", rate_limit),
    ("POST", "/app/installations/{installation_id}/access_tokens", installation_token),
    ("GET", "/orgs/{owner}", owner_get),
    ("GET", "/users/{owner}", owner_get),
    ("GET", "/orgs/{owner}/repos", owner_repos),
    ("GET", "/users/{owner}/repos", owner_repos),
    ("GET", REPO, repository),
    ("GET", REPO + "/pulls", pulls),
    ("GET", REPO + "/pulls/{number}", pull_get),
    ("GET", REPO + "/pulls/{number}/commits", pull_commits),
    ("GET", REPO + "/pulls/{number}/reviews", pull_reviews),
    ("GET", REPO + "/deployments", deployments),
    ("GET", REPO + "/deployments/{dep_id}", deployment_get),
    ("GET", REPO + "/deployments/{dep_id}/statuses", deployment_statuses),
    ("GET", REPO + "/actions/runs", workflow_runs),
    ("GET", REPO + "/releases", releases),
    ("GET", REPO + "/issues", issues),
    ("GET", REPO + "/compare/{basehead:path}", compare),
    ("GET", REPO + "/git/trees/{sha:path}", tree),
    ("GET", REPO + "/contents/{path:path}", contents),
)
