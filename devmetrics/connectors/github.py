"""GitHub and GitHub Enterprise through PyGithub: records out, never the database.

Pull requests and deployments come from GraphQL (one request per 100, reviews, commits and
statuses included); workflow runs, releases, incidents, compare, trees and contents from
REST. PyGithub does the HTTP: its GithubRetry waits on rate limits and retries 5xx, its
PaginatedList follows Link headers. GitHub's quirks are handled in one section below.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from math import ceil
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.GithubObject import NonCompletableGithubObject
from github.PaginatedList import PaginatedList
from github.Requester import Requester
from sqlmodel import SQLModel
from urllib3.util.retry import Retry

from devmetrics import links, secrets
from devmetrics.config import GitHubSource, SyncSection
from devmetrics.connectors.base import Batch, Stream
from devmetrics.connectors.github_queries import DEPLOYMENTS, PAGE_SIZE, PULL_REQUESTS
from devmetrics.connectors.rate_limits import RateLimitGate, WaitTooLong, header
from devmetrics.errors import ConfigError, ForgeError, RateLimitExhausted, forge_message, http_status, network_reason
from devmetrics.models import Deployment, Incident, PipelineRun, PullRequest, Release, Repository
from devmetrics.repo_names import github_entry_problem, github_name_problem, github_repo_path, path_segments, segment

log = logging.getLogger(__name__)

STREAMS: tuple[Stream, ...] = (
    Stream("pull_requests", PullRequest, "updated_at", server_side_filter=False, signal="merges"),
    Stream("deployments", Deployment, "created_at", server_side_filter=False, signal="environments"),
    Stream("workflow_runs", PipelineRun, "created_at", server_side_filter=True, signal="workflow"),
    Stream("releases", Release, "created_at", server_side_filter=False, signal="releases"),
    Stream("incidents", Incident, "updated_at", server_side_filter=True),
)
RUNS_CAP = 1000  # a filtered workflow-run listing returns at most 1,000 runs
EPOCH = datetime(2008, 1, 1, tzinfo=UTC)  # before GitHub: "everything" for range filters
USER_AGENT = "devmetrics"


class RawItem(NonCompletableGithubObject):
    """A list item kept as the JSON GitHub sent.

    PyGithub's typed objects fetch the whole object again when code reads an attribute the
    list payload lacks (an issue's `pull_request`, say): one hidden request per item. Raw
    dicts make every request visible and countable.
    """

    def _initAttributes(self) -> None:
        self.data: dict[str, Any] = {}

    def _useAttributes(self, attributes: dict[str, Any]) -> None:
        self.data = attributes


def parse_time(value: str | None) -> datetime | None:
    """GitHub's ISO 8601 times ("...Z") as UTC-aware datetimes."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC) if value else None


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------ GitHub quirks

class CountingRetry(GithubRetry):
    """PyGithub's retry, plus a Retry-After cap, the rate-limit gate and a count of re-sends.

    GithubRetry caps waits for X-RateLimit-Reset at max_rate_limit_wait, but urllib3 sleeps
    whatever Retry-After says (secondary limits can say an hour): cap that too. A 403 or 429
    whose X-RateLimit-Remaining is 0 is the primary limit whatever its body says (GitHub
    answers either status), and urllib3 would retry a 429 at once: every such answer waits
    in the gate until the reset (rate_limits.py), as a first attempt would.
    """

    resource: str | None = None  # the budget of the request this retry re-sends

    def __init__(self, counter: RequestCounter | None = None, gate: RateLimitGate | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counter = counter or RequestCounter()
        self.gate = gate or RateLimitGate(self.max_rate_limit_wait or 0.0)

    def new(self, **kw: Any) -> CountingRetry:
        kw.update(counter=self.counter, gate=self.gate)
        return super().new(**kw)  # type: ignore[return-value]

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Any:
        resource = _observe(self.gate, url or "", response.headers if response is not None else None)
        wait = _retry_after(response)
        if wait is not None and self.max_rate_limit_wait is not None and wait > self.max_rate_limit_wait:
            raise RateLimitExceededExceedsMaxWait(response.status, {"message": "Retry-After too long"},
                                                  dict(response.headers), wait=wait)
        if response is not None and response.status in (403, 429) and self.gate.wait_needed(resource):
            retry = self._primary_limit(method, url, response, error, _pool, _stacktrace, resource)
        else:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        retry.resource = resource
        self.counter.add()  # urllib3 re-sends the request after this
        return retry

    def _primary_limit(self, method: str | None, url: str | None, response: Any, error: Exception | None,
                       _pool: Any, _stacktrace: Any, resource: str) -> Any:
        wait = self.gate.wait_needed(resource)
        if wait > self.gate.max_wait:
            raise RateLimitExceededExceedsMaxWait(response.status, {"message": "API rate limit exceeded"},
                                                  dict(response.headers), wait=wait)
        # urllib3's own step (counts the attempt, gives up after `total`): GithubRetry would
        # read the body, and a 429 or a reworded 403 would not be retried as a rate limit.
        return Retry.increment(self, method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)  # Retry-After, or the backoff
        if self.resource is not None:
            self.gate.hold(self.resource)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _resource(url: str) -> str:
    """The rate-limit budget a request draws on (GitHub's X-RateLimit-Resource names)."""
    path = urlsplit(url).path
    return "graphql" if path.endswith("/graphql") else "search" if "/search/" in path else "core"


def _observe(gate: RateLimitGate, url: str, headers: Any) -> str:
    """Tell the gate what an answer said about its budget; the budget's name."""
    resource = header(headers, "x-ratelimit-resource") or _resource(url)
    gate.observe(resource, header(headers, "x-ratelimit-remaining"), header(headers, "x-ratelimit-reset"))
    return resource


class RequestCounter:
    """HTTP requests sent: first attempts (counted at the requester) plus retries."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


def guard_requests(requester: Requester, gate: RateLimitGate, counter: RequestCounter) -> None:
    """Every first attempt waits in the gate, is counted, and reports its budget's state.

    PyGithub's lists, REST calls and GraphQL queries all go through requestJsonAndCheck.
    """
    send = requester.requestJsonAndCheck

    def guarded(verb: str, url: str, *args: Any, **kwargs: Any) -> Any:
        try:
            gate.hold(_resource(url))
        except WaitTooLong as exc:  # nothing sent: worded like PyGithub's own refusal
            raise RateLimitExceededExceedsMaxWait(403, {"message": str(exc)}, {"X-RateLimit-Reset": str(exc.reset)},
                                                  wait=exc.wait) from None
        counter.add()
        try:
            headers, data = send(verb, url, *args, **kwargs)
        except GithubException as exc:
            _observe(gate, url, exc.headers)
            raise
        _observe(gate, url, headers)
        return headers, data
    requester.requestJsonAndCheck = guarded  # type: ignore[method-assign]


_HINTS = {403: " (the token or app may lack a permission; see docs/github.md, Tokens and scopes)"}


def _rate_limit_error(exc: GithubException, where: str, max_wait: float) -> RateLimitExhausted:
    wait = getattr(exc, "wait", None)
    reset = (exc.headers or {}).get("X-RateLimit-Reset") or (exc.headers or {}).get("x-ratelimit-reset")
    if reset and str(reset).isdigit():
        retry_at = datetime.fromtimestamp(int(reset), UTC)
    else:
        retry_at = datetime.now(UTC) + timedelta(seconds=wait or 60)
    return RateLimitExhausted(
        f"{where}: GitHub rate limit reached; waiting would exceed sync.max_wait ({max_wait:g}s). "
        f"Stored what was read; retry after {retry_at:%Y-%m-%d %H:%M:%S} UTC", retry_at)


def _answer(exc: GithubException) -> str:
    """`502 Bad Gateway`, or `401 Unauthorized: Bad credentials` when GitHub said why in JSON.

    An HTML error page (a 502 from GitHub's front end, a proxy's login page) is not a message:
    PyGithub hands it over as {"data": "<!DOCTYPE html>..."}, and it stays out of ours.
    """
    message = forge_message(_message(exc))
    phrase = http_status(exc.status)
    return f"{phrase}: {message}" if message and not phrase.endswith(message) else phrase


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    if data.get("errors") and not data.get("message"):
        return "; ".join(str(e.get("message", e)) for e in data["errors"] if isinstance(e, dict))
    return str(data.get("message") or exc.message or "")


def _is_graphql_rate_limited(exc: GithubException) -> bool:
    # GraphQL answers 200 with {"errors": [{"type": "RATE_LIMITED"}]}; PyGithub raises it as 400.
    data = exc.data if isinstance(exc.data, dict) else {}
    return any(isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in data.get("errors") or [])


def _graphql_reset(headers: dict[str, Any] | None) -> int:
    """When a RATE_LIMITED answer's budget resets: its X-RateLimit-Reset if that is still
    ahead, else a minute from now (GitHub's advice when it does not say)."""
    reset, now = header(headers, "x-ratelimit-reset"), time.time()
    return int(reset) if reset and reset.isdigit() and int(reset) > now else int(now + 60)


class GitHubConnector:
    """One configured GitHub source: the Connector protocol of connectors/base.py."""

    streams = STREAMS

    def __init__(self, source: GitHubSource, sync: SyncSection, token: str,
                 bots: tuple[str, ...] = ()) -> None:
        self.source, self.sync, self.bots = source, sync, bots
        self.source_key = f"github:{source.host}"
        secrets.remember(token)  # masked in every message, log line and exception from now on
        self._counter = RequestCounter()
        self._gate = RateLimitGate(sync.max_wait)
        self.github = self._client(token)
        self.requester: Requester = self.github.requester
        guard_requests(self.requester, self._gate, self._counter)
        self._fetchers: dict[str, Callable[[Repository, datetime | None], Iterator[Batch]]] = {
            "pull_requests": self._fetch_pull_requests, "deployments": self._fetch_deployments,
            "workflow_runs": self._fetch_workflow_runs, "releases": self._fetch_releases,
            "incidents": self._fetch_incidents,
        }

    def _client(self, token: str) -> Github:
        # PyGithub spaces requests 0.25 s apart and "writes" 1 s apart by default; every GraphQL
        # query is a POST, so each page would wait a second for nothing. The sync sends one
        # request at a time and honours Retry-After, which is what GitHub's secondary limits ask.
        return Github(base_url=self.source.api_url.rstrip("/"), auth=_auth(self.source, token),
                      timeout=ceil(self.sync.timeout), per_page=PAGE_SIZE, lazy=True,
                      verify=self.source.ca_bundle or True, user_agent=USER_AGENT, retry=self._retry(),
                      seconds_between_requests=None, seconds_between_writes=None)

    def _retry(self) -> CountingRetry:
        # 429 joins GithubRetry's 403 and 5xx: secondary limits use either. raise_on_status off
        # so that the last answer reaches PyGithub and becomes an exception we can word.
        return CountingRetry(
            counter=self._counter, gate=self._gate, total=self.sync.retries, backoff_factor=0.5,
            backoff_max=min(60.0, self.sync.max_wait), secondary_rate_wait=min(60.0, self.sync.max_wait),
            max_rate_limit_wait=self.sync.max_wait, raise_on_status=False,
            status_forcelist=[*range(500, 600), 429])

    # ------------------------------------------------------------------ the protocol

    def request_count(self) -> int:
        return self._counter.count

    def list_repos(self, entries: Sequence[str] | None = None) -> list[Repository]:
        found: dict[str, Repository] = {}
        for entry in entries or self.source.repos:
            problem = github_entry_problem(entry)
            if problem:  # the config refuses it too; a caller passing entries must not get round that
                raise ForgeError(f"{self.source.host} {entry!r} repositories: {problem}")
            with self._errors(entry, "repositories"):
                repos = self._owner_repos(entry[:-2]) if entry.endswith("/*") else [self._one_repo(entry)]
            for repo in repos:
                found.setdefault(repo.full_name.lower(), repo)
        return list(found.values())

    def fetch(self, repo: Repository, stream: str, since: datetime | None) -> Iterator[Batch]:
        if stream not in self._fetchers:
            raise ForgeError(f"{repo.full_name}: unknown GitHub stream {stream!r}")
        with self._errors(repo.full_name, stream, empty_ok=True):
            yield from self._fetchers[stream](repo, since)

    def compare(self, repo: Repository, base_sha: str, head_sha: str) -> list[str]:
        url = f"{github_repo_path(repo.full_name)}/compare/{segment(base_sha)}...{segment(head_sha)}"
        with self._errors(repo.full_name, "compare"):
            listing = PaginatedList(RawItem, self.requester, url, {"per_page": 250}, list_item="commits")
            return [item.data["sha"] for item in listing]

    def list_files(self, repo: Repository) -> list[str]:
        ref = repo.default_branch or "HEAD"
        with self._errors(repo.full_name, "files", empty_ok=True):
            _, data = self.requester.requestJsonAndCheck(
                "GET", f"{github_repo_path(repo.full_name)}/git/trees/{path_segments(ref)}",
                parameters={"recursive": "1"})
            if data.get("truncated"):
                log.warning("%s: GitHub truncated the file tree; some manifests may be missed", repo.full_name)
            return [entry["path"] for entry in data.get("tree", []) if entry.get("type") == "blob"]
        return []

    def read_file(self, repo: Repository, path: str) -> bytes:
        with self._errors(repo.full_name, f"file {path}"):
            _, data = self.requester.requestJsonAndCheck(
                "GET", f"{github_repo_path(repo.full_name)}/contents/{path_segments(path)}",
                parameters={"ref": repo.default_branch} if repo.default_branch else None)
            return base64.b64decode(data.get("content") or "")

    # ------------------------------------------------------------------ repositories

    def _repository(self, data: dict[str, Any]) -> Repository:
        return Repository(forge="github", host=self.source.host, full_name=data["full_name"],
                          default_branch=data.get("default_branch"), url=data.get("html_url"),
                          archived=bool(data.get("archived")), fork=bool(data.get("fork")))

    def _one_repo(self, full_name: str) -> Repository:
        _, data = self.requester.requestJsonAndCheck("GET", github_repo_path(full_name))
        problem = github_name_problem(str(data.get("full_name")))
        if problem:  # its requests would go wherever that name points
            raise ForgeError(f"{self.source.host} {full_name} repositories: GitHub named it "
                             f"{data.get('full_name')!r}, which {problem}; skipped")
        return self._repository(data)

    def _owner_repos(self, owner: str) -> list[Repository]:
        """Every repo of an organisation, else of a user; archived and forks per config."""
        try:
            items = list(PaginatedList(RawItem, self.requester, f"/orgs/{segment(owner)}/repos", {"type": "all"}))
        except GithubException as exc:
            if exc.status != 404:
                raise
            items = list(PaginatedList(RawItem, self.requester, f"/users/{segment(owner)}/repos", {"type": "owner"}))
        repos = [self._repository(item.data) for item in items if self._listed(item.data, owner)]
        return [r for r in repos if (self.source.include_archived or not r.archived)
                and (self.source.include_forks or not r.fork)]

    def _listed(self, data: dict[str, Any], owner: str) -> bool:
        """A listed repo is synced only under a valid name of the owner listed: an odd name
        in a listing must not steer requests anywhere else."""
        name = str(data.get("full_name"))
        problem = github_name_problem(name)
        if problem is None and name.split("/", 1)[0].lower() != owner.lower():
            problem = f"is not a repository of {owner}"
        if problem:
            log.warning("%s %s/*: skipped the listed repository %r, which %s", self.source.host, owner, name, problem)
        return problem is None

    # ------------------------------------------------------------------------ errors

    def _credentials_hint(self) -> str:
        if self.source.app_id is not None:
            return f" — check the GitHub App's key in {self.source.app_private_key_env}"
        return f" — check the token in {self.source.token_env}"

    @contextmanager
    def _errors(self, repo: str, stream: str, empty_ok: bool = False) -> Iterator[None]:
        """Word PyGithub's and requests' failures for users, without the token."""
        where = f"{self.source.host} {repo} {stream}"
        try:
            yield
        except RateLimitExceededException as exc:
            raise _rate_limit_error(exc, where, self.sync.max_wait) from None
        except GithubException as exc:
            if empty_ok and exc.status == 409:  # an empty repository has no history at all
                return
            hint = self._credentials_hint() if exc.status == 401 else _HINTS.get(exc.status, "")
            raise ForgeError(f"{where}: GitHub answered {_answer(exc)}{hint}") from None
        except requests.RequestException as exc:  # requests' own text is a paragraph: say why in words
            raise ForgeError(f"{where}: cannot reach {self.source.api_url}: {network_reason(exc)}") from None
        except ValueError as exc:  # a truncated or garbled body (PyGithub's json.loads), an odd path
            raise ForgeError(f"{where}: GitHub sent a malformed answer: {forge_message(exc)}") from None

    # ----------------------------------------------------------------------- GraphQL

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One GraphQL request; a RATE_LIMITED answer is waited out in the gate (up to
        sync.max_wait in all, else the gate raises before sending again)."""
        waited = 0.0
        while True:
            try:
                _, data = self.requester.graphql_query(query, variables)
                cost = data["data"].get("rateLimit") or {}
                log.debug("GraphQL query cost %s point(s), %s left", cost.get("cost"), cost.get("remaining"))
                return data["data"]
            except GithubException as exc:
                if not _is_graphql_rate_limited(exc):
                    raise
                self._gate.empty_until("graphql", _graphql_reset(exc.headers))
                waited += self._gate.wait_needed("graphql")
                if waited > self.sync.max_wait:  # refused again and again after each reset
                    raise RateLimitExceededException(403, exc.data, exc.headers) from None

    def _graphql_nodes(self, query: str, repo: Repository, connection: str, time_key: str,
                       since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of nodes, newest first, up to the first node older than `since`."""
        owner, name = repo.full_name.split("/", 1)
        cursor: str | None = None
        while True:
            data = self._graphql(query, {"owner": owner, "name": name, "cursor": cursor})
            page = data["repository"][connection]
            nodes = [n for n in page["nodes"] if n and (since is None or (parse_time(n[time_key]) or EPOCH) >= since)]
            if nodes:
                yield nodes
            if len(nodes) < len(page["nodes"]) or not page["pageInfo"]["hasNextPage"]:
                return
            cursor = page["pageInfo"]["endCursor"]

    # ----------------------------------------------------------------- pull requests

    def _fetch_pull_requests(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        titles: dict[str, int] = {}
        for nodes in self._graphql_nodes(PULL_REQUESTS, repo, "pullRequests", "updatedAt", since):
            titles.update({n["title"]: n["number"] for n in nodes})
            records: list[SQLModel] = [self._pull_request(node, titles) for node in nodes]
            yield Batch(records, max(_times(records, "updated_at")))

    def _pull_request(self, node: dict[str, Any], titles: dict[str, int]) -> PullRequest:
        author, author_is_bot = self._actor(node.get("author"))
        created = parse_time(node["createdAt"])
        ready_events = _nodes(node, "timelineItems")
        ready = parse_time(ready_events[-1].get("createdAt")) if ready_events else created
        return PullRequest(
            number=node["number"], title=node["title"], url=node.get("url"), author=author,
            author_is_bot=author_is_bot, draft=bool(node.get("isDraft")), created_at=created,
            ready_at=ready,
            first_commit_at=min(filter(None, (parse_time(c["commit"]["authoredDate"])
                                              for c in _nodes(node, "commits"))), default=None),
            first_review_at=self._first_response(node, author, ready),
            merged_at=parse_time(node.get("mergedAt")), closed_at=parse_time(node.get("closedAt")),
            updated_at=parse_time(node.get("updatedAt")),
            merge_commit_sha=(node.get("mergeCommit") or {}).get("oid"),
            base_branch=node.get("baseRefName"), head_branch=node.get("headRefName"),
            labels=[label["name"] for label in _nodes(node, "labels")],
            reverts_number=links.reverted_number(node["title"], node.get("headRefName"), node.get("body"), titles))

    def _actor(self, author: dict[str, Any] | None) -> tuple[str | None, bool]:
        """(login, is bot). A deleted account is null ("ghost")."""
        if not author:
            return None, False
        login, kind = author.get("login"), author.get("__typename")
        # GraphQL drops the "[bot]" that REST and the web show; put it back so both agree.
        if kind == "Bot" and login and not login.endswith("[bot]"):
            login += "[bot]"
        return login, links.is_bot(login, kind, self.bots)

    def _first_response(self, node: dict[str, Any], author: str | None, ready: datetime | None) -> datetime | None:
        """The first review, approval, review comment or conversation comment by a human who is
        not the author, at or after `ready`: a response to a draft answered no one waiting."""
        reviews = [r for r in _nodes(node, "reviews") if r.get("state") != "PENDING"]  # unsent
        responses = [(r.get("author"), r.get("submittedAt") or r.get("createdAt")) for r in reviews]
        responses += [(c.get("author"), c.get("createdAt")) for c in _nodes(node, "comments")]
        times = []
        for who, at in responses:
            login, is_bot = self._actor(who)
            if login and login != author and not is_bot:
                times.append(parse_time(at))
        return min((at for at in times if at is not None and (ready is None or at >= ready)), default=None)

    # ------------------------------------------------------------------- deployments

    def _fetch_deployments(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        for nodes in self._graphql_nodes(DEPLOYMENTS, repo, "deployments", "createdAt", since):
            records: list[SQLModel] = [_deployment(node) for node in nodes]
            yield Batch(records, max(_times(records, "created_at")))

    # ----------------------------------------------------------------- workflow runs

    def _fetch_workflow_runs(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        """Runs created since `since`, in windows that each stay under GitHub's 1,000 cap.

        Runs come newest first; when a window reaches 1,000 runs the next window ends at the
        oldest run seen (inclusive, duplicates dropped), so no request asks past the cap.
        """
        low, high = since or EPOCH, None
        seen: set[int] = set()
        while True:
            runs = list(islice(self._run_window(repo, low, high), RUNS_CAP))
            fresh = [run for run in runs if run["id"] not in seen]
            seen.update(run["id"] for run in fresh)
            for start in range(0, len(fresh), PAGE_SIZE):
                yield _run_batch(fresh[start:start + PAGE_SIZE])
            if len(runs) < RUNS_CAP:
                return
            high = _next_high(high, parse_time(runs[-1]["created_at"]))

    def _run_window(self, repo: Repository, low: datetime, high: datetime | None) -> Iterator[dict[str, Any]]:
        created = f"{iso(low)}..{iso(high) if high else '*'}"
        listing = PaginatedList(RawItem, self.requester, f"{github_repo_path(repo.full_name)}/actions/runs",
                                {"created": created}, list_item="workflow_runs")
        return (item.data for item in listing)

    # ---------------------------------------------------------- releases, incidents

    def _rest_pages(self, url: str, params: dict[str, Any], since: datetime | None,
                    time_key: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of a newest-first REST listing, up to the first item older than `since`."""
        page: list[dict[str, Any]] = []
        for item in PaginatedList(RawItem, self.requester, url, params):
            if since is not None and (parse_time(item.data.get(time_key)) or since) < since:
                break
            page.append(item.data)
            if len(page) == PAGE_SIZE:
                yield page
                page = []
        if page:
            yield page

    def _fetch_releases(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        for page in self._rest_pages(f"{github_repo_path(repo.full_name)}/releases", {}, since, "created_at"):
            records: list[SQLModel] = [_release(item) for item in page]
            yield Batch(records, max(_times(records, "created_at")))

    def _fetch_incidents(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        """Issues with any incident label: one listing per label (GitHub ANDs `labels=`)."""
        seen: set[int] = set()
        for label in self.source.incident_labels:
            params = {"state": "all", "labels": label, "sort": "updated", "direction": "desc"}
            if since is not None:
                params["since"] = iso(since)
            for page in self._rest_pages(f"{github_repo_path(repo.full_name)}/issues", params, None, "updated_at"):
                # The issues endpoint lists pull requests too, marked by a pull_request key.
                fresh = [i for i in page if "pull_request" not in i and i["number"] not in seen]
                seen.update(i["number"] for i in fresh)
                if fresh:
                    found: list[SQLModel] = [_incident(i) for i in fresh]
                    yield Batch(found, max(parse_time(i["updated_at"]) or EPOCH for i in fresh))


# ------------------------------------------------------------------ records from JSON

def _times(records: list[SQLModel], field: str) -> list[datetime]:
    return [at for at in (getattr(r, field) for r in records) if at is not None]


def _nodes(node: dict[str, Any], field: str) -> list[dict[str, Any]]:
    return [n for n in ((node.get(field) or {}).get("nodes") or []) if n]


_FINISHED = ("SUCCESS", "FAILURE", "ERROR")


def _deployment(node: dict[str, Any]) -> Deployment:
    statuses = _nodes(node, "statuses")
    finished = [parse_time(s["createdAt"]) for s in statuses if s.get("state") in _FINISHED]
    latest = node.get("latestStatus") or {}
    return Deployment(
        source="environments", deployment_id=str(node["databaseId"]), environment=node.get("environment"),
        sha=node.get("commitOid"), ref=(node.get("ref") or {}).get("name") or node.get("commitOid"),
        created_at=parse_time(node["createdAt"]), updated_at=parse_time(node.get("updatedAt")),
        finished_at=min(filter(None, finished), default=None),
        status=(latest.get("state") or "pending").lower())


def _run_batch(runs: list[dict[str, Any]]) -> Batch:
    records: list[SQLModel] = [_pipeline_run(run) for run in runs]
    return Batch(records, max(_times(records, "created_at")))


def _pipeline_run(run: dict[str, Any]) -> PipelineRun:
    started, updated = parse_time(run.get("run_started_at") or run.get("created_at")), parse_time(run.get("updated_at"))
    finished = updated if run.get("status") == "completed" else None
    return PipelineRun(
        run_id=str(run["id"]), name=run.get("name"), path=(run.get("path") or "").split("@", 1)[0] or None,
        branch=run.get("head_branch"), sha=run.get("head_sha"), event=run.get("event"),
        status=run.get("status"), conclusion=run.get("conclusion"), url=run.get("html_url"),
        created_at=parse_time(run.get("created_at")), started_at=started, finished_at=finished,
        duration_seconds=(finished - started).total_seconds() if finished and started else None)


def _next_high(high: datetime | None, oldest: datetime | None) -> datetime:
    """The next window's end: the oldest run seen, one second earlier if it did not move
    (a thousand runs created in one second would otherwise loop)."""
    assert oldest is not None
    return oldest - timedelta(seconds=1) if high is not None and oldest >= high else oldest


_SHA = re.compile(r"^[0-9a-f]{40}$")


def _release(item: dict[str, Any]) -> Release:
    target = item.get("target_commitish") or ""
    return Release(
        release_id=str(item["id"]), tag=item.get("tag_name"), name=item.get("name"), url=item.get("html_url"),
        # target_commitish is a sha only when the release was made from one; else a branch.
        sha=target if _SHA.match(target) else None,
        draft=bool(item.get("draft")), prerelease=bool(item.get("prerelease")),
        created_at=parse_time(item.get("created_at")), published_at=parse_time(item.get("published_at")))


def _incident(issue: dict[str, Any]) -> Incident:
    body = issue.get("body") or ""
    return Incident(
        source="issues", incident_id=str(issue["number"]), title=issue.get("title") or "",
        url=issue.get("html_url"), created_at=parse_time(issue.get("created_at")),
        resolved_at=parse_time(issue.get("closed_at")),
        labels=[label["name"] if isinstance(label, dict) else str(label) for label in issue.get("labels") or []],
        linked_sha=links.named_sha(body), linked_pr=links.named_pr(body))


# ---------------------------------------------------------------------- authentication

def _auth(source: GitHubSource, token: str) -> Auth.Auth:
    """A token, or GitHub App installation auth when the source names an app."""
    if source.app_id is None:
        return Auth.Token(token)
    if not source.app_private_key_env or not source.app_installation_id:
        raise ConfigError("github.app_id needs app_private_key_env and app_installation_id too")
    key = os.environ.get(source.app_private_key_env, "")
    if not key:
        raise ConfigError(f"github.app_private_key_env: environment variable {source.app_private_key_env} "
                          "is not set (export the app's PEM private key)")
    return Auth.AppAuth(source.app_id, key).get_installation_auth(source.app_installation_id)

