"""Write endpoints for the sandbox GitHub, and a fake Slack incoming webhook.

The digest posts where people read: an issue (edited in place on the next run), its
comments, a discussion. `add_post_routes(app)` adds those endpoints to any sandbox `App`
(the GitHub app at startup, or a bare App in tests). Its routes go in front of the app's
own, keep posted issues apart, and hand everything else to the app's own routes, so issue
listings still show the dataset's issues (incidents) next to the posted ones.

GraphQL: discussion queries and mutations are executed against GitHub's published schema
(graphql-core), so a wrong field in the publisher fails here as it would on github.com.
Any other GraphQL request goes on to the app's own /graphql route.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devmetrics.sandbox.server import App, Handler, Request, Response, Route, paginate

BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
FIRST_NUMBER = 100_000  # posted issues never collide with the dataset's numbers
DISCUSSION_WORDS = ("discussion", "Discussion")


@dataclass
class Posts:
    """What was posted, per repository full name."""

    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> comment
    discussions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    categories: tuple[str, ...] = ("General", "Announcements")
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_NUMBER))
    lock: threading.Lock = field(default_factory=threading.Lock)
    handlers: set[Handler] = field(default_factory=set)  # the post routes' own handlers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _authorised(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith(("token ", "bearer "))


def _unauthorised() -> Response:
    return Response(401, {"message": "Requires authentication"})


def add_post_routes(app: App) -> Posts:
    """Register the write routes on `app` (ahead of its own) and return their store."""
    posts = Posts()
    setattr(app, "posts", posts)  # noqa: B010 - any App, not only GitHub's, may carry them
    mine = _routes(app, posts)
    for route in mine:
        route.handler = _with_fallback(app, route.handler, posts.handlers)
    app.routes[:0] = mine
    return posts


def _with_fallback(app: App, handler: Handler, mine: set[Handler]) -> Handler:
    """A handler answering None defers to the app's own route for the same request."""
    def handle(request: Request, **params: str) -> Any:
        result = handler(request, **params)
        return delegate(app, request, mine) if result is None else result
    mine.add(handle)
    return handle


def delegate(app: App, request: Request, skip: set[Handler]) -> Response:
    """Answer `request` with the app's first matching route that is not one of `skip`."""
    for route in app.routes:
        found = route.pattern.match(request.path)
        if route.handler not in skip and found and route.method == request.method:
            result = route.handler(request, **found.groupdict())
            return result if isinstance(result, Response) else Response(200, result)
    return app.not_found(request)


def _routes(app: App, posts: Posts) -> list[Route]:
    scratch = App()
    table: list[tuple[str, str, Callable[..., Response | None]]] = [
        ("GET", "", _list_issues), ("POST", "", _create_issue),
        ("GET", "/comments/{cid}", _get_comment), ("PATCH", "/comments/{cid}", _edit_comment),
        ("DELETE", "/comments/{cid}", _delete_comment),
        ("GET", "/{number}", _get_issue), ("PATCH", "/{number}", _edit_issue),
        ("GET", "/{number}/comments", _list_comments), ("POST", "/{number}/comments", _add_comment),
    ]
    for method, suffix, handler in table:
        scratch.route(method, "/repos/{owner}/{repo}/issues" + suffix)(_bind(app, posts, handler))
    scratch.route("POST", "/graphql")(lambda request: _graphql(posts, request))
    return scratch.routes


def _bind(app: App, posts: Posts, handler: Callable[..., Response | None]) -> Handler:
    def bound(request: Request, owner: str, repo: str, **params: str) -> Response | None:
        if request.method != "GET" and not _authorised(request):
            return _unauthorised()  # every write needs a token, as on GitHub
        return handler(app, posts, request, f"{owner}/{repo}", **params)
    return bound


# ------------------------------------------------------------------------------ issues

def _find_issue(posts: Posts, repo: str, number: str) -> dict[str, Any] | None:
    return next((i for i in posts.issues.get(repo, []) if str(i["number"]) == number), None)


def _public(posts: Posts, issue: dict[str, Any], request: Request, repo: str) -> dict[str, Any]:
    """The issue as GitHub's REST API shows it."""
    base = f"{request.base_url}/repos/{repo}"
    url = f"{base}/issues/{issue['number']}"
    labels = [{"name": name, "url": f"{base}/labels/{name}"} for name in issue["labels"]]
    shown = {k: v for k, v in issue.items() if k != "comment_ids"}
    return {**shown, "labels": labels, "url": url, "comments_url": f"{url}/comments",
            "html_url": f"https://github.sandbox/{repo}/issues/{issue['number']}",
            "repository_url": base, "user": BOT,
            "comments": sum(1 for c in issue["comment_ids"] if c in posts.comments)}


def _create_issue(_app: App, posts: Posts, request: Request, repo: str) -> Response:
    data = request.json() or {}
    if not data.get("title"):
        return Response(422, {"message": "Validation Failed", "errors": [{"field": "title"}]})
    with posts.lock:
        number = next(posts.ids)
        issue = {"id": number, "node_id": f"I_{number}", "number": number,
                 "title": data["title"], "body": data.get("body") or "", "state": "open",
                 "labels": list(data.get("labels") or []), "created_at": _now(),
                 "updated_at": _now(), "comment_ids": []}
        posts.issues.setdefault(repo, []).insert(0, issue)  # newest first, as GitHub lists
    return Response(201, _public(posts, issue, request, repo))


def _edit_issue(_app: App, posts: Posts, request: Request, repo: str, number: str) -> Response | None:
    issue = _find_issue(posts, repo, number)
    if issue is None:
        return None
    data = request.json() or {}
    with posts.lock:
        issue.update({k: data[k] for k in ("title", "body", "state") if k in data})
        if "labels" in data:
            issue["labels"] = [str(label) for label in data["labels"]]
        issue["updated_at"] = _now()
    return Response(200, _public(posts, issue, request, repo))


def _get_issue(_app: App, posts: Posts, request: Request, repo: str, number: str) -> Response | None:
    issue = _find_issue(posts, repo, number)
    return None if issue is None else Response(200, _public(posts, issue, request, repo))


def _matches(issue: dict[str, Any], request: Request) -> bool:
    state = request.arg("state", "open")
    wanted = [label for label in (request.arg("labels") or "").split(",") if label]
    creator = request.arg("creator")
    return ((state == "all" or issue["state"] == state)
            and all(label in issue["labels"] for label in wanted)
            and creator in (None, BOT["login"]))


def _list_issues(app: App, posts: Posts, request: Request, repo: str) -> Response | None:
    if repo not in posts.issues:
        return None  # nothing posted here: the app's own listing answers as before
    own = [_public(posts, i, request, repo) for i in posts.issues[repo] if _matches(i, request)]
    return paginate(request, own + _fallback_items(app, request, posts.handlers))


def _fallback_items(app: App, request: Request, skip: set[Handler],
                    max_pages: int = 20) -> list[Any]:
    """Every item the app's own listing gives for the same filters (all its pages)."""
    items: list[Any] = []
    for page in range(1, max_pages + 1):
        query = {**request.query, "page": [str(page)], "per_page": ["100"]}
        sub = Request(request.method, request.path, query, request.headers, b"", request.base_url)
        response = delegate(app, sub, skip)
        if response.status != 200 or not isinstance(response.body, list):
            break
        items += response.body
        if 'rel="next"' not in response.headers.get("Link", ""):
            break
    return items


# ---------------------------------------------------------------------------- comments

def _comment_json(comment: dict[str, Any], request: Request) -> dict[str, Any]:
    url = f"{request.base_url}/repos/{comment['repo']}/issues/comments/{comment['id']}"
    return {"id": comment["id"], "node_id": f"IC_{comment['id']}", "body": comment["body"],
            "user": BOT, "url": url, "issue_url": comment["issue_url"],
            "html_url": f"https://github.sandbox/{comment['repo']}#issuecomment-{comment['id']}",
            "created_at": comment["created_at"], "updated_at": comment["updated_at"]}


def _add_comment(_app: App, posts: Posts, request: Request, repo: str, number: str) -> Response | None:
    issue = _find_issue(posts, repo, number)
    if issue is None:
        return None
    with posts.lock:
        cid = next(posts.ids)
        comment = {"id": cid, "repo": repo, "body": (request.json() or {}).get("body", ""),
                   "issue_url": f"{request.base_url}/repos/{repo}/issues/{number}",
                   "created_at": _now(), "updated_at": _now()}
        posts.comments[cid] = comment
        issue["comment_ids"].append(cid)
    return Response(201, _comment_json(comment, request))


def _list_comments(_app: App, posts: Posts, request: Request, repo: str,
                   number: str) -> Response | None:
    issue = _find_issue(posts, repo, number)
    if issue is None:
        return None
    found = [posts.comments[c] for c in issue["comment_ids"] if c in posts.comments]
    return paginate(request, [_comment_json(c, request) for c in found])


def _comment(posts: Posts, cid: str) -> dict[str, Any] | None:
    return posts.comments.get(int(cid)) if cid.isdigit() else None


def _get_comment(_app: App, posts: Posts, request: Request, _repo: str, cid: str) -> Response | None:
    comment = _comment(posts, cid)
    return None if comment is None else Response(200, _comment_json(comment, request))


def _edit_comment(_app: App, posts: Posts, request: Request, _repo: str, cid: str) -> Response | None:
    comment = _comment(posts, cid)
    if comment is None:
        return None
    with posts.lock:
        comment.update(body=(request.json() or {}).get("body", ""), updated_at=_now())
    return Response(200, _comment_json(comment, request))


def _delete_comment(_app: App, posts: Posts, request: Request, _repo: str, cid: str) -> Response | None:
    if _comment(posts, cid) is None:
        return None
    with posts.lock:
        posts.comments.pop(int(cid))
    return Response(204, None)


# --------------------------------------------------------------------------- graphql

def _graphql(posts: Posts, request: Request) -> Response | None:
    body = request.json() or {}
    query = str(body.get("query") or "")
    if not any(word in query for word in DISCUSSION_WORDS):
        return None  # not a discussion: the app's own GraphQL route answers
    if not _authorised(request):
        return _unauthorised()
    from graphql import execute_sync, parse, validate

    from devmetrics.sandbox.github_graphql import github_schema

    document = parse(query)
    errors = validate(github_schema(), document)
    if errors:
        return Response(200, {"errors": [{"message": e.message} for e in errors]})
    result = execute_sync(github_schema(), document, root_value=_Root(posts),
                          variable_values=body.get("variables") or {})
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [{"message": e.message, "type": "NOT_FOUND"} for e in result.errors]
    return Response(200, payload)


class _Root:
    """Resolvers for the discussion fields; graphql-core calls each with (info, **args)."""

    def __init__(self, posts: Posts) -> None:
        self.posts = posts

    def repository(self, _info: Any, owner: str, name: str, **_: Any) -> dict[str, Any]:
        repo = f"{owner}/{name}"
        categories = [{"id": f"DIC_{c}", "name": c, "slug": c.lower()} for c in self.posts.categories]
        return {"id": f"R_{repo}", "nameWithOwner": repo,
                "discussionCategories": lambda _i, **_a: {"nodes": categories, "totalCount": len(categories)},
                "discussions": lambda _i, **a: self._discussions(repo, a)}

    def _discussions(self, repo: str, args: dict[str, Any]) -> dict[str, Any]:
        found = [d for d in self.posts.discussions.get(repo, [])
                 if args.get("categoryId") in (None, d["category"]["id"])]
        nodes = [self._discussion(d) for d in found[: args.get("first") or 100]]
        return {"nodes": nodes, "totalCount": len(found)}

    def _discussion(self, stored: dict[str, Any]) -> dict[str, Any]:
        comments = [{"id": f"DC_{c}", "body": self.posts.comments[c]["body"]}
                    for c in stored["comment_ids"] if c in self.posts.comments]
        return {**stored, "comments": lambda _i, **_a: {"nodes": comments, "totalCount": len(comments)}}

    def createDiscussion(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        repo = str(input["repositoryId"]).removeprefix("R_")
        category = str(input["categoryId"]).removeprefix("DIC_")
        with self.posts.lock:
            number = next(self.posts.ids)
            stored = {"id": f"D_{number}", "number": number, "title": input["title"],
                      "body": input["body"], "url": f"https://github.sandbox/{repo}/discussions/{number}",
                      "category": {"id": f"DIC_{category}", "name": category}, "comment_ids": []}
            self.posts.discussions.setdefault(repo, []).insert(0, stored)
        return {"discussion": self._discussion(stored)}

    def _stored(self, node_id: str) -> dict[str, Any]:
        found = [d for ds in self.posts.discussions.values() for d in ds if d["id"] == node_id]
        if not found:
            raise ValueError(f"Could not resolve to a node with the global id of '{node_id}'")
        return found[0]

    def updateDiscussion(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        stored = self._stored(str(input["discussionId"]))
        with self.posts.lock:
            stored.update({k: input[k] for k in ("title", "body") if input.get(k) is not None})
        return {"discussion": self._discussion(stored)}

    def addDiscussionComment(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        stored = self._stored(str(input["discussionId"]))
        with self.posts.lock:
            cid = next(self.posts.ids)
            self.posts.comments[cid] = {"id": cid, "body": input["body"]}
            stored["comment_ids"].append(cid)
        return {"comment": {"id": f"DC_{cid}", "body": input["body"]}}

    def updateDiscussionComment(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        cid = int(str(input["commentId"]).removeprefix("DC_"))
        with self.posts.lock:
            self.posts.comments[cid]["body"] = input["body"]
        return {"comment": {"id": f"DC_{cid}", "body": input["body"]}}


# ------------------------------------------------------------------------------ slack

class FakeSlack(App):
    """An incoming-webhook endpoint: every POST is kept in `posts`; answers "ok" as Slack."""

    name = "slack"

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.route("POST", "/{path:path}")(self._receive)

    def _receive(self, request: Request, path: str) -> Response:
        self.posts.append({"path": path, "json": request.json(),
                           "content_type": request.headers.get("content-type", "")})
        return Response(200, b"ok", {"Content-Type": "text/plain"})
