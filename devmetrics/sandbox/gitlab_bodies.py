"""The JSON bodies of the sandbox GitLab, in the shapes of GitLab's documented examples.

Built from the forge-neutral dataset; URLs point at the sandbox's base URL, so python-gitlab
follows them (../shared/fixtures/gitlab has the real examples these follow).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from devmetrics.sandbox import dataset as ds

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
JOB_WAITING = {"in_progress": "running", "queued": "pending"}
EVENT_SOURCE = {"pull_request": "merge_request_event", "push": "push"}


def ts(value: datetime | None) -> str | None:
    """GitLab's time format: UTC with milliseconds and a Z."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace(" ", "+")) if value else None


# The dataset names its bots as GitHub does ("renovate[bot]"); a GitLab username cannot hold
# brackets. On GitLab they are users of a bot type, whose `bot` is true in the user API and
# in GraphQL but absent from the UserBasic objects of REST lists and notes:
ACCOUNTS = {
    "dependabot[bot]": "group_1000_bot_7f3c2a9e",  # a group access token's bot user
    "renovate[bot]": "service_account_group_1000_4d1e8b2c",  # a service account, GitLab's name
    "codecov[bot]": "codecov-reporter",  # a service account its owner named: only `bot` tells
}
BOT_USERS = frozenset(ACCOUNTS.values()) | {"deploy-bot"}


def username(name: str) -> str:
    """A dataset account's GitLab username."""
    return ACCOUNTS.get(name, name)


def user_id(name: str) -> int:
    return int(hashlib.sha1(username(name).encode()).hexdigest()[:6], 16)


def user_json(base: str, name: str) -> dict[str, Any]:
    """UserBasic: what GitLab embeds as an author, a note's author, an approver (no `bot`)."""
    login = username(name)
    return {
        "id": user_id(name),
        "username": login,
        "name": login.replace("_", " ").replace("-", " ").title(),
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": f"{base}/{login}",
    }


def full_user_json(base: str, name: str) -> dict[str, Any]:
    """GET /users/:id as a non-admin sees it (API::Entities::User): UserBasic plus the
    profile, and `bot`, true for project/group token bots, service accounts, GitLab's own."""
    return {
        **user_json(base, name),
        "created_at": "2024-01-15T09:00:00.000Z",
        "bio": "",
        "location": "",
        "public_email": None,
        "linkedin": "",
        "twitter": "",
        "discord": "",
        "website_url": "",
        "organization": "",
        "job_title": "",
        "pronouns": None,
        "bot": username(name) in BOT_USERS,
        "work_information": None,
        "followers": 0,
        "following": 0,
        "local_time": None,
    }


def _mr_refs(text: str) -> str:
    """GitLab names merge requests `!12` where GitHub writes `#12`."""
    return text.replace("#", "!")


def _squashed(pull: ds.PullRequest) -> bool:
    # Every fifth MR is squashed and fast-forwarded: GitLab then reports the squash commit
    # and no merge commit, the case the connector must read from squash_commit_sha.
    return pull.number % 5 == 0


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
        "merged_by": user_json(base, "carol") if merged else None,
        "closed_by": user_json(base, pull.author) if pull.closed_at and not merged else None,
        "target_branch": pull.base,
        "source_branch": pull.head,
        "author": user_json(base, pull.author),
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
        "user_notes_count": sum(1 for r in pull.reviews if r.state != "APPROVED") + len(pull.comments),
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
    """Notes oldest first: reviews and comments as user notes, approvals and the ready mark as
    system notes."""
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
        body = "approved this merge request" if approved else (review.body or "Please have a look at this.")
        notes.append({"author": review.author, "system": approved, "at": review.submitted_at, "body": body})
    for comment in pull.comments:
        notes.append({"author": comment.author, "system": False, "at": comment.created_at, "body": comment.body})
    notes.sort(key=lambda n: n["at"])
    for number, note in enumerate(notes, 1):
        note["id"] = pull.number * 1000 + number
    return notes


def note_json(base: str, note: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": note["id"],
        "type": None,
        "body": note["body"],
        "author": user_json(base, note["author"]),
        "created_at": ts(note["at"]),
        "updated_at": ts(note["at"]),
        "system": note["system"],
        "noteable_type": "MergeRequest",
        "resolvable": False,
        "internal": False,
    }


def pipeline_json(base: str, repo: ds.Repo, iid: int, run: ds.WorkflowRun, full: bool) -> dict[str, Any]:
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


def job_name(workflow: str) -> str:
    """Each dataset run is a pipeline with one job, named after its workflow: "Deploy" → "deploy"."""
    return workflow.lower().replace(" ", "-")


def job_id(run: ds.WorkflowRun) -> int:
    # GitLab numbers jobs apart from pipelines: a job id never equals its pipeline's here,
    # so a client that reads the one for the other is caught.
    return run.id * 10 + 1


def job_json(base: str, repo: ds.Repo, run: ds.WorkflowRun) -> dict[str, Any]:
    finished = run.status == "completed"
    status = RUN_STATUS.get(run.conclusion or "", "failed") if finished else JOB_WAITING.get(run.status, "running")
    commit = {"id": run.sha, "short_id": run.sha[:8], "title": run.workflow, "created_at": ts(run.created_at)}
    pipeline = {"id": run.id, "project_id": repo.id, "ref": run.branch, "sha": run.sha, "status": status}
    return {
        "id": job_id(run),
        "name": job_name(run.workflow),
        "stage": "deploy" if job_name(run.workflow).startswith("deploy") else "test",
        "status": status,
        "ref": run.branch,
        "tag": False,
        "allow_failure": False,
        "source": EVENT_SOURCE.get(run.event, run.event),
        "created_at": ts(run.created_at),
        "started_at": ts(run.started_at),
        "finished_at": ts(run.updated_at) if finished else None,
        "duration": (run.updated_at - run.started_at).total_seconds() if finished else None,
        "commit": commit,
        "pipeline": pipeline,
        "web_url": f"{base}/{repo.full_name}/-/jobs/{job_id(run)}",
    }


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
        "user": user_json(base, dep.creator),
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
        "author": user_json(base, "alice"),
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
        "author": user_json(base, issue.author),
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
