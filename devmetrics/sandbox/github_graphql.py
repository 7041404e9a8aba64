"""The sandbox's GitHub GraphQL API: GitHub's published schema, executed for real.

Every query is parsed and validated against `data/github-schema.graphql` (GitHub's public
schema) with graphql-core, then executed over the dataset with plain dict resolvers: a
field whose value is callable receives the field's arguments, so connections honour
`first`/`after`/`orderBy` as GitHub's do. Errors come back in GitHub's shape.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from importlib import resources
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute_sync,
    parse,
    validate,
)

from devmetrics.sandbox.dataset import Comment, Dataset, Deployment, PullRequest, Repo, Review

_schema: GraphQLSchema | None = None
_schema_lock = threading.Lock()
MAX_PAGE = 100  # GitHub refuses first/last above 100


def github_schema() -> GraphQLSchema:
    """GitHub's schema, built once per process (it takes about a second and a half)."""
    global _schema
    with _schema_lock:
        if _schema is None:
            text = resources.files("devmetrics.sandbox").joinpath("data/github-schema.graphql")
            # The published SDL defines two EnterpriseOwnerInfo fields twice and deprecates
            # some interface fields only on the implementations, which graphql-core's own
            # schema checks refuse; GitHub serves it as is, so trust it rather than edit it.
            # Queries are still validated against it in full.
            _schema = build_schema(text.read_text(encoding="utf-8"), assume_valid_sdl=True,
                                   assume_valid=True)
        return _schema


def validation_errors(query: str) -> list[GraphQLError]:
    """Parse and validate a query against GitHub's schema (used by the tests too)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return [exc]
    return validate(github_schema(), document)


def run_query(dataset: Dataset, body: Any, base_url: str,
              rate: dict[str, Any] | None = None) -> dict[str, Any]:
    """Answer one POST /graphql body the way GitHub does (always HTTP 200)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"errors": [{"message": "A query attribute must be specified and must be a string."}]}
    errors = validation_errors(body["query"])
    if errors:
        return {"errors": [_github_error(error) for error in errors]}
    root = {"repository": partial(_repository, dataset, base_url), "rateLimit": rate or {}}
    result = execute_sync(github_schema(), parse(body["query"]), root_value=root,
                          variable_values=body.get("variables") or {})
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [_github_error(error) for error in result.errors]
    return answer


def _github_error(error: GraphQLError) -> dict[str, Any]:
    formatted = dict(error.formatted)
    message = str(formatted.get("message", ""))
    # graphql-core says "Cannot query field 'x' on type 'T'."; GitHub says it this way.
    if message.startswith("Cannot query field "):
        parts = message.split("'")
        if len(parts) >= 4:
            formatted["message"] = f"Field '{parts[1]}' doesn't exist on type '{parts[3]}'"
            formatted["extensions"] = {"code": "undefinedField", "typeName": parts[3],
                                       "fieldName": parts[1]}
    return formatted


# ------------------------------------------------------------------------- connections

def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"cursor:v2:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1]) + 1
    except (ValueError, IndexError):
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from None


def _page_bounds(name: str, total: int, args: dict[str, Any]) -> tuple[int, int]:
    first, last = args.get("first"), args.get("last")
    size = first if first is not None else last
    if size is None:
        raise GraphQLError(f"You must provide a `first` or `last` value to properly paginate "
                           f"the `{name}` connection.")
    if size > MAX_PAGE or size < 0:
        which = "first" if first is not None else "last"
        raise GraphQLError(f"Requesting {size} records on the `{name}` connection exceeds the "
                           f"`{which}` limit of {MAX_PAGE} records.")
    start = _decode_cursor(args.get("after"))
    stop = total
    if args.get("before"):
        stop = min(stop, _decode_cursor(args["before"]) - 1)
    if first is not None:
        return start, min(stop, start + size)
    return max(start, stop - size), stop


def connection(name: str, items: Sequence[Any], build: Callable[[Any], dict[str, Any]],
               args: dict[str, Any]) -> dict[str, Any]:
    """A GitHub connection (nodes, edges, pageInfo, totalCount) over `items`."""
    start, stop = _page_bounds(name, len(items), args)
    chunk = list(enumerate(items[start:stop], start=start))
    return {
        "totalCount": len(items),
        "pageInfo": {"hasNextPage": stop < len(items), "hasPreviousPage": start > 0,
                     "startCursor": _encode_cursor(start) if chunk else None,
                     "endCursor": _encode_cursor(stop - 1) if chunk else None},
        "nodes": lambda _info: [build(item) for _, item in chunk],
        "edges": lambda _info: [{"cursor": _encode_cursor(i), "node": build(item)} for i, item in chunk],
    }


def _field(name: str, items: Callable[[dict[str, Any]], Sequence[Any]],
           build: Callable[[Any], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A connection field: graphql-core calls it with the field's arguments."""
    return lambda _info, **args: connection(name, items(args), build, args)


def _ordered(items: Sequence[Any], args: dict[str, Any], keys: dict[str, str]) -> list[Any]:
    order = args.get("orderBy") or {}
    key = keys.get(order.get("field", ""), keys["default"])
    return sorted(items, key=lambda item: getattr(item, key),
                  reverse=order.get("direction") == "DESC")


# ------------------------------------------------------------------------------ values

def iso(at: datetime | None) -> str | None:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def actor(login: str, is_bot: bool) -> dict[str, Any]:
    # GitHub's GraphQL names a bot without the "[bot]" suffix that REST shows.
    if is_bot:
        return {"__typename": "Bot", "login": login.removesuffix("[bot]")}
    return {"__typename": "User", "login": login}


def _repository(dataset: Dataset, base_url: str, _info: Any, owner: str, name: str,
                **_: Any) -> dict[str, Any] | None:
    repo = dataset.repo("github", f"{owner}/{name}")
    if repo is None:
        raise GraphQLError(f"Could not resolve to a Repository with the name '{owner}/{name}'.",
                           extensions={"type": "NOT_FOUND"})
    html = base_url.rsplit("/api/v3", 1)[0]
    return {
        "__typename": "Repository", "id": f"R_{repo.id}", "databaseId": repo.id,
        "name": repo.name, "nameWithOwner": repo.full_name, "isArchived": repo.archived,
        "isFork": repo.fork, "url": f"{html}/{repo.full_name}",
        "defaultBranchRef": {"name": repo.default_branch},
        "pullRequests": _field("pullRequests", partial(_pulls, repo),
                               partial(_pull_node, f"{html}/{repo.full_name}")),
        "deployments": _field("deployments", partial(_deployments, repo), _deployment_node),
    }


_PULL_STATES = {"OPEN": lambda p: p.closed_at is None, "MERGED": lambda p: p.merged_at is not None,
                "CLOSED": lambda p: p.closed_at is not None and p.merged_at is None}


def _pulls(repo: Repo, args: dict[str, Any]) -> list[PullRequest]:
    states = args.get("states")
    pulls = [p for p in repo.pulls if not states or any(_PULL_STATES[s](p) for s in states)]
    for arg, attr in (("baseRefName", "base"), ("headRefName", "head")):
        if args.get(arg):
            pulls = [p for p in pulls if getattr(p, attr) == args[arg]]
    labels = args.get("labels")
    if labels:
        pulls = [p for p in pulls if set(labels) & set(p.labels)]
    keys = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "default": "created_at"}
    return _ordered(pulls, args, keys)


def _pull_state(pull: PullRequest) -> str:
    return "MERGED" if pull.merged_at else "CLOSED" if pull.closed_at else "OPEN"


def _pull_node(repo_url: str, pull: PullRequest) -> dict[str, Any]:
    return {
        "__typename": "PullRequest", "id": f"PR_{pull.number}", "number": pull.number,
        "title": pull.title, "body": pull.body, "url": f"{repo_url}/pull/{pull.number}",
        "author": actor(pull.author, pull.author_is_bot), "isDraft": pull.draft,
        "state": _pull_state(pull), "merged": pull.merged_at is not None,
        "createdAt": iso(pull.created_at), "updatedAt": iso(pull.updated_at),
        "mergedAt": iso(pull.merged_at), "closedAt": iso(pull.closed_at),
        "baseRefName": pull.base, "headRefName": pull.head,
        "mergeCommit": {"oid": pull.merge_commit_sha} if pull.merge_commit_sha else None,
        "labels": _field("labels", lambda _a: pull.labels, lambda n: {"name": n}),
        "commits": _field("commits", lambda _a: pull.commits, lambda c: {
            "commit": {"oid": c.sha, "authoredDate": iso(c.authored_at),
                       "committedDate": iso(c.authored_at), "message": c.message}}),
        "reviews": _field("reviews", lambda _a: pull.reviews, _review_node),
        "comments": _field("comments", lambda _a: pull.comments, _comment_node),
        "timelineItems": _field("timelineItems", partial(_timeline, pull), lambda e: e),
    }


def _review_node(review: Review) -> dict[str, Any]:
    return {"author": actor(review.author, review.author_is_bot), "state": review.state,
            "body": review.body, "submittedAt": iso(review.submitted_at),
            "createdAt": iso(review.submitted_at)}


def _comment_node(comment: Comment) -> dict[str, Any]:
    """An IssueComment: a PR's conversation comment."""
    return {"__typename": "IssueComment", "author": actor(comment.author, comment.author_is_bot),
            "body": comment.body, "createdAt": iso(comment.created_at),
            "publishedAt": iso(comment.created_at), "updatedAt": iso(comment.created_at)}


def _timeline(pull: PullRequest, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The events the dataset knows: the last time the PR left draft."""
    types = args.get("itemTypes")
    if pull.ready_at is None or (types and "READY_FOR_REVIEW_EVENT" not in types):
        return []
    return [{"__typename": "ReadyForReviewEvent", "createdAt": iso(pull.ready_at)}]


def _deployments(repo: Repo, args: dict[str, Any]) -> list[Deployment]:
    deployments = repo.deployments
    if args.get("environments"):
        deployments = [d for d in deployments if d.environment in args["environments"]]
    return _ordered(deployments, args, {"CREATED_AT": "created_at", "default": "created_at"})


# Deployment.state summarises the latest status the way github.com does.
_DEPLOYMENT_STATE = {"success": "ACTIVE", "inactive": "INACTIVE", "failure": "FAILURE",
                     "error": "ERROR", "in_progress": "IN_PROGRESS", "queued": "QUEUED",
                     "pending": "PENDING"}


def _deployment_node(dep: Deployment) -> dict[str, Any]:
    statuses = [{"state": s.state.upper(), "createdAt": iso(s.at), "updatedAt": iso(s.at),
                 "description": ""} for s in reversed(dep.statuses)]  # newest first
    latest = dep.statuses[-1].state if dep.statuses else "pending"
    return {
        "__typename": "Deployment", "id": f"DE_{dep.id}", "databaseId": dep.id,
        "environment": dep.environment, "originalEnvironment": dep.environment,
        "commitOid": dep.sha, "task": "deploy", "description": "",
        # A deployment of a bare sha has no ref object in GraphQL.
        "ref": None if dep.sha.startswith(dep.ref) else {"name": dep.ref},
        "createdAt": iso(dep.created_at), "updatedAt": iso(dep.updated_at),
        "state": _DEPLOYMENT_STATE.get(latest, "PENDING"),
        "creator": actor(dep.creator, False),
        "latestStatus": statuses[0] if statuses else None,
        "statuses": _field("statuses", lambda _a: statuses, lambda s: s),
    }
