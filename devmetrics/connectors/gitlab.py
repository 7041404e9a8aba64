"""GitLab connector: projects, merge requests, deployments, pipelines, releases, incidents.

Through python-gitlab (REST v4 + its GraphQL client), against gitlab.com or a self-managed
instance at any base URL. Request cost is what users run out of, so each stream takes
the cheapest calls that give its fields (docs/gitlab.md has the measured figures):

- merge requests: one REST list page per 100 MRs (it has closed_at and squash_commit_sha,
  which GraphQL lacks on older GitLab), plus one GraphQL query per DETAIL_BATCH MRs for
  their commits and notes (first commit, approvals, review and conversation notes, "marked as ready").
- pipelines: one REST list page per 100, plus one GraphQL query per TIMING_BATCH finished
  pipelines for started/finished/duration (the list has no timings; REST would need a GET
  per pipeline).
- deployments, releases, incidents: REST lists only.
- deploy jobs (the `workflow` signal), only for projects with a `workflow` job name: the
  project's finished jobs, one REST page per 100 jobs of any name, newest first to the cursor.

GraphQL batches shrink to fit GitLab's complexity limit, down to REST when nothing fits.
Payload-to-record mapping and its quirks: gitlab_records.py; rate-limit caps: gitlab_http.py.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Any, cast

import gitlab
import requests
from gitlab.v4.objects import Project
from sqlmodel import SQLModel

from devmetrics import secrets
from devmetrics.config import GitLabSource, SyncSection
from devmetrics.connectors import gitlab_records
from devmetrics.connectors.base import Batch, Stream
from devmetrics.connectors.gitlab_http import (
    BudgetedSession,
    GaveUp,
    RateLimited,
    RequestBudget,
    graphql_client,
)
from devmetrics.errors import ForgeError, RateLimitExhausted, forge_message, http_status, network_reason
from devmetrics.models import Deployment, Incident, PipelineRun, PullRequest, Release, Repository
from devmetrics.repo_names import gitlab_entry_problem, gitlab_path_problem

log = logging.getLogger(__name__)

PER_PAGE = 100  # GitLab's maximum page size
DETAIL_BATCH = 10  # MRs per GraphQL query; smaller when GitLab says the query is too complex
TIMING_BATCH = 25  # pipelines per GraphQL query (aliases), well under the complexity limit
# A deployment is a job that ran to an end; manual jobs nobody played and skipped ones are not.
DEPLOY_JOB_SCOPES = ("success", "failed", "canceled")

STREAMS: tuple[Stream, ...] = (
    Stream("merge_requests", PullRequest, "updated_at", server_side_filter=True, signal="merges"),
    Stream("deployments", Deployment, "updated_at", server_side_filter=True, signal="environments"),
    # Runs of the configured `workflow` job: GitLab has no workflow files, a deploy is a job.
    # The jobs list has no time filter; ids grow with created_at, so that is the cursor.
    Stream("deploy_jobs", Deployment, "created_at", server_side_filter=False, signal="workflow"),
    # PipelineRun and Incident keep no updated_at: the cursor is the API's updated_at.
    Stream("pipelines", PipelineRun, "updated_at", server_side_filter=True),
    Stream("releases", Release, "published_at", server_side_filter=False, signal="releases"),
    Stream("incidents", Incident, "updated_at", server_side_filter=True),
)


MR_DETAILS = """
query($path: ID!, $iids: [String!], $first: Int, $commits: String, $notes: String) {
  project(fullPath: $path) {
    mergeRequests(iids: $iids, first: $first) {
      nodes {
        iid
        author { username bot }
        commits(first: 25, after: $commits) {
          nodes { authoredDate }
          pageInfo { hasNextPage endCursor }
        }
        notes(first: 25, after: $notes) {
          nodes { system body createdAt author { username bot } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
  }
}
"""


def api_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


_COMPLEXITY = re.compile(r"complexity of (\d+), which exceeds max complexity of (\d+)")


def _fitting_batch(exc: BaseException, size: int) -> int | None:
    """After GitLab refused a batch as too complex: a batch size that fits (0: none does).

    None when the error is something else. "Query has complexity of 620, which exceeds max
    complexity of 250" for 10 items fits 4 (rounded down); without the numbers, halve.
    """
    text = " ".join(str(cause) for cause in _causes(exc))
    if "complex" not in text.lower():
        return None
    found = _COMPLEXITY.search(text)
    fitting = size * int(found.group(2)) // int(found.group(1)) if found else size // 2
    return min(fitting, size - 1)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (gql wraps whatever the httpx hook raised)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _answer(exc: gitlab.GitlabError) -> str:
    """`HTTP 404 Not Found: 404 Project Not Found`, or just `HTTP 502 Bad Gateway` when the
    body was an HTML page (python-gitlab hands over any body it cannot read as JSON)."""
    message = forge_message(exc.error_message)
    if not exc.response_code:  # a parsing error has no status code
        return message or type(exc).__name__
    status = http_status(exc.response_code)
    return f"HTTP {status}: {message}" if message and not status.endswith(message) else f"HTTP {status}"


def _runs(job: dict[str, Any], name: str, repo: Repository) -> bool:
    """A run of the deploy job on the default branch (a tag's pipeline has the tag as ref)."""
    return bool(job["name"] == name and job["ref"] == repo.default_branch and not job.get("tag"))


class GitLabConnector:
    """One configured [[gitlab]] source: gitlab.com or a self-managed instance."""

    streams: Sequence[Stream] = STREAMS

    def __init__(
        self, source: GitLabSource, sync: SyncSection, token: str, bots: tuple[str, ...] = (), *, graphql: bool = True
    ) -> None:
        """`graphql=False` reads MR details and pipeline timings through REST only (benchmarks)."""
        self.source, self.sync, self.bots = source, sync, bots
        self.source_key = f"gitlab:{source.host}"
        secrets.remember(token)  # masked in every message, log line and exception from now on
        self._budget = RequestBudget(sync.max_wait, sync.retries)
        # GraphQL batch sizes, lowered for good if GitLab finds a query too complex.
        self._batch = {"merge_requests": DETAIL_BATCH if graphql else 0, "pipelines": TIMING_BATCH if graphql else 0}
        self._titles: dict[str, dict[str, int]] = {}  # per project: MR title -> iid (reverts)
        self._bot_users: dict[int, bool] = {}  # user id -> the user API's `bot` (REST details)
        url = source.url.rstrip("/")
        # python-gitlab's own loop retries 429s and 5xx answers (up to 10 times a request);
        # the budget stops it earlier: at sync.max_wait of sleeping or sync.retries failures.
        self._gl = gitlab.Gitlab(
            url,
            private_token=token,
            timeout=sync.timeout,
            ssl_verify=source.ca_bundle or True,
            per_page=PER_PAGE,
            retry_transient_errors=True,
            session=BudgetedSession(self._budget),
        )
        self._gql = gitlab.GraphQL(
            url,
            token=token,
            timeout=sync.timeout,
            max_retries=10,
            retry_transient_errors=True,
            obey_rate_limit=True,
            client=graphql_client(self._budget, token, sync.timeout, source.ca_bundle),
        )
        self._readers: dict[str, Callable[[Repository, datetime | None], Iterator[Batch]]] = {
            "merge_requests": self._fetch_merge_requests,
            "deployments": self._fetch_deployments,
            "deploy_jobs": self._fetch_deploy_jobs,
            "pipelines": self._fetch_pipelines,
            "releases": self._fetch_releases,
            "incidents": self._fetch_incidents,
        }

    def __repr__(self) -> str:  # never the token
        return f"GitLabConnector({self.source.url!r})"

    def request_count(self) -> int:
        return self._budget.requests

    # ------------------------------------------------------------------ errors

    @contextmanager
    def _errors(self, project: str, stream: str) -> Iterator[None]:
        """Every failure as a one-line DevmetricsError naming the project and stream."""
        try:
            yield
        except Exception as exc:  # translated below; anything unknown goes on as it is
            translated = self._translate(exc, f"GitLab {self.source.host}: {project} ({stream})")
            if translated is None:
                raise
            raise translated from None

    def _translate(self, exc: Exception, where: str) -> Exception | None:
        for cause in _causes(exc):
            if isinstance(cause, RateLimited):
                return RateLimitExhausted(
                    f"{where}: rate limited; waiting {cause.wait:.0f} s more would pass "
                    f"sync.max_wait ({self.sync.max_wait:.0f} s); retry after "
                    f"{cause.retry_at:%Y-%m-%d %H:%M:%S} UTC",
                    retry_at=cause.retry_at,
                )
            if isinstance(cause, GaveUp):
                return ForgeError(f"{where}: {cause}")
        if isinstance(exc, gitlab.GitlabError) and exc.response_code == 429:
            return RateLimitExhausted(f"{where}: still rate limited after python-gitlab's 10 retries")
        if isinstance(exc, gitlab.GitlabError):
            hint = f" — check the token in {self.source.token_env}" if exc.response_code == 401 else ""
            return ForgeError(f"{where}: {_answer(exc)}{hint}")
        if isinstance(exc, requests.RequestException | OSError):  # requests' own text is a paragraph
            return ForgeError(f"{where}: cannot reach {self.source.url}: {network_reason(exc)}")
        if type(exc).__module__.startswith("gql"):
            return ForgeError(f"{where}: {forge_message(exc)}")
        return None

    # ------------------------------------------------------------------ projects

    def list_repos(self, entries: Sequence[str] | None = None) -> list[Repository]:
        """Explicit `group/project`s, and every project of `group/*` and its subgroups."""
        found: dict[str, Repository] = {}
        for entry in entries or self.source.projects:
            problem = gitlab_entry_problem(entry)
            if problem:  # the config refuses it too; a caller passing entries must not get round that
                raise ForgeError(f"GitLab {self.source.host}: {entry!r} (projects): {problem}")
            with self._errors(entry, "projects"):
                for project in filter(lambda p: self._listed(p, entry), self._resolve(entry)):
                    repo = self._repository(project)
                    found.setdefault(repo.full_name.lower(), repo)
        return list(found.values())

    def _resolve(self, entry: str) -> Iterable[Any]:
        if not entry.endswith("/*"):
            return [self._gl.projects.get(entry)]
        group = self._gl.groups.get(entry[:-2], lazy=True)
        filters = {} if self.source.include_archived else {"archived": False}
        projects = group.projects.list(iterator=True, include_subgroups=True, **filters)
        return [p for p in projects if self.source.include_forks or not p.attributes.get("forked_from_project")]

    def _listed(self, project: Any, entry: str) -> bool:
        """A listed project is synced only under a valid path inside the group listed: an odd
        path in a listing must not steer requests anywhere else."""
        path = str(project.attributes.get("path_with_namespace"))
        problem = gitlab_path_problem(path)
        group = entry[:-2] if entry.endswith("/*") else None
        if problem is None and group is not None and not path.lower().startswith(group.lower() + "/"):
            problem = f"is not in the group {group}"
        if problem:
            log.warning("GitLab %s: %s: skipped the listed project %r, which %s",
                        self.source.host, entry, path, problem)
        return problem is None

    def _repository(self, project: Any) -> Repository:
        data = project.attributes
        return Repository(
            forge="gitlab",
            host=self.source.host,
            full_name=data["path_with_namespace"],
            default_branch=data.get("default_branch"),
            url=data.get("web_url"),
            archived=bool(data.get("archived")),
            fork=bool(data.get("forked_from_project")),
        )

    def _project(self, repo: Repository) -> Project:
        return self._gl.projects.get(repo.full_name, lazy=True)  # no request: calls use the path

    # ------------------------------------------------------------------ streams

    def fetch(self, repo: Repository, stream: str, since: datetime | None) -> Iterator[Batch]:
        reader = self._readers.get(stream)
        if reader is None:
            raise ForgeError(f"GitLab: unknown stream {stream!r}")
        with self._errors(repo.full_name, stream):
            yield from reader(repo, since)

    def _pages(self, manager: Any, since: datetime | None, **filters: Any) -> Iterator[list[Any]]:
        """A REST list, oldest change first, one page at a time (so each page is a Batch)."""
        if since is not None:
            filters["updated_after"] = api_time(since)
        listing = manager.list(iterator=True, order_by="updated_at", sort="asc", **filters)
        for page in chunks(listing, PER_PAGE):
            yield [item.attributes for item in page]

    def _fetch_merge_requests(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        titles = self._titles.setdefault(repo.full_name, {})
        for page in self._pages(self._project(repo).mergerequests, since, state="all"):
            titles.update({gitlab_records.DRAFT_PREFIX.sub("", mr["title"]): mr["iid"] for mr in page})
            details = self._mr_details(repo, {str(mr["iid"]): mr.get("author") or {} for mr in page})
            records: list[SQLModel] = [
                gitlab_records.pull_request(mr, details.get(str(mr["iid"]), {}), titles, self.bots) for mr in page
            ]
            yield Batch(records, gitlab_records.newest(mr["updated_at"] for mr in page))

    def _fetch_deployments(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        for page in self._pages(self._project(repo).deployments, since):
            yield Batch(
                [gitlab_records.deployment(d) for d in page], gitlab_records.newest(d["updated_at"] for d in page)
            )

    def _fetch_deploy_jobs(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        """The configured deploy job's runs on the default branch (none configured: no request).

        GET /projects/:id/jobs has neither a name nor a ref nor a time filter, so every page
        of finished jobs is read newest first (by id) and filtered here, up to the cursor.
        """
        name = self.source.setting(repo.full_name, "workflow")
        if not name:
            return
        listing = self._project(repo).jobs.list(iterator=True, scope=list(DEPLOY_JOB_SCOPES))
        for page in chunks(listing, PER_PAGE):
            jobs = [job.attributes for job in page]
            fresh = [j for j in jobs if gitlab_records.created_since(j, since)]
            if fresh:  # the cursor covers every job read, of any name: the next sync stops here too
                records: list[SQLModel] = [gitlab_records.deploy_job(j) for j in fresh if _runs(j, name, repo)]
                yield Batch(records, gitlab_records.newest(j["created_at"] for j in fresh))
            if len(fresh) < len(jobs):
                return

    def _fetch_pipelines(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        for page in self._pages(self._project(repo).pipelines, since):
            timings = self._pipeline_timings(repo, page)
            records: list[SQLModel] = [gitlab_records.pipeline_run(p, timings.get(str(p["iid"]), {})) for p in page]
            yield Batch(records, gitlab_records.newest(p["updated_at"] for p in page))

    def _fetch_releases(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        """Newest first (releases have no time filter); stop at the first one before `since`."""
        listing = self._project(repo).releases.list(iterator=True, order_by="released_at", sort="desc")
        for page in chunks(listing, PER_PAGE):
            records = [gitlab_records.release(r.attributes) for r in page]
            fresh = [r for r in records if since is None or gitlab_records.released(r) >= since]
            if fresh:
                yield Batch([*fresh], max(gitlab_records.released(r) for r in fresh))
            if len(fresh) < len(records):
                return

    def _fetch_incidents(self, repo: Repository, since: datetime | None) -> Iterator[Batch]:
        """Issues of type incident, then issues with each configured label, each once."""
        issues = self._project(repo).issues
        queries = [{"issue_type": "incident"}] + [{"labels": label} for label in self.source.incident_labels]
        seen: set[int] = set()
        for query in queries:
            for page in self._pages(issues, since, **query):
                fresh = [i for i in page if i["iid"] not in seen]
                seen.update(i["iid"] for i in fresh)
                if fresh:
                    yield Batch(
                        [gitlab_records.incident(i) for i in fresh],
                        gitlab_records.newest(i["updated_at"] for i in fresh),
                    )

    # ------------------------------------------------------------------ GraphQL details

    def _mr_details(self, repo: Repository, authors: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Commits and notes of these MRs (iid -> REST author): GraphQL in batches, REST if
        GitLab refuses even one."""
        return self._batched(
            "merge_requests",
            list(authors),
            lambda batch: {n["iid"]: self._complete(repo, n) for n in self._mr_nodes(repo, batch)},
            lambda iid: self._mr_detail_rest(repo, iid, authors[iid]),
        )

    def _batched(
        self,
        kind: str,
        keys: list[str],
        query: Callable[[list[str]], dict[str, Any]],
        one_by_rest: Callable[[str], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run `query` over `keys` in batches, smaller while GitLab says "too complex".

        GitLab prices nested connections by their page size and refuses queries over its
        complexity limit (250 on gitlab.com; self-managed instances may set another). The
        refusal names both numbers, so the next batch is sized to fit; once a single key
        is refused, this kind of detail is read through REST from then on.
        """
        results: dict[str, Any] = {}
        pending = list(keys)
        while pending:
            size = self._batch[kind]
            if size == 0:
                return results | {key: one_by_rest(key) for key in pending}
            batch, pending = pending[:size], pending[size:]
            try:
                results.update(query(batch))
            except Exception as exc:
                fitting = _fitting_batch(exc, size)
                if fitting is None:
                    raise
                self._batch[kind] = fitting
                pending = batch + pending
        return results

    def _mr_detail_rest(self, repo: Repository, iid: str, author: dict[str, Any]) -> dict[str, Any]:
        """The REST way to the same details: two lists per MR (commits, notes), and the bot
        flag GraphQL gives with each user, which REST's users lack (see _user_as_graphql)."""
        mr = self._project(repo).mergerequests.get(int(iid), lazy=True)
        # mr.commits() is not a manager's list(): Gitlab(per_page=) does not reach it, and
        # GitLab's default page of 20 would cost an MR of 45 commits three requests.
        commits = [{"authoredDate": c.authored_date} for c in mr.commits(per_page=PER_PAGE)]
        notes = [
            {
                "system": n.system,
                "body": n.body,
                "createdAt": n.created_at,
                "author": self._user_as_graphql(n.author),
            }
            for n in mr.notes.list(iterator=True, sort="asc", order_by="created_at")
        ]
        return {"author": self._user_as_graphql(author), "commits": commits, "notes": notes}

    def _user_as_graphql(self, user: dict[str, Any] | None) -> dict[str, Any]:
        """A REST user as GraphQL gives it: its username and `bot`."""
        return {"username": (user or {}).get("username"), "bot": self._is_bot_user(user or {})}

    def _is_bot_user(self, user: dict[str, Any]) -> bool:
        """REST embeds users as UserBasic, without `bot` (newer GitLab adds it to MR authors).
        Project/group token bots and service accounts GitLab named are known by name; any
        other user is asked of the user API once per sync: a service account its owner named
        ("codecov-reporter") or one of GitLab's own bots is a bot only by that flag."""
        if "bot" in user:
            return bool(user["bot"])
        if gitlab_records.is_bot(user, ()):
            return True
        if user.get("id") is None:
            return False
        if user["id"] not in self._bot_users:
            self._bot_users[user["id"]] = self._user_api_bot(user["id"])
        return self._bot_users[user["id"]]

    def _user_api_bot(self, user_id: int) -> bool:
        try:
            return bool(self._gl.users.get(user_id).attributes.get("bot"))
        except gitlab.GitlabGetError as exc:
            if exc.response_code in (403, 404):  # a deleted user (ghost) or one hidden from us
                return False
            raise

    def _mr_nodes(
        self,
        repo: Repository,
        iids: list[str],
        commits: str | None = None,
        notes: str | None = None,
    ) -> list[dict[str, Any]]:
        # first = the batch: GitLab may price the connection by its page size, not by its items
        variables = {"path": repo.full_name, "iids": iids, "first": len(iids), "commits": commits, "notes": notes}
        data = self._query(MR_DETAILS, variables)
        project = data.get("project") or {}
        return list((project.get("mergeRequests") or {}).get("nodes") or [])

    def _complete(self, repo: Repository, node: dict[str, Any]) -> dict[str, Any]:
        """All commits and notes of one MR: more queries only past 25 of either."""
        result: dict[str, Any] = {"author": node.get("author") or {}, "commits": [], "notes": []}
        while True:
            result["commits"] += node["commits"]["nodes"]
            result["notes"] += node["notes"]["nodes"]
            more = [node[k]["pageInfo"] for k in ("commits", "notes")]
            if not any(info["hasNextPage"] for info in more):
                return result
            # A finished connection asks again from its end cursor and gets nothing more.
            node = self._mr_nodes(repo, [node["iid"]], *(info["endCursor"] for info in more))[0]

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        # python-gitlab passes variables the way gql 4 deprecates; nothing for us to change.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return dict(self._gql.execute(query, variable_values=variables))

    def _pipeline_timings(self, repo: Repository, page: list[dict[str, Any]]) -> dict[str, Any]:
        """started/finished/duration of the finished pipelines of a page, by iid."""
        ids = {str(p["iid"]): p["id"] for p in page if p["status"] in gitlab_records.PIPELINE_CONCLUSION}
        pipelines = self._project(repo).pipelines

        def one_by_rest(iid: str) -> dict[str, Any]:
            found = pipelines.get(ids[iid]).attributes
            return {
                "startedAt": found.get("started_at"),
                "finishedAt": found.get("finished_at"),
                "duration": found.get("duration"),
            }

        return self._batched("pipelines", list(ids), lambda batch: self._timings(repo, batch), one_by_rest)

    def _timings(self, repo: Repository, iids: list[str]) -> dict[str, Any]:
        # One aliased field per pipeline: Project.pipeline(iid:) exists on every GitLab
        # version with GraphQL, unlike filters on Project.pipelines.
        fields = " ".join(
            f'p{int(iid)}: pipeline(iid: "{int(iid)}") {{ iid startedAt finishedAt duration }}' for iid in iids
        )
        data = self._query(f"query($path: ID!) {{ project(fullPath: $path) {{ {fields} }} }}", {"path": repo.full_name})
        return {p["iid"]: p for p in (data.get("project") or {}).values() if p}

    # ------------------------------------------------------------------ repository

    def compare(self, repo: Repository, base_sha: str, head_sha: str) -> list[str]:
        with self._errors(repo.full_name, "compare"):
            result = self._project(repo).repository_compare(base_sha, head_sha)
        return [commit["id"] for commit in cast(dict[str, Any], result).get("commits") or []]

    def list_files(self, repo: Repository) -> list[str]:
        with self._errors(repo.full_name, "files"):
            tree = self._project(repo).repository_tree(recursive=True, ref=repo.default_branch or "HEAD", iterator=True)
            return [entry["path"] for entry in tree if entry.get("type") == "blob"]

    def read_file(self, repo: Repository, path: str) -> bytes:
        with self._errors(repo.full_name, f"file {path}"):
            data = self._project(repo).files.raw(file_path=path, ref=repo.default_branch or "HEAD")
        return bytes(data)  # type: ignore[arg-type]
