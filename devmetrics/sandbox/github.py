"""The sandbox's GitHub: REST v3 and GraphQL over the dataset, as PyGithub meets github.com.

Mounted at a prefix (e.g. "/github"), it answers both github.com-style paths
(`/repos/...`, `/graphql`) and Enterprise-style ones (`/api/v3/repos/...`, `/api/graphql`).
Payloads follow GitHub's own REST examples (`data/github-templates.json`) with dataset
values filled in and URLs pointing back at the sandbox. Every response carries GitHub's
rate-limit headers with separate core and graphql budgets; 304s are free as on GitHub.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from devmetrics.sandbox import github_graphql, github_rest
from devmetrics.sandbox.dataset import Dataset, Repo
from devmetrics.sandbox.github_graphql import iso
from devmetrics.sandbox.github_rest import RUNS_CAP
from devmetrics.sandbox.server import App, Request, Response, Route

ENTERPRISE_REST = "/api/v3"


def _rewrite_urls(text: str, api: str, html: str, full_name: str) -> str:
    """Point an example payload's URLs at the sandbox and at one repo."""
    text = re.sub(r"https://api\.github\.com/repos/[^/\"{]+/[^/\"{]+", f"{api}/repos/{full_name}", text)
    text = re.sub(r"https://(api|uploads)\.github\.com", api, text)
    text = re.sub(r"https://github\.com/(?!images/)[^/\"{]+/[^/\"{]+", f"{html}/{full_name}", text)
    return text.replace("https://github.com", html)


@dataclass
class Budget:
    """One rate-limit resource (core, graphql, search): a window of `limit` requests."""

    limit: int
    used: int = 0
    reset: int = 0

    def roll(self, now: float) -> None:
        if now >= self.reset:
            self.used, self.reset = 0, int(now) + 3600

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, resource: str) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset), "X-RateLimit-Used": str(self.used),
                "X-RateLimit-Resource": resource}


class GitHubApp(App):
    """GitHub REST v3 + GraphQL over the dataset's github repos."""

    name = "github"

    def __init__(self, dataset: Dataset, core_limit: int = 5000, graphql_limit: int = 5000) -> None:
        super().__init__()
        self.dataset = dataset
        self.budgets = {"core": Budget(core_limit), "graphql": Budget(graphql_limit),
                        "search": Budget(30)}
        self.refusal_status = 403  # what a used-up REST budget answers (GitHub sends 403 or 429)
        self.capped = 0  # listings that asked for results past GitHub's 1,000-run cap
        self.graphql_queries: list[str] = []  # every query received, for the tests
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], dict[str, Any]] = {}
        _register_routes(self)

    # ------------------------------------------------------------- paths and budgets

    def match(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        view = _github_view(request)
        if view.path != "/rate_limit" and not request.headers.get("authorization"):
            return _fixed_route(Response(401, {"message": "Requires authentication",
                                               "documentation_url": "https://docs.github.com/rest"}))
        resource = _resource(view.path)
        with self._lock:
            budget = self.budgets[resource]
            budget.roll(time.time())
            exhausted = budget.remaining == 0 and view.path != "/rate_limit"
        found = _fixed_route(_rate_limited(resource, self.refusal_status)) if exhausted else super().match(view)
        if found is None or view is request:
            return found
        route, params = found  # answer the Enterprise view; the server logs the real path
        return Route(route.method, route.pattern, route.name, lambda _req, **p: route.handler(view, **p)), params

    def after(self, request: Request, response: Response) -> None:
        path = _github_view(request).path
        resource = _resource(path)
        free = path == "/rate_limit" or _will_be_304(request, response)
        with self._lock:
            budget = self.budgets[resource]
            if not free and response.status != 401:
                budget.used += 1
            response.headers.update(budget.headers(resource))
        response.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")

    def exhaust(self, resource: str = "core", reset_in: float = 3600) -> None:
        """Use up a budget now (for tests of waiting and of giving up)."""
        self.limit(resource, 0, reset_in)

    def limit(self, resource: str, remaining: int, reset_in: float) -> None:
        """Leave `remaining` requests in a budget whose window resets `reset_in` seconds ahead."""
        with self._lock:
            budget = self.budgets[resource]
            budget.used, budget.reset = budget.limit - remaining, int(time.time() + reset_in)

    # ------------------------------------------------------------------- payloads

    def repo_or_404(self, owner: str, name: str) -> Repo | Response:
        repo = self.dataset.repo("github", f"{owner}/{name}")
        if repo is None:
            return Response(404, {"message": "Not Found",
                                  "documentation_url": "https://docs.github.com/rest"})
        return repo

    def template(self, kind: str, request: Request, full_name: str) -> dict[str, Any]:
        """GitHub's example for `kind`, URLs rewritten for this repo: a shallow copy, so handlers
        replace nested objects (dict(old, ...)) and never change them in place."""
        key = (kind, request.base_url, full_name)
        with self._lock:
            if key not in self._cache:
                api, html = request.base_url, request.base_url.rsplit(ENTERPRISE_REST, 1)[0]
                text = _rewrite_urls(json.dumps(github_rest.templates()[kind]), api, html, full_name)
                self._cache[key] = json.loads(text)
            return copy.copy(self._cache[key])

    def user(self, request: Request, login: str, is_bot: bool = False) -> dict[str, Any]:
        """GitHub's simple-user example for `login` (the octocat example, renamed)."""
        creator = self.template("deployment", request, "")["creator"]
        user = {k: v.replace("octocat", login) if isinstance(v, str) else v for k, v in creator.items()}
        user.update(id=_number(login), type="Bot" if is_bot else "User")
        return user


def _number(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:7], 16)


def _github_view(request: Request) -> Request:
    """The request as github.com paths: Enterprise serves REST under /api/v3 (kept in the
    base URL, so links and payload URLs keep it) and GraphQL at /api/graphql."""
    if request.path == "/api/graphql":
        return replace(request, path="/graphql")
    if request.path.startswith(ENTERPRISE_REST + "/"):
        return replace(request, path=request.path[len(ENTERPRISE_REST):],
                       base_url=request.base_url + ENTERPRISE_REST)
    return request


def _resource(path: str) -> str:
    return "graphql" if path in ("/graphql", "/api/graphql") else "search" if path.startswith("/search/") else "core"


def _fixed_route(response: Response) -> tuple[Route, dict[str, str]]:
    name = f"{response.status} response"
    return Route("*", re.compile(".*"), name, lambda _request: copy.copy(response)), {}


def _rate_limited(resource: str, status: int = 403) -> Response:
    """What GitHub answers once a budget is gone: 403 (or 429) for REST, 200 + RATE_LIMITED for GraphQL."""
    if resource == "graphql":
        return Response(200, {"errors": [{"type": "RATE_LIMITED", "message":
                                          "API rate limit already exceeded for user ID 1."}]})
    return Response(status, {"message": "API rate limit exceeded for user ID 1. If you reach out to "
                          "GitHub Support for help, please include the request ID.",
                          "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})


def _will_be_304(request: Request, response: Response) -> bool:
    """The server answers 304 after this hook; GitHub does not charge for those."""
    if request.method != "GET" or response.status != 200 or "if-none-match" not in request.headers:
        return False
    etag = response.headers.get("ETag") or 'W/"' + hashlib.sha1(response.encoded()).hexdigest() + '"'
    response.headers["ETag"] = etag
    return request.headers["if-none-match"] == etag


def _register_routes(app: GitHubApp) -> None:
    github_rest.register(app)
    app.route("POST", "/graphql")(lambda request: _graphql(app, request))


def _graphql(app: GitHubApp, request: Request) -> Response:
    try:
        body = request.json()
    except ValueError:
        return Response(400, {"message": "Problems parsing JSON"})
    if isinstance(body, dict) and isinstance(body.get("query"), str):
        with app._lock:
            app.graphql_queries.append(body["query"])
    budget = app.budgets["graphql"]
    rate = {"cost": 1, "limit": budget.limit, "remaining": max(0, budget.remaining - 1),
            "used": budget.used + 1, "nodeCount": 0,
            "resetAt": iso(datetime.fromtimestamp(budget.reset).astimezone())}
    return Response(200, github_graphql.run_query(app.dataset, body, request.base_url, rate))


__all__ = ["GitHubApp", "Budget", "RUNS_CAP"]
