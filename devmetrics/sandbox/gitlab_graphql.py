"""GitLab's GraphQL API in the sandbox: the schema subset in data/gitlab-schema.graphql.

Queries are parsed and validated against that schema (a wrong field fails as it would on
gitlab.com) and resolved over the dataset, with GitLab's cursor connections.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

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
from devmetrics.sandbox.gitlab_bodies import BOT_USERS, mr_notes, pipeline_json, ts, user_id, username

if TYPE_CHECKING:
    from devmetrics.sandbox.gitlab import GitLabApp

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


def graphql_schema(app: GitLabApp) -> GraphQLSchema:
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


def _gql_user(name: str) -> dict[str, Any]:
    return {
        "id": f"gid://gitlab/User/{user_id(name)}",
        "username": username(name),
        "bot": username(name) in BOT_USERS,
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
