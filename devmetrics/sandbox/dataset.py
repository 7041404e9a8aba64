"""A deterministic, seeded dataset of realistic delivery activity, relative to "now".

Forge-neutral: the GitHub and GitLab apps serve the same shapes in their own dialects.
Every repo has a main line of merge commits (so compare ranges are real), PRs with commits,
reviews and conversation comments (bots, drafts, reverts, hotfixes), deployments with status
histories to production and staging, CI runs of several workflows, incidents, releases and
manifests.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from devmetrics.clock import now_utc

HUMANS = ["alice", "bob", "carol", "dave", "erin", "frank"]
BOTS = ["dependabot[bot]", "renovate[bot]"]


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


@dataclass
class Commit:
    sha: str
    message: str
    author: str
    authored_at: datetime


@dataclass
class Review:
    author: str
    author_is_bot: bool
    state: str  # APPROVED | COMMENTED | CHANGES_REQUESTED
    submitted_at: datetime
    body: str = ""


@dataclass
class Comment:
    """A conversation comment (GitHub: an issue comment on the PR; GitLab: a user note)."""

    author: str
    author_is_bot: bool
    created_at: datetime
    body: str = ""


@dataclass
class PullRequest:
    number: int
    title: str
    body: str
    author: str
    author_is_bot: bool
    created_at: datetime
    updated_at: datetime
    base: str
    head: str
    commits: list[Commit]
    reviews: list[Review] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    draft: bool = False  # still a draft now
    ready_at: datetime | None = None  # when it last left draft (None: never a draft)
    merged_at: datetime | None = None
    closed_at: datetime | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "open" if self.closed_at is None else "closed"


@dataclass
class DeploymentStatus:
    state: str  # queued, in_progress, success, failure, error, inactive
    at: datetime


@dataclass
class Deployment:
    id: int
    environment: str
    sha: str
    ref: str
    created_at: datetime
    creator: str
    statuses: list[DeploymentStatus]

    @property
    def updated_at(self) -> datetime:
        return self.statuses[-1].at if self.statuses else self.created_at


@dataclass
class WorkflowRun:
    id: int
    workflow: str  # name
    path: str  # .github/workflows/<file>; GitLab: the pipeline source
    branch: str
    sha: str
    event: str
    status: str  # completed | in_progress | queued
    conclusion: str | None
    created_at: datetime
    started_at: datetime
    updated_at: datetime


@dataclass
class Issue:
    number: int
    title: str
    body: str
    author: str
    labels: list[str]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    incident: bool = False  # GitLab issue_type=incident


@dataclass
class Release:
    id: int
    tag: str
    name: str
    sha: str
    draft: bool
    prerelease: bool
    created_at: datetime
    published_at: datetime | None


@dataclass
class Repo:
    forge: str  # github | gitlab
    full_name: str
    id: int
    default_branch: str = "main"
    archived: bool = False
    fork: bool = False
    created_at: datetime | None = None
    pulls: list[PullRequest] = field(default_factory=list)
    main_line: list[Commit] = field(default_factory=list)  # default branch, oldest first
    deployments: list[Deployment] = field(default_factory=list)
    runs: list[WorkflowRun] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # default-branch files

    @property
    def owner(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[1]

    def commit(self, ref: str) -> Commit | None:
        for commit in self.main_line:
            if commit.sha.startswith(ref) or ref in (self.default_branch, "HEAD"):
                return commit if commit.sha.startswith(ref) else self.main_line[-1]
        return None

    def compare(self, base: str, head: str) -> list[Commit]:
        """Commits reachable from head and not from base, on the main line."""
        shas = [c.sha for c in self.main_line]
        try:
            lo, hi = shas.index(self.commit(base).sha), shas.index(self.commit(head).sha)  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            return []
        return self.main_line[lo + 1: hi + 1]


@dataclass
class Dataset:
    now: datetime
    repos: list[Repo]

    def repo(self, forge: str, full_name: str) -> Repo | None:
        for repo in self.repos:
            if repo.forge == forge and repo.full_name.lower() == full_name.lower():
                return repo
        return None

    def forge_repos(self, forge: str) -> list[Repo]:
        return [r for r in self.repos if r.forge == forge]


@dataclass(frozen=True)
class RepoPlan:
    """What to generate for one repo."""

    forge: str
    full_name: str
    prs: int = 120
    environments: bool = True  # deployments API with production + staging
    deploy_workflow: str | None = None  # a CI workflow that deploys to production
    releases: int = 6
    incidents: int = 5
    archived: bool = False
    fork: bool = False
    manifests: tuple[str, ...] = ("python",)


DEFAULT_PLANS = (
    RepoPlan("github", "acme/api", prs=140, manifests=("python",)),
    RepoPlan("github", "acme/web", prs=90, environments=False, deploy_workflow="Deploy",
             incidents=3, manifests=("node",)),
    RepoPlan("github", "acme/legacy", prs=10, archived=True, releases=0, incidents=0),
    RepoPlan("github", "acme/forked-lib", prs=5, fork=True, releases=0, incidents=0),
    RepoPlan("gitlab", "acme/platform/app", prs=110, manifests=("python", "node")),
    RepoPlan("gitlab", "acme/platform/tools/cli", prs=40, environments=False, releases=0,
             incidents=2, manifests=("go",)),
)


def build_dataset(now: datetime | None = None, seed: int = 7, days: int = 90,
                  plans: tuple[RepoPlan, ...] = DEFAULT_PLANS) -> Dataset:
    """The same dataset for the same (now, seed, plans): tests can rely on it."""
    now = (now or now_utc()).replace(microsecond=0)
    repos = [_build_repo(plan, index + 1, now, days, random.Random(f"{seed}:{plan.full_name}"))
             for index, plan in enumerate(plans)]
    return Dataset(now=now, repos=repos)


def _build_repo(plan: RepoPlan, repo_id: int, now: datetime, days: int, rng: random.Random) -> Repo:
    start = now - timedelta(days=days)
    repo = Repo(plan.forge, plan.full_name, id=repo_id, archived=plan.archived, fork=plan.fork,
                created_at=start - timedelta(days=400))
    repo.main_line.append(Commit(_sha(plan.full_name, "root"), "Initial commit", "alice",
                                 start - timedelta(days=1)))
    _add_pulls(repo, plan, start, now, rng)
    _add_deployments(repo, plan, start, now, rng)
    _add_runs(repo, plan, start, now, rng)
    _add_incidents(repo, plan, now, rng)
    _add_releases(repo, plan, now, rng)
    repo.files = manifest_files(plan.manifests)
    return repo


def _add_pulls(repo: Repo, plan: RepoPlan, start: datetime, now: datetime, rng: random.Random) -> None:
    span = (now - start).total_seconds()
    created = sorted(start + timedelta(seconds=rng.uniform(0, span * 0.97)) for _ in range(plan.prs))
    for number, created_at in enumerate(created, start=1):
        repo.pulls.append(_make_pull(repo, number, created_at, now, rng))
    merged = sorted((p for p in repo.pulls if p.merged_at), key=lambda p: p.merged_at)  # type: ignore[arg-type, return-value]
    for pull in merged:
        pull.merge_commit_sha = _sha(repo.full_name, "merge", pull.number)
        repo.main_line.append(Commit(pull.merge_commit_sha, f"Merge pull request #{pull.number}",
                                     pull.author, pull.merged_at))  # type: ignore[arg-type]
    _add_revert(repo, now)


def _make_pull(repo: Repo, number: int, created_at: datetime, now: datetime,
               rng: random.Random) -> PullRequest:
    is_bot = rng.random() < 0.12
    author = rng.choice(BOTS) if is_bot else rng.choice(HUMANS)
    title = f"Bump {rng.choice(['requests', 'lodash', 'pyyaml'])}" if is_bot else _title(rng, number)
    commits = _make_commits(repo, number, author, created_at, rng)
    pull = PullRequest(number, title, f"Change {number}.", author, is_bot, created_at, created_at,
                       repo.default_branch, f"feature/{number}", commits)
    if not is_bot and rng.random() < 0.2:  # opened as a draft, marked ready later
        pull.ready_at = created_at + timedelta(hours=rng.uniform(1, 30))
    if rng.random() < 0.05:
        pull.labels.append("hotfix")
    ready = pull.ready_at or created_at
    pull.reviews = _make_reviews(author, ready, rng)
    _finish_pull(pull, ready, now, rng)
    _add_comments(pull, random.Random(_sha(repo.full_name, number, "comments")))
    return pull


def _title(rng: random.Random, number: int) -> str:
    verb = rng.choice(["Add", "Fix", "Refactor", "Speed up", "Document", "Remove"])
    thing = rng.choice(["login flow", "billing export", "cache layer", "search API", "CI config",
                        "rate limiter", "settings page", "webhook retries"])
    return f"{verb} {thing} (#{number})" if rng.random() < 0.1 else f"{verb} {thing}"


def _make_commits(repo: Repo, number: int, author: str, created_at: datetime,
                  rng: random.Random) -> list[Commit]:
    first = created_at - timedelta(hours=rng.uniform(0.5, 72))
    if rng.random() < 0.1:  # rebased / squashed: the first commit postdates the PR
        first = created_at + timedelta(hours=rng.uniform(0.1, 3))
    count = rng.randint(1, 5)
    return [Commit(_sha(repo.full_name, number, i), f"Work on #{number} ({i + 1})", author,
                   first + timedelta(hours=i * rng.uniform(0.2, 4))) for i in range(count)]


def _make_reviews(author: str, ready: datetime, rng: random.Random) -> list[Review]:
    reviews: list[Review] = []
    at = ready
    if rng.random() < 0.3:  # a bot comments first: it must not count as the first review
        at += timedelta(minutes=rng.uniform(1, 10))
        reviews.append(Review("codecov[bot]", True, "COMMENTED", at, "Coverage report"))
    if rng.random() < 0.15:  # the author answers in the review thread: not a review either
        at += timedelta(minutes=rng.uniform(5, 60))
        reviews.append(Review(author, False, "COMMENTED", at, "Context for reviewers"))
    if rng.random() < 0.9:
        reviewer = rng.choice([h for h in HUMANS if h != author])
        at += timedelta(hours=rng.lognormvariate(1.0, 1.0))
        reviews.append(Review(reviewer, False, rng.choice(["APPROVED", "COMMENTED", "CHANGES_REQUESTED"]), at))
        at += timedelta(hours=rng.uniform(0.5, 10))
        reviews.append(Review(reviewer, False, "APPROVED", at))
    return reviews


def first_response(pull: PullRequest) -> datetime | None:
    """The contract's first response: the earliest review or comment by a human who is not
    the author, at or after the PR last left draft (its creation if it never was one)."""
    ready = pull.ready_at or pull.created_at
    times = [r.submitted_at for r in pull.reviews if not r.author_is_bot and r.author != pull.author]
    times += [c.created_at for c in pull.comments if not c.author_is_bot and c.author != pull.author]
    return min((at for at in times if at >= ready), default=None)


def _add_comments(pull: PullRequest, rng: random.Random) -> None:
    """Conversation comments, from their own random stream so the rest of the data stays put.

    Some come from bots or the author (never a response), some from a reviewer while the PR
    was a draft (too early: no one was waiting yet), and some from a reviewer before the
    first review, which makes that comment the first response.
    """
    ready = pull.ready_at or pull.created_at
    end = pull.closed_at or pull.updated_at
    others = [h for h in HUMANS if h != pull.author]
    if rng.random() < 0.4:
        pull.comments.append(Comment("netlify[bot]", True, ready + timedelta(minutes=rng.uniform(0.5, 5)),
                                     "Deploy preview ready"))
    if rng.random() < 0.2:
        pull.comments.append(Comment(pull.author, False, ready + timedelta(minutes=rng.uniform(1, 30)),
                                     "Ready for review"))
    if pull.ready_at is not None and rng.random() < 0.6:  # opened as a draft
        early = pull.created_at + (pull.ready_at - pull.created_at) * rng.uniform(0.1, 0.9)
        pull.comments.append(Comment(rng.choice(others), False, early, "Early thoughts while it is a draft"))
        if rng.random() < 0.5:
            pull.reviews.insert(0, Review(rng.choice(others), False, "COMMENTED", early, "Draft feedback"))
    first = min((r.submitted_at for r in pull.reviews if r.submitted_at >= ready), default=end)
    if rng.random() < 0.35 and first > ready:
        at = ready + (first - ready) * rng.uniform(0.1, 0.9)
        pull.comments.append(Comment(rng.choice(others), False, at, "Question before I review"))
    # A comment moves updated_at on the forge; keep the PR's own updated_at by dropping later ones.
    pull.comments = sorted((c for c in pull.comments if c.created_at <= pull.updated_at), key=lambda c: c.created_at)


def _finish_pull(pull: PullRequest, ready: datetime, now: datetime, rng: random.Random) -> None:
    last_review = pull.reviews[-1].submitted_at if pull.reviews else ready
    fate = rng.random()
    done = last_review + timedelta(hours=rng.uniform(0.2, 8))
    if fate < 0.80 and done < now:
        pull.merged_at = pull.closed_at = done
    elif fate < 0.88 and done < now:
        pull.closed_at = done
    elif pull.ready_at is not None and rng.random() < 0.5:
        pull.draft, pull.ready_at = True, None  # still a draft
    pull.updated_at = min(now, max(pull.closed_at or last_review, pull.created_at))


def _add_revert(repo: Repo, now: datetime) -> None:
    """One merged PR is reverted by a later PR, the way GitHub's revert button does it."""
    merged = [p for p in repo.pulls if p.merged_at and not p.author_is_bot]
    if len(merged) < 10:
        return
    target = merged[len(merged) * 2 // 3]
    assert target.merged_at is not None
    at: datetime = target.merged_at + timedelta(hours=5)
    if at >= now:
        return
    number = len(repo.pulls) + 1
    sha = _sha(repo.full_name, "merge", number)
    revert = PullRequest(number, f'Revert "{target.title}"', f"Reverts {repo.full_name}#{target.number}",
                         "bob", False, at - timedelta(hours=1), at, repo.default_branch,
                         f"revert-{target.number}-{target.head.replace('/', '-')}",
                         [Commit(_sha(repo.full_name, number, 0), "Revert", "bob", at - timedelta(hours=1))],
                         [Review("carol", False, "APPROVED", at - timedelta(minutes=30))],
                         merged_at=at, closed_at=at, merge_commit_sha=sha)
    repo.pulls.append(revert)
    repo.main_line.append(Commit(sha, f"Merge pull request #{number}", "bob", at))
    repo.main_line.sort(key=lambda c: c.authored_at)


def _head_at(repo: Repo, at: datetime) -> Commit:
    head = repo.main_line[0]
    for commit in repo.main_line:
        if commit.authored_at <= at:
            head = commit
    return head


def _add_deployments(repo: Repo, plan: RepoPlan, start: datetime, now: datetime,
                     rng: random.Random) -> None:
    if not plan.environments:
        return
    next_id = repo.id * 100_000
    day = start.replace(hour=0, minute=0, second=0)
    shipped: dict[str, str] = {}  # environment -> sha of its last successful deployment
    while day < now:
        if day.weekday() < 5 and rng.random() < 0.8:
            for env in ("staging", "production"):
                at = day + timedelta(hours=rng.uniform(9, 17) + (0.5 if env == "production" else 0))
                if at >= now or _head_at(repo, at).sha == shipped.get(env):
                    continue  # nothing new to ship: teams do not redeploy an unchanged head
                next_id += 1
                deployment = _make_deployment(repo, next_id, env, at, now, rng)
                repo.deployments.append(deployment)
                if deployment.statuses[-1].state == "success":
                    shipped[env] = deployment.sha
        day += timedelta(days=1)
    _add_rollback(repo, now)
    _supersede(repo)


def _make_deployment(repo: Repo, dep_id: int, env: str, at: datetime, now: datetime,
                     rng: random.Random) -> Deployment:
    head = _head_at(repo, at)
    statuses = [DeploymentStatus("queued", at), DeploymentStatus("in_progress", at + timedelta(minutes=1))]
    end = at + timedelta(minutes=rng.uniform(3, 25))
    outcome = "failure" if rng.random() < 0.08 else ("error" if rng.random() < 0.02 else "success")
    if end < now - timedelta(minutes=30):
        statuses.append(DeploymentStatus(outcome, end))
    return Deployment(dep_id, env, head.sha, repo.default_branch, at, "deploy-bot", statuses)


def _add_rollback(repo: Repo, now: datetime) -> None:
    """Redeploy an earlier production sha: a rollback (rework)."""
    prod = [d for d in repo.deployments if d.environment == "production"
            and d.statuses[-1].state == "success"]
    if len(prod) < 6:
        return
    old, after = prod[-6], prod[-5]
    at = after.created_at + timedelta(hours=2)
    if at < now - timedelta(hours=1):
        rollback = Deployment(after.id + 50_000, "production", old.sha, old.sha[:7], at, "alice",
                              [DeploymentStatus("in_progress", at),
                               DeploymentStatus("success", at + timedelta(minutes=6))])
        repo.deployments.append(rollback)
        repo.deployments.sort(key=lambda d: d.created_at)


def _supersede(repo: Repo) -> None:
    """A successful deployment turns inactive when a later one to the same environment succeeds."""
    last: dict[str, Deployment] = {}
    for dep in repo.deployments:
        if dep.statuses[-1].state != "success":
            continue
        previous = last.get(dep.environment)
        if previous is not None:
            previous.statuses.append(DeploymentStatus("inactive", dep.statuses[-1].at))
        last[dep.environment] = dep


WORKFLOWS = (("CI", ".github/workflows/ci.yml", "pull_request", 6.0),
             ("Lint", ".github/workflows/lint.yml", "push", 1.5))


def _add_runs(repo: Repo, plan: RepoPlan, start: datetime, now: datetime, rng: random.Random) -> None:
    run_id = repo.id * 10_000_000
    for pull in repo.pulls:
        for commit in pull.commits:
            for name, path, event, minutes in WORKFLOWS:
                run_id += 1
                repo.runs.append(_make_run(run_id, name, path, pull.head, commit.sha, event,
                                           commit.authored_at + timedelta(minutes=2), minutes, now, rng))
    if plan.deploy_workflow:
        for commit in repo.main_line[1:]:
            run_id += 1
            repo.runs.append(_make_run(run_id, plan.deploy_workflow, ".github/workflows/deploy.yml",
                                       repo.default_branch, commit.sha, "push",
                                       commit.authored_at + timedelta(minutes=5), 8.0, now, rng))
    repo.runs = [r for r in repo.runs if r.created_at < now]
    repo.runs.sort(key=lambda r: r.created_at)


def _make_run(run_id: int, name: str, path: str, branch: str, sha: str, event: str,
              created: datetime, minutes: float, now: datetime, rng: random.Random) -> WorkflowRun:
    started = created + timedelta(seconds=rng.uniform(5, 90))
    ended = started + timedelta(minutes=max(0.3, rng.gauss(minutes, minutes / 4)))
    roll = rng.random()
    conclusion = "failure" if roll < 0.1 else "cancelled" if roll < 0.13 else "skipped" if roll < 0.15 else "success"
    if ended > now:
        return WorkflowRun(run_id, name, path, branch, sha, event, "in_progress", None, created, started, now)
    return WorkflowRun(run_id, name, path, branch, sha, event, "completed", conclusion, created, started, ended)


def _add_incidents(repo: Repo, plan: RepoPlan, now: datetime, rng: random.Random) -> None:
    number = len(repo.pulls) + 1
    prod = [d for d in repo.deployments if d.environment == "production"]
    merged = [p for p in repo.pulls if p.merged_at]
    for i in range(plan.incidents):
        number += 1
        created = now - timedelta(days=rng.uniform(1, 80))
        body = "Customers report errors."
        if i == 0 and merged:  # names the PR that caused it: an explicit link
            culprit = merged[len(merged) // 2]
            body += f" Caused by #{culprit.number}."
        elif i == 1 and prod:  # names the deployed commit
            body += f" Started after deploying {prod[len(prod) // 3].sha[:10]}."
        resolved = created + timedelta(hours=rng.lognormvariate(1.2, 1.0)) if i < plan.incidents - 1 else None
        repo.issues.append(Issue(number, f"Incident: {rng.choice(['5xx spike', 'login outage', 'slow search'])}",
                                 body, "erin", ["incident", f"sev{rng.randint(1, 3)}"], created,
                                 resolved or created, resolved, incident=True))
    for j in range(3):  # ordinary issues, which must not count
        number += 1
        created = now - timedelta(days=rng.uniform(1, 60))
        repo.issues.append(Issue(number, f"Feature request {j}", "Please add it.", "frank",
                                 ["enhancement"], created, created, None))
    repo.issues.sort(key=lambda issue: issue.created_at)


def _add_releases(repo: Repo, plan: RepoPlan, now: datetime, rng: random.Random) -> None:
    for i in range(plan.releases):
        at = now - timedelta(days=(plan.releases - i) * 12 + rng.uniform(0, 3))
        head = _head_at(repo, at)
        draft, pre = (i == plan.releases - 1 and plan.releases > 2), (i == 1)
        repo.releases.append(Release(repo.id * 1000 + i, f"v1.{i}.0", f"Release 1.{i}.0",
                                     head.sha, draft, pre, at, None if draft else at + timedelta(minutes=10)))


MANIFESTS = {
    "python": {
        "requirements.txt": "requests==2.28.0\nclick>=8.0\nflask~=2.2\npyyaml\n",
        "pyproject.toml": ('[project]\nname = "service"\nversion = "1.0.0"\n'
                           'dependencies = ["pydantic>=1.10,<2", "sqlalchemy==1.4.46"]\n'),
    },
    "node": {
        "package.json": ('{"name": "web", "version": "1.0.0", "dependencies": '
                         '{"react": "^17.0.2", "lodash": "4.17.20", "express": "~4.17.1"},'
                         ' "devDependencies": {"typescript": "^4.9.0"}}\n'),
    },
    "go": {
        "go.mod": ("module example.com/acme/cli\n\ngo 1.21\n\nrequire (\n"
                   "\tgithub.com/spf13/cobra v1.6.0\n\tgolang.org/x/sync v0.1.0\n)\n"),
    },
}


def manifest_files(kinds: tuple[str, ...]) -> dict[str, str]:
    files = {"README.md": "# Service\n", "src/app.py": "print('hello')\n",
             "vendor/lib/requirements.txt": "ignored==1.0\n"}
    for kind in kinds:
        prefix = "" if kind == kinds[0] else f"{kind}/"
        files.update({prefix + path: text for path, text in MANIFESTS[kind].items()})
    return files
