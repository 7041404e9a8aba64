"""GitLab REST v4 and GraphQL over the seeded dataset, for the real python-gitlab client.

Mounted under a prefix (e.g. "/gitlab"), so the GitLab base URL is `<server>/gitlab` and
python-gitlab calls `<server>/gitlab/api/v4/...` and `<server>/gitlab/api/graphql`, exactly
as it does for a self-managed instance under a relative URL. Bodies follow the shapes of
GitLab's documented examples (../shared/fixtures/gitlab); GitLab's own rules are kept where
a client could trip on them: projects addressed by URL-encoded path, `updated_after` on
deployments only together with `order_by=updated_at`, X-Page/X-Total headers beside Link,
RateLimit-* headers on every answer, MR approvals and "ready" as system notes, users embedded
as UserBasic (no `bot`) while GET /users/:id and GraphQL carry `bot` (the dataset's bots get
GitLab-style accounts, gitlab_bodies.ACCOUNTS). Each dataset
run is a pipeline with one job named after its workflow, lower-cased and hyphenated
("Deploy" → "deploy"), listed newest first by /jobs with a `scope[]` status filter.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from devmetrics.sandbox import dataset as ds
from devmetrics.sandbox.gitlab_bodies import (
    commit_json,
    deployment_json,
    full_user_json,
    issue_json,
    job_json,
    mr_json,
    mr_notes,
    note_json,
    parse_time,
    pipeline_json,
    project_json,
    release_json,
    tree_entries,
    user_id,
    user_json,
)
from devmetrics.sandbox.gitlab_graphql import graphql_schema, run_query
from devmetrics.sandbox.server import GITLAB_PAGES, App, Request, Response, Route, paginate

RATE_LIMIT = 2000  # gitlab.com's authenticated API limit per minute


class GitLabApp(App):
    """GitLab REST v4 + GraphQL for the dataset's `gitlab` repos."""

    name = "gitlab"

    def __init__(self, data: ds.Dataset | None = None) -> None:
        super().__init__()
        self.data = data or ds.build_dataset()
        self.repos = self.data.forge_repos("gitlab")
        self.groups = _groups(self.repos)
        self._schema = graphql_schema(self)
        self._observed = 0
        self._window: tuple[int, int] | None = None  # a throttle from limit(): (remaining, reset)
        self._pipelines: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._users = {user_id(name): name for name in _accounts(self.data)}
        self._register()

    # ------------------------------------------------------------------ routing

    def _register(self) -> None:
        v4 = "/api/v4"
        for template, handler in (
            ("/projects/{id}", self.get_project),
            ("/groups/{id}", self.get_group),
            ("/groups/{id}/projects", self.group_projects),
            ("/users/{id}", self.get_user),
            ("/projects/{id}/merge_requests", self.merge_requests),
            ("/projects/{id}/merge_requests/{iid}", self.merge_request),
            ("/projects/{id}/merge_requests/{iid}/commits", self.mr_commits),
            ("/projects/{id}/merge_requests/{iid}/notes", self.mr_notes),
            ("/projects/{id}/merge_requests/{iid}/approvals", self.mr_approvals),
            ("/projects/{id}/pipelines", self.pipelines),
            ("/projects/{id}/pipelines/{pid}", self.pipeline),
            ("/projects/{id}/pipelines/{pid}/jobs", self.pipeline_jobs),
            ("/projects/{id}/jobs", self.jobs),
            ("/projects/{id}/deployments", self.deployments),
            ("/projects/{id}/releases", self.releases),
            ("/projects/{id}/issues", self.issues),
            ("/projects/{id}/repository/tree", self.tree),
            ("/projects/{id}/repository/compare", self.compare),
            ("/projects/{id}/repository/files/{path}/raw", self.raw_file),
            ("/projects/{id}/repository/files/{path}", self.file),
        ):
            self.route("GET", v4 + template)(handler)
        self.route("POST", "/api/graphql")(self.graphql)

    def not_found(self, request: Request) -> Response:
        return Response(404, {"message": "404 Not Found"})

    def limit(self, remaining: int, reset_in: float) -> None:
        """Allow `remaining` more requests until a reset `reset_in` seconds ahead; after them
        GitLab answers 429 (RateLimit-Remaining 0 and Retry-After) until the reset."""
        with self._lock:
            self._window = (remaining, int(time.time() + reset_in))

    def match(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        with self._lock:
            if self._window and time.time() >= self._window[1]:
                self._window = None
            window = self._window
        if window and window[0] == 0:
            return _throttled(window[1])
        return super().match(request)

    def after(self, request: Request, response: Response) -> None:
        """RateLimit-* headers as gitlab.com sends them (a fault may replace them)."""
        with self._lock:
            self._observed += 1
            observed = self._observed
            if self._window and response.status != 429:
                self._window = (max(0, self._window[0] - 1), self._window[1])
                response.headers.update({"RateLimit-Remaining": str(self._window[0]),
                                         "RateLimit-Reset": str(self._window[1])})
        reset = int(time.time()) // 60 * 60 + 60
        response.headers.setdefault("RateLimit-Name", "throttle_authenticated_api")
        response.headers.setdefault("RateLimit-Limit", str(RATE_LIMIT))
        response.headers.setdefault("RateLimit-Observed", str(observed % RATE_LIMIT))
        response.headers.setdefault("RateLimit-Remaining", str(RATE_LIMIT - observed % RATE_LIMIT))
        response.headers.setdefault("RateLimit-Reset", str(reset))

    def project(self, key: str) -> ds.Repo | None:
        """A project by numeric id or by (URL-encoded) full path."""
        key = unquote(key)
        for repo in self.repos:
            if str(repo.id) == key or repo.full_name.lower() == key.lower():
                return repo
        return None

    def _with_project(self, key: str, answer: Callable[[ds.Repo], Response | Any]) -> Response | Any:
        repo = self.project(key)
        return Response(404, {"message": "404 Project Not Found"}) if repo is None else answer(repo)

    # ------------------------------------------------------------------ projects and groups

    def get_project(self, request: Request, id: str) -> Response | Any:
        return self._with_project(id, lambda repo: project_json(request.base_url, repo))

    def get_group(self, request: Request, id: str) -> Response | Any:
        group = self.groups.get(unquote(id)) or next((g for g in self.groups.values() if str(g["id"]) == id), None)
        return Response(404, {"message": "404 Group Not Found"}) if group is None else group

    def group_projects(self, request: Request, id: str) -> Response:
        group = self.get_group(request, id)
        if isinstance(group, Response):
            return group
        path = group["full_path"]
        subgroups = _flag(request, "include_subgroups")
        repos = [r for r in self.repos if r.owner == path or (subgroups and r.owner.startswith(path + "/"))]
        if request.arg("archived") is not None:
            repos = [r for r in repos if r.archived == _flag(request, "archived")]
        return paginate(request, [project_json(request.base_url, r) for r in repos], GITLAB_PAGES)

    def get_user(self, request: Request, id: str) -> Response | Any:
        name = self._users.get(int(id)) if id.isdigit() else None
        if name is None:
            return Response(404, {"message": "404 User Not Found"})
        return full_user_json(request.base_url, name)

    # ------------------------------------------------------------------ merge requests

    def merge_requests(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            items = [mr_json(request.base_url, repo, p) for p in repo.pulls]
            state = request.arg("state", "all")
            if state != "all":
                items = [i for i in items if i["state"] == state]
            return paginate(request, _filtered(request, items, "created_at"), GITLAB_PAGES)

        return self._with_project(id, answer)

    def _pull(self, key: str, iid: str) -> tuple[ds.Repo, ds.PullRequest] | None:
        repo = self.project(key)
        pull = next((p for p in repo.pulls if str(p.number) == iid), None) if repo else None
        return (repo, pull) if repo and pull else None

    def merge_request(self, request: Request, id: str, iid: str) -> Response | Any:
        found = self._pull(id, iid)
        return mr_json(request.base_url, *found) if found else self.not_found(request)

    def mr_commits(self, request: Request, id: str, iid: str) -> Response:
        found = self._pull(id, iid)
        if found is None:
            return self.not_found(request)
        commits = [commit_json(request.base_url, found[0], c) for c in reversed(found[1].commits)]
        return paginate(request, commits, GITLAB_PAGES)

    def mr_notes(self, request: Request, id: str, iid: str) -> Response:
        found = self._pull(id, iid)
        if found is None:
            return self.not_found(request)
        notes = [note_json(request.base_url, n) for n in mr_notes(found[1])]
        if request.arg("sort", "desc") == "desc":
            notes.reverse()
        return paginate(request, notes, GITLAB_PAGES)

    def mr_approvals(self, request: Request, id: str, iid: str) -> Response | Any:
        found = self._pull(id, iid)
        if found is None:
            return self.not_found(request)
        approvers = [r.author for r in found[1].reviews if r.state == "APPROVED"]
        return {
            "id": found[1].number,
            "iid": found[1].number,
            "approved": bool(approvers),
            "approved_by": [{"user": user_json(request.base_url, a)} for a in dict.fromkeys(approvers)],
        }

    # ------------------------------------------------------------------ CI and deployments

    def pipelines(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            key = (repo.full_name, request.base_url)
            if key not in self._pipelines:  # the data never changes: build each list once
                self._pipelines[key] = [
                    pipeline_json(request.base_url, repo, n, r, full=False) for n, r in enumerate(repo.runs, 1)
                ]
            return paginate(request, _filtered(request, self._pipelines[key], "id"), GITLAB_PAGES)

        return self._with_project(id, answer)

    def pipeline(self, request: Request, id: str, pid: str) -> Response | Any:
        repo = self.project(id)
        for number, run in enumerate(repo.runs if repo else [], 1):
            if str(run.id) == pid:
                return pipeline_json(request.base_url, repo, number, run, full=True)  # type: ignore[arg-type]
        return self.not_found(request)

    def jobs(self, request: Request, id: str) -> Response:
        """A project's jobs, newest first: GitLab's id order, i.e. creation order (the dataset's
        run ids are not in that order, so the runs' order stands for it). No time filter."""

        def answer(repo: ds.Repo) -> Response:
            items = [job_json(request.base_url, repo, run) for run in reversed(repo.runs)]
            return paginate(request, _scoped(request, items), GITLAB_PAGES)

        return self._with_project(id, answer)

    def pipeline_jobs(self, request: Request, id: str, pid: str) -> Response:
        repo = self.project(id)
        run = next((r for r in repo.runs if str(r.id) == pid), None) if repo else None
        if repo is None or run is None:
            return self.not_found(request)
        return paginate(request, _scoped(request, [job_json(request.base_url, repo, run)]), GITLAB_PAGES)

    def deployments(self, request: Request, id: str) -> Response | Any:
        # GitLab refuses an updated_* filter unless the list is ordered by updated_at,
        # because only that order lets a client page through the window without gaps.
        if (request.arg("updated_after") or request.arg("updated_before")) and request.arg("order_by") != "updated_at":
            return Response(400, {"message": "`updated_at` filter and `updated_at` sorting must be paired"})

        def answer(repo: ds.Repo) -> Response:
            items = [deployment_json(request.base_url, repo, n, d) for n, d in enumerate(repo.deployments, 1)]
            return paginate(request, _filtered(request, items, "id", default_sort="asc"), GITLAB_PAGES)

        return self._with_project(id, answer)

    def releases(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            items = [release_json(request.base_url, repo, r) for r in repo.releases if not r.draft]
            order = request.arg("order_by") or "released_at"
            items.sort(key=lambda i: i[order], reverse=request.arg("sort", "desc") == "desc")
            return paginate(request, items, GITLAB_PAGES)

        return self._with_project(id, answer)

    def issues(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            items = [issue_json(request.base_url, repo, i) for i in repo.issues]
            kind = request.arg("issue_type")
            wanted = [w for w in (request.arg("labels") or "").split(",") if w]
            items = [
                i for i in items if (not kind or i["issue_type"] == kind) and all(w in i["labels"] for w in wanted)
            ]
            if request.arg("state") in ("opened", "closed"):
                items = [i for i in items if i["state"] == request.arg("state")]
            return paginate(request, _filtered(request, items, "created_at"), GITLAB_PAGES)

        return self._with_project(id, answer)

    # ------------------------------------------------------------------ repository

    def tree(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            entries = tree_entries(repo.files, recursive=_flag(request, "recursive"))
            return paginate(request, entries, GITLAB_PAGES)

        return self._with_project(id, answer)

    def compare(self, request: Request, id: str) -> Response | Any:
        def answer(repo: ds.Repo) -> Any:
            commits = repo.compare(request.arg("from") or "", request.arg("to") or "")
            body = [commit_json(request.base_url, repo, c) for c in commits]
            return {
                "commit": body[-1] if body else None,
                "commits": body,
                "diffs": [],
                "compare_timeout": False,
                "compare_same_ref": request.arg("from") == request.arg("to"),
                "web_url": f"{request.base_url}/{repo.full_name}/-/compare",
            }

        return self._with_project(id, answer)

    def _file(self, id: str, path: str) -> tuple[ds.Repo, str] | Response:
        repo = self.project(id)
        text = repo.files.get(unquote(path)) if repo else None
        if repo is None or text is None:
            return Response(404, {"message": "404 File Not Found"})
        return repo, text

    def raw_file(self, request: Request, id: str, path: str) -> Response:
        found = self._file(id, path)
        if isinstance(found, Response):
            return found
        return Response(200, found[1].encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def file(self, request: Request, id: str, path: str) -> Response | Any:
        found = self._file(id, path)
        if isinstance(found, Response):
            return found
        repo, text = found
        data = text.encode()
        head = repo.main_line[-1].sha
        return {
            "file_name": unquote(path).rsplit("/", 1)[-1],
            "file_path": unquote(path),
            "size": len(data),
            "encoding": "base64",
            "content": base64.b64encode(data).decode(),
            "content_sha256": hashlib.sha256(data).hexdigest(),
            "ref": request.arg("ref", "main"),
            "blob_id": hashlib.sha1(data).hexdigest(),
            "commit_id": head,
            "last_commit_id": head,
            "execute_filemode": False,
        }

    # ------------------------------------------------------------------ GraphQL

    def graphql(self, request: Request) -> Response:
        """GitLab answers GraphQL errors with 200 and an `errors` list, as the spec says."""
        try:
            payload = request.json() or {}
        except ValueError:
            return Response(400, {"errors": [{"message": "Invalid JSON"}]})
        result = run_query(
            self._schema,
            payload.get("query") or "",
            payload.get("variables"),
            payload.get("operationName"),
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return Response(200, body)


# Every rule but the overlap check, which is quadratic in aliases (the connector asks for
# 25 aliased pipelines a query) and guards against nothing these queries can do.
# ---------------------------------------------------------------------------- list filters


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: GitLab (Grape) takes true/True/1 alike."""
    return (request.arg(name) or "").lower() in ("true", "1")


def _scoped(request: Request, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`scope[]=success&scope[]=failed`: jobs in any of these states (none given: all)."""
    scopes = request.query.get("scope[]") or request.query.get("scope") or []
    return [job for job in jobs if not scopes or job["status"] in scopes]


def _filtered(
    request: Request, items: list[dict[str, Any]], default_order: str, default_sort: str = "desc"
) -> list[dict[str, Any]]:
    """updated_after / updated_before, then order_by and sort, as GitLab's list APIs do."""
    after, before = parse_time(request.arg("updated_after")), parse_time(request.arg("updated_before"))
    if after:
        items = [i for i in items if parse_time(i["updated_at"]) >= after]  # type: ignore[operator]
    if before:
        items = [i for i in items if parse_time(i["updated_at"]) <= before]  # type: ignore[operator]
    order = request.arg("order_by", default_order) or default_order
    descending = request.arg("sort", default_sort) == "desc"
    return sorted(items, key=lambda i: (i.get(order) or "", i.get("id") or 0), reverse=descending)


def _throttled(reset: int) -> tuple[Route, dict[str, str]]:
    """GitLab's answer while the window is used up: 429 with the reset and a Retry-After."""
    headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
               "Retry-After": str(max(1, math.ceil(reset - time.time())))}
    response = Response(429, {"message": "Retry later"}, headers)
    return Route("*", re.compile(".*"), "429 response", lambda _request: response), {}


def _accounts(data: ds.Dataset) -> set[str]:
    """Every account the dataset names: authors, reviewers, commenters, committers, deployers."""
    names = {"alice", "carol"}  # the release author and the merger of every MR
    for repo in data.repos:
        for pull in repo.pulls:
            names |= {pull.author} | {r.author for r in pull.reviews} | {c.author for c in pull.commits}
            names |= {c.author for c in pull.comments}
        names |= {d.creator for d in repo.deployments} | {i.author for i in repo.issues}
    return names


def _groups(repos: Iterable[ds.Repo]) -> dict[str, dict[str, Any]]:
    """Every namespace above a project is a group (subgroups included), keyed by full path."""
    paths = sorted({"/".join(r.owner.split("/")[:n]) for r in repos for n in range(1, r.owner.count("/") + 2)})
    return {
        path: {
            "id": 1000 + n,
            "name": path.rsplit("/", 1)[-1],
            "path": path.rsplit("/", 1)[-1],
            "full_path": path,
            "full_name": path.replace("/", " / "),
            "parent_id": None if "/" not in path else 1000 + paths.index(path.rsplit("/", 1)[0]),
            "visibility": "private",
        }
        for n, path in enumerate(paths)
    }
