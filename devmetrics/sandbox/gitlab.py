"""GitLab REST v4 and GraphQL over the seeded dataset, for the real python-gitlab client.

Mounted under a prefix (e.g. "/gitlab"), so the GitLab base URL is `<server>/gitlab` and
python-gitlab calls `<server>/gitlab/api/v4/...` and `<server>/gitlab/api/graphql`, exactly
as it does for a self-managed instance under a relative URL. Bodies follow the shapes of
GitLab's documented examples (../shared/fixtures/gitlab); GitLab's own rules are kept where
a client could trip on them: projects addressed by URL-encoded path, `updated_after` on
deployments only together with `order_by=updated_at`, X-Page/X-Total headers beside Link,
RateLimit-* headers on every answer, MR approvals and "ready" as system notes.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import unquote

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OverlappingFieldsCanBeMergedRule,
    build_schema,
    execute_sync,
    parse,
    specified_rules,
    validate,
)

from devmetrics.sandbox import dataset as ds
from devmetrics.sandbox.server import GITLAB_PAGES, App, Request, Response, paginate

RATE_LIMIT = 2000  # gitlab.com's authenticated API limit per minute
DEPLOYMENT_STATUS = {
    "queued": "created",
    "in_progress": "running",
    "success": "success",
    "failure": "failed",
    "error": "failed",
    "cancelled": "canceled",
    "pending": "blocked",
}
RUN_STATUS = {
    "success": "success",
    "failure": "failed",
    "cancelled": "canceled",
    "skipped": "skipped",
}
EVENT_SOURCE = {"pull_request": "merge_request_event", "push": "push"}


def ts(value: datetime | None) -> str | None:
    """GitLab's time format: UTC with milliseconds and a Z."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace(" ", "+")) if value else None


def _user(base: str, username: str) -> dict[str, Any]:
    number = int(hashlib.sha1(username.encode()).hexdigest()[:6], 16)
    return {
        "id": number,
        "username": username,
        "name": username.replace("[bot]", " bot").title(),
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": f"{base}/{username}",
    }


def _mr_refs(text: str) -> str:
    """GitLab names merge requests `!12` where GitHub writes `#12`."""
    return text.replace("#", "!")


def _squashed(pull: ds.PullRequest) -> bool:
    # Every fifth MR is squashed and fast-forwarded: GitLab then reports the squash commit
    # and no merge commit, the case the connector must read from squash_commit_sha.
    return pull.number % 5 == 0


class GitLabApp(App):
    """GitLab REST v4 + GraphQL for the dataset's `gitlab` repos."""

    name = "gitlab"

    def __init__(self, data: ds.Dataset | None = None) -> None:
        super().__init__()
        self.data = data or ds.build_dataset()
        self.repos = self.data.forge_repos("gitlab")
        self.groups = _groups(self.repos)
        self._schema = _graphql_schema(self)
        self._observed = 0
        self._pipelines: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._register()

    # ------------------------------------------------------------------ routing

    def _register(self) -> None:
        v4 = "/api/v4"
        for template, handler in (
            ("/projects/{id}", self.get_project),
            ("/groups/{id}", self.get_group),
            ("/groups/{id}/projects", self.group_projects),
            ("/projects/{id}/merge_requests", self.merge_requests),
            ("/projects/{id}/merge_requests/{iid}", self.merge_request),
            ("/projects/{id}/merge_requests/{iid}/commits", self.mr_commits),
            ("/projects/{id}/merge_requests/{iid}/notes", self.mr_notes),
            ("/projects/{id}/merge_requests/{iid}/approvals", self.mr_approvals),
            ("/projects/{id}/pipelines", self.pipelines),
            ("/projects/{id}/pipelines/{pid}", self.pipeline),
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

    def after(self, request: Request, response: Response) -> None:
        """RateLimit-* headers as gitlab.com sends them (a fault may replace them)."""
        with self._lock:
            self._observed += 1
            observed = self._observed
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

    def _with_project(
        self, key: str, answer: Callable[[ds.Repo], Response | Any]
    ) -> Response | Any:
        repo = self.project(key)
        return Response(404, {"message": "404 Project Not Found"}) if repo is None else answer(repo)

    # ------------------------------------------------------------------ projects and groups

    def get_project(self, request: Request, id: str) -> Response | Any:
        return self._with_project(id, lambda repo: project_json(request.base_url, repo))

    def get_group(self, request: Request, id: str) -> Response | Any:
        group = self.groups.get(unquote(id)) or next(
            (g for g in self.groups.values() if str(g["id"]) == id), None
        )
        return Response(404, {"message": "404 Group Not Found"}) if group is None else group

    def group_projects(self, request: Request, id: str) -> Response:
        group = self.get_group(request, id)
        if isinstance(group, Response):
            return group
        path = group["full_path"]
        subgroups = _flag(request, "include_subgroups")
        repos = [
            r
            for r in self.repos
            if r.owner == path or (subgroups and r.owner.startswith(path + "/"))
        ]
        if request.arg("archived") is not None:
            repos = [r for r in repos if r.archived == _flag(request, "archived")]
        return paginate(request, [project_json(request.base_url, r) for r in repos], GITLAB_PAGES)

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
            "approved_by": [{"user": _user(request.base_url, a)} for a in dict.fromkeys(approvers)],
        }

    # ------------------------------------------------------------------ CI and deployments

    def pipelines(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            key = (repo.full_name, request.base_url)
            if key not in self._pipelines:  # the data never changes: build each list once
                self._pipelines[key] = [
                    pipeline_json(request.base_url, repo, n, r, full=False)
                    for n, r in enumerate(repo.runs, 1)
                ]
            return paginate(request, _filtered(request, self._pipelines[key], "id"), GITLAB_PAGES)

        return self._with_project(id, answer)

    def pipeline(self, request: Request, id: str, pid: str) -> Response | Any:
        repo = self.project(id)
        for number, run in enumerate(repo.runs if repo else [], 1):
            if str(run.id) == pid:
                return pipeline_json(request.base_url, repo, number, run, full=True)  # type: ignore[arg-type]
        return self.not_found(request)

    def deployments(self, request: Request, id: str) -> Response | Any:
        # GitLab refuses an updated_* filter unless the list is ordered by updated_at,
        # because only that order lets a client page through the window without gaps.
        if (request.arg("updated_after") or request.arg("updated_before")) and request.arg(
            "order_by"
        ) != "updated_at":
            return Response(
                400, {"message": "`updated_at` filter and `updated_at` sorting must be paired"}
            )

        def answer(repo: ds.Repo) -> Response:
            items = [
                deployment_json(request.base_url, repo, n, d)
                for n, d in enumerate(repo.deployments, 1)
            ]
            return paginate(
                request, _filtered(request, items, "id", default_sort="asc"), GITLAB_PAGES
            )

        return self._with_project(id, answer)

    def releases(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            items = [release_json(request.base_url, repo, r) for r in repo.releases if not r.draft]
            order = request.arg("order_by", "released_at")
            items.sort(key=lambda i: i[order], reverse=request.arg("sort", "desc") == "desc")
            return paginate(request, items, GITLAB_PAGES)

        return self._with_project(id, answer)

    def issues(self, request: Request, id: str) -> Response:
        def answer(repo: ds.Repo) -> Response:
            items = [issue_json(request.base_url, repo, i) for i in repo.issues]
            kind = request.arg("issue_type")
            wanted = [w for w in (request.arg("labels") or "").split(",") if w]
            items = [
                i
                for i in items
                if (not kind or i["issue_type"] == kind) and all(w in i["labels"] for w in wanted)
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
RULES = [rule for rule in specified_rules if rule is not OverlappingFieldsCanBeMergedRule]


def run_query(
    schema: GraphQLSchema, query: str, variables: dict[str, Any] | None, operation: str | None
) -> ExecutionResult:
    """Parse, validate against the schema, execute: errors come back as GitLab gives them."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return ExecutionResult(None, [error])
    errors = validate(schema, document, RULES)
    if errors:
        return ExecutionResult(None, errors)
    return execute_sync(schema, document, variable_values=variables, operation_name=operation)  # type: ignore[return-value]


# ---------------------------------------------------------------------------- list filters


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: GitLab (Grape) takes true/True/1 alike."""
    return (request.arg(name) or "").lower() in ("true", "1")


def _filtered(
    request: Request, items: list[dict[str, Any]], default_order: str, default_sort: str = "desc"
) -> list[dict[str, Any]]:
    """updated_after / updated_before, then order_by and sort, as GitLab's list APIs do."""
    after, before = _parse(request.arg("updated_after")), _parse(request.arg("updated_before"))
    if after:
        items = [i for i in items if _parse(i["updated_at"]) >= after]  # type: ignore[operator]
    if before:
        items = [i for i in items if _parse(i["updated_at"]) <= before]  # type: ignore[operator]
    order = request.arg("order_by", default_order) or default_order
    descending = request.arg("sort", default_sort) == "desc"
    return sorted(items, key=lambda i: (i.get(order) or "", i.get("id") or 0), reverse=descending)


def _groups(repos: Iterable[ds.Repo]) -> dict[str, dict[str, Any]]:
    """Every namespace above a project is a group (subgroups included), keyed by full path."""
    paths = sorted(
        {"/".join(r.owner.split("/")[:n]) for r in repos for n in range(1, r.owner.count("/") + 2)}
    )
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


# ---------------------------------------------------------------------------- bodies


def project_json(base: str, repo: ds.Repo) -> dict[str, Any]:
    web = f"{base}/{repo.full_name}"
    body = {
        "id": repo.id,
        "description": f"The {repo.name} project",
        "default_branch": repo.default_branch,
        "visibility": "private",
        "ssh_url_to_repo": f"git@sandbox:{repo.full_name}.git",
        "http_url_to_repo": f"{web}.git",
        "web_url": web,
        "name": repo.name.title(),
        "name_with_namespace": repo.full_name.replace("/", " / "),
        "path": repo.name,
        "path_with_namespace": repo.full_name,
        "created_at": ts(repo.created_at),
        "last_activity_at": ts(repo.main_line[-1].authored_at),
        "archived": repo.archived,
        "namespace": {
            "id": 1000,
            "name": repo.owner.rsplit("/", 1)[-1],
            "path": repo.owner.rsplit("/", 1)[-1],
            "kind": "group",
            "full_path": repo.owner,
            "web_url": f"{base}/groups/{repo.owner}",
        },
        "forks_count": 0,
        "star_count": 0,
        "merge_method": "merge",
        "squash_option": "default_off",
        "_links": {
            "self": f"{base}/api/v4/projects/{repo.id}",
            "merge_requests": f"{base}/api/v4/projects/{repo.id}/merge_requests",
        },
    }
    if repo.fork:
        body["forked_from_project"] = {"id": 1, "path_with_namespace": f"upstream/{repo.name}"}
    return body


def mr_json(base: str, repo: ds.Repo, pull: ds.PullRequest) -> dict[str, Any]:
    merged = pull.merged_at is not None
    squash = merged and _squashed(pull)
    state = "merged" if merged else ("closed" if pull.closed_at else "opened")
    return {
        "id": repo.id * 100_000 + pull.number,
        "iid": pull.number,
        "project_id": repo.id,
        "title": ("Draft: " if pull.draft else "") + pull.title,
        "description": _mr_refs(pull.body),
        "state": state,
        "created_at": ts(pull.created_at),
        "updated_at": ts(pull.updated_at),
        "merged_at": ts(pull.merged_at),
        "closed_at": None if merged else ts(pull.closed_at),
        "merged_by": _user(base, "carol") if merged else None,
        "closed_by": _user(base, pull.author) if pull.closed_at and not merged else None,
        "target_branch": pull.base,
        "source_branch": pull.head,
        "author": _user(base, pull.author),
        "assignees": [],
        "reviewers": [],
        "source_project_id": repo.id,
        "target_project_id": repo.id,
        "labels": list(pull.labels),
        "draft": pull.draft,
        "work_in_progress": pull.draft,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "not_open" if pull.closed_at else "mergeable",
        "sha": pull.commits[-1].sha if pull.commits else None,
        "merge_commit_sha": None if squash else pull.merge_commit_sha,
        "squash_commit_sha": pull.merge_commit_sha if squash else None,
        "squash": squash,
        "user_notes_count": sum(1 for r in pull.reviews if r.state != "APPROVED"),
        "web_url": f"{base}/{repo.full_name}/-/merge_requests/{pull.number}",
        "reference": f"!{pull.number}",
        "references": {
            "short": f"!{pull.number}",
            "relative": f"!{pull.number}",
            "full": f"{repo.full_name}!{pull.number}",
        },
    }


def commit_json(base: str, repo: ds.Repo, commit: ds.Commit) -> dict[str, Any]:
    at = ts(commit.authored_at)
    return {
        "id": commit.sha,
        "short_id": commit.sha[:11],
        "title": commit.message.splitlines()[0],
        "message": commit.message,
        "author_name": commit.author,
        "author_email": f"{commit.author}@example.com",
        "authored_date": at,
        "committer_name": commit.author,
        "committer_email": f"{commit.author}@example.com",
        "committed_date": at,
        "created_at": at,
        "parent_ids": [],
        "trailers": {},
        "web_url": f"{base}/{repo.full_name}/-/commit/{commit.sha}",
    }


def mr_notes(pull: ds.PullRequest) -> list[dict[str, Any]]:
    """Notes oldest first: reviews as comments, approvals and the ready mark as system notes."""
    notes: list[dict[str, Any]] = []
    if pull.ready_at is not None:
        notes.append(
            {
                "author": pull.author,
                "system": True,
                "at": pull.ready_at,
                "body": "marked this merge request as **ready**",
            }
        )
    for review in pull.reviews:
        approved = review.state == "APPROVED"
        body = (
            "approved this merge request"
            if approved
            else (review.body or "Please have a look at this.")
        )
        notes.append(
            {"author": review.author, "system": approved, "at": review.submitted_at, "body": body}
        )
    notes.sort(key=lambda n: n["at"])
    for number, note in enumerate(notes, 1):
        note["id"] = pull.number * 1000 + number
    return notes


def note_json(base: str, note: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": note["id"],
        "type": None,
        "body": note["body"],
        "author": _user(base, note["author"]),
        "created_at": ts(note["at"]),
        "updated_at": ts(note["at"]),
        "system": note["system"],
        "noteable_type": "MergeRequest",
        "resolvable": False,
        "internal": False,
    }


def pipeline_json(
    base: str, repo: ds.Repo, iid: int, run: ds.WorkflowRun, full: bool
) -> dict[str, Any]:
    finished = run.status == "completed"
    status = RUN_STATUS.get(run.conclusion or "", "failed") if finished else "running"
    body: dict[str, Any] = {
        "id": run.id,
        "iid": iid,
        "project_id": repo.id,
        "status": status,
        "source": EVENT_SOURCE.get(run.event, run.event),
        "ref": run.branch,
        "sha": run.sha,
        "name": run.workflow,
        "web_url": f"{base}/{repo.full_name}/-/pipelines/{run.id}",
        "created_at": ts(run.created_at),
        "updated_at": ts(run.updated_at),
    }
    if full:  # the list endpoint has no timings: only GET /pipelines/:id does
        body.update(
            started_at=ts(run.started_at),
            finished_at=ts(run.updated_at) if finished else None,
            duration=int((run.updated_at - run.started_at).total_seconds()) if finished else None,
            queued_duration=int((run.started_at - run.created_at).total_seconds()),
            before_sha="0" * 40,
            tag=False,
            yaml_errors=None,
            coverage=None,
            detailed_status={"group": status, "text": status, "label": status},
        )
    return body


def deployment_json(base: str, repo: ds.Repo, iid: int, dep: ds.Deployment) -> dict[str, Any]:
    # GitLab has no "inactive": a superseded deployment keeps its own last real status.
    states = [s for s in dep.statuses if s.state != "inactive"]
    status = DEPLOYMENT_STATUS.get(states[-1].state, "created") if states else "created"
    ended = next((s.at for s in states if s.state in ("success", "failure", "error")), None)
    updated = states[-1].at if states else dep.created_at
    commit = {
        "id": dep.sha,
        "short_id": dep.sha[:8],
        "title": "Deploy",
        "message": "Deploy",
        "author_name": dep.creator,
        "created_at": ts(dep.created_at),
    }
    return {
        "id": dep.id,
        "iid": iid,
        "ref": dep.ref,
        "sha": dep.sha,
        "status": status,
        "created_at": ts(dep.created_at),
        "updated_at": ts(updated),
        "user": _user(base, dep.creator),
        "environment": {
            "id": 1 if dep.environment == "production" else 2,
            "name": dep.environment,
            "external_url": f"https://{dep.environment}.example.com",
        },
        "deployable": {
            "id": dep.id * 10,
            "name": "deploy",
            "stage": "deploy",
            "ref": dep.ref,
            "status": status,
            "created_at": ts(dep.created_at),
            "started_at": ts(dep.created_at),
            "finished_at": ts(ended),
            "commit": commit,
            "tag": False,
            "pipeline": {
                "id": dep.id * 10,
                "ref": dep.ref,
                "sha": dep.sha,
                "status": status,
                "web_url": f"{base}/{repo.full_name}/-/pipelines/{dep.id * 10}",
            },
        },
    }


def release_json(base: str, repo: ds.Repo, release: ds.Release) -> dict[str, Any]:
    return {
        "tag_name": release.tag,
        "name": release.name,
        "description": f"{release.name} notes",
        "created_at": ts(release.created_at),
        "released_at": ts(release.published_at or release.created_at),
        "upcoming_release": False,
        "author": _user(base, "alice"),
        "commit": {"id": release.sha, "short_id": release.sha[:8], "title": release.name},
        "commit_path": f"/{repo.full_name}/-/commit/{release.sha}",
        "tag_path": f"/{repo.full_name}/-/tags/{release.tag}",
        "_links": {"self": f"{base}/{repo.full_name}/-/releases/{release.tag}"},
    }


def issue_json(base: str, repo: ds.Repo, issue: ds.Issue) -> dict[str, Any]:
    kind = "incident" if issue.incident else "issue"
    return {
        "id": repo.id * 100_000 + issue.number,
        "iid": issue.number,
        "project_id": repo.id,
        "title": issue.title,
        "description": _mr_refs(issue.body),
        "state": "closed" if issue.closed_at else "opened",
        "created_at": ts(issue.created_at),
        "updated_at": ts(issue.updated_at),
        "closed_at": ts(issue.closed_at),
        "labels": list(issue.labels),
        "author": _user(base, issue.author),
        "assignees": [],
        "issue_type": kind,
        "type": kind.upper(),
        "severity": "UNKNOWN",
        "confidential": False,
        "web_url": f"{base}/{repo.full_name}/-/issues/{issue.number}",
        "references": {"short": f"#{issue.number}", "full": f"{repo.full_name}#{issue.number}"},
    }


def tree_entries(files: dict[str, str], recursive: bool) -> list[dict[str, Any]]:
    """Directories then files; without `recursive` only the top level, as GitLab lists them."""
    dirs = sorted({"/".join(p.split("/")[:n]) for p in files for n in range(1, p.count("/") + 1)})
    blobs = sorted(files)
    if not recursive:
        dirs, blobs = [d for d in dirs if "/" not in d], [b for b in blobs if "/" not in b]
    return [_tree_entry(d, "tree") for d in dirs] + [_tree_entry(b, "blob") for b in blobs]


def _tree_entry(path: str, kind: str) -> dict[str, Any]:
    return {
        "id": hashlib.sha1(path.encode()).hexdigest(),
        "name": path.rsplit("/", 1)[-1],
        "type": kind,
        "path": path,
        "mode": "040000" if kind == "tree" else "100644",
    }


# ---------------------------------------------------------------------------- GraphQL


def _graphql_schema(app: GitLabApp) -> GraphQLSchema:
    sdl = resources.files("devmetrics.sandbox").joinpath("data/gitlab-schema.graphql").read_text()
    schema = build_schema(sdl)
    resolvers: dict[tuple[str, str], Callable[..., Any]] = {
        ("Query", "project"): lambda root, info, fullPath: _gql_project(app, fullPath),
        ("Project", "mergeRequests"): _gql_merge_requests,
        ("Project", "pipeline"): _gql_pipeline,
        ("MergeRequest", "commits"): _connection_of("_commits"),
        ("MergeRequest", "notes"): _connection_of("_notes"),
        ("MergeRequest", "approvedBy"): _connection_of("_approvers"),
    }
    for (type_name, field_name), resolver in resolvers.items():
        schema.get_type(type_name).fields[field_name].resolve = resolver  # type: ignore[union-attr]
    return schema


def _gql_project(app: GitLabApp, full_path: str) -> dict[str, Any] | None:
    repo = app.project(full_path)
    if repo is None:
        return None
    return {
        "id": f"gid://gitlab/Project/{repo.id}",
        "fullPath": repo.full_name,
        "name": repo.name,
        "_repo": repo,
    }


def _gql_merge_requests(
    project: dict[str, Any],
    info: Any,
    iids: list[str] | None = None,
    first: int | None = None,
    after: str | None = None,
    **_: Any,
) -> dict[str, Any]:
    repo: ds.Repo = project["_repo"]
    pulls = [p for p in repo.pulls if iids is None or str(p.number) in iids]
    return _page([_gql_mr(repo, p) for p in sorted(pulls, key=lambda p: -p.number)], first, after)


def _gql_user(username: str) -> dict[str, Any]:
    return {
        "id": f"gid://gitlab/User/{_user('', username)['id']}",
        "username": username,
        "bot": username.endswith("[bot]"),
    }


def _gql_mr(repo: ds.Repo, pull: ds.PullRequest) -> dict[str, Any]:
    commits = [
        {
            "id": f"gid://gitlab/CommitPresenter/{c.sha}",
            "sha": c.sha,
            "title": c.message,
            "authoredDate": ts(c.authored_at),
            "committedDate": ts(c.authored_at),
        }
        for c in reversed(pull.commits)
    ]  # newest first, as git log and GitLab list them
    notes = [
        {
            "id": f"gid://gitlab/Note/{n['id']}",
            "body": n["body"],
            "system": n["system"],
            "createdAt": ts(n["at"]),
            "author": _gql_user(n["author"]),
        }
        for n in mr_notes(pull)
    ]
    approvers = dict.fromkeys(r.author for r in pull.reviews if r.state == "APPROVED")
    return {
        "id": f"gid://gitlab/MergeRequest/{repo.id * 100_000 + pull.number}",
        "iid": str(pull.number),
        "title": pull.title,
        "draft": pull.draft,
        "createdAt": ts(pull.created_at),
        "updatedAt": ts(pull.updated_at),
        "mergedAt": ts(pull.merged_at),
        "mergeCommitSha": pull.merge_commit_sha,
        "sourceBranch": pull.head,
        "targetBranch": pull.base,
        "author": _gql_user(pull.author),
        "_commits": commits,
        "_notes": notes,
        "_approvers": [_gql_user(a) for a in approvers],
    }


def _gql_pipeline(
    project: dict[str, Any], info: Any, iid: str | None = None, sha: str | None = None
) -> dict[str, Any] | None:
    repo: ds.Repo = project["_repo"]
    if iid is not None and str(iid).isdigit() and 0 < int(iid) <= len(repo.runs):
        found = [(int(iid), repo.runs[int(iid) - 1])]  # iids number the runs from 1
    else:
        found = [(n, r) for n, r in enumerate(repo.runs, 1) if sha and r.sha == sha and iid is None]
    for number, run in found[:1]:
        body = pipeline_json("", repo, number, run, full=True)
        return {
            "id": f"gid://gitlab/Ci::Pipeline/{run.id}",
            "iid": str(number),
            "sha": run.sha,
            "ref": run.branch,
            "source": body["source"],
            "status": body["status"].upper(),
            "createdAt": body["created_at"],
            "updatedAt": body["updated_at"],
            "startedAt": body["started_at"],
            "finishedAt": body["finished_at"],
            "duration": body["duration"],
            "queuedDuration": body["queued_duration"],
        }
    return None


def _connection_of(key: str) -> Callable[..., dict[str, Any]]:
    def resolve(
        parent: dict[str, Any],
        info: Any,
        first: int | None = None,
        after: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        return _page(parent[key], first, after)

    return resolve


def _page(items: list[Any], first: int | None, after: str | None) -> dict[str, Any]:
    """A cursor connection: GitLab caps `first` at 100 and uses opaque base64 cursors."""
    start = int(base64.b64decode(after).decode()) if after else 0
    size = min(first or 100, 100)
    chunk = items[start : start + size]
    end = start + len(chunk)
    cursor = lambda n: base64.b64encode(str(n).encode()).decode()  # noqa: E731
    return {
        "nodes": chunk,
        "count": len(items),
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": cursor(start),
            "endCursor": cursor(end),
        },
    }
