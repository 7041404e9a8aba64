"""GitLab's payloads as devmetrics records, and the GitLab quirks that shape them.

Pure functions of the REST and GraphQL bodies (no HTTP), so each forge quirk lives here
once, with the reason beside it. The connector sets repo_id later (sync.py owns it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from devmetrics import links
from devmetrics.models import Deployment, Incident, PipelineRun, PullRequest, Release

# GitLab deployment and pipeline states in the record's vocabulary (metrics.md §1).
DEPLOYMENT_STATUS = {
    "created": "queued",
    "running": "in_progress",
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "blocked": "pending",
    "skipped": "cancelled",
}
# A job's status in the same vocabulary: a job is a deployment of the `workflow` signal.
JOB_STATUS = {
    **DEPLOYMENT_STATUS,
    "pending": "queued",
    "manual": "pending",  # waits for someone to press play, as a blocked deployment does
}
PIPELINE_CONCLUSION = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "skipped",
}

# GitLab keeps the draft state in the title ("Draft: ...", older "WIP: ..."); the record
# keeps the title a reviewer reads, as GitHub does.
DRAFT_PREFIX = re.compile(r"^\s*(\[draft\]|\(draft\)|draft:|draft\s+-|wip:|\[wip\])\s*", re.I)
# There is no "ready" event in REST: GitLab writes a system note (older: "unmarked as a
# **Work In Progress**"). Approvals are system notes too, with their time.
READY_NOTES = ("marked this merge request as **ready**", "unmarked as a **work in progress**")
APPROVED_NOTE = "approved this merge request"
# GitLab's Revert button: "This reverts merge request !12" (links.py knows GitHub's forms).
REVERTS_MR = re.compile(r"\breverts merge request !(\d+)", re.I)
# On GitLab `#12` is an issue; only `!12` names a merge request.
MR_REF = re.compile(r"(?:^|[\s(])!(\d+)\b")
# Project and group access tokens act as bot users named project_<id>_bot_<hash>; service
# accounts GitLab names service_account_<hash> or service_account_group_<id>_<hash> (one
# its owner named otherwise is a bot only by the user API's `bot`).
TOKEN_BOT = re.compile(r"^((project|group)_\d+_bot|service_account_)")


def parse_time(value: str | None) -> datetime | None:
    """A GitLab timestamp (Z or an offset) as a UTC-aware datetime."""
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def is_bot(user: dict[str, Any] | None, bots: tuple[str, ...]) -> bool:
    """`bot` (GraphQL, the user API), a `[bot]` login, a project/group token bot, a service
    account by GitLab's name for it, or one the config lists."""
    login = (user or {}).get("username")
    return bool((user or {}).get("bot")) or links.is_bot(login, None, bots) or bool(login and TOKEN_BOT.match(login))


def pull_request(
    mr: dict[str, Any], detail: dict[str, Any], titles: dict[str, int], bots: tuple[str, ...]
) -> PullRequest:
    """An MR from its REST list entry and its GraphQL (or REST) commits and notes."""
    author = (mr.get("author") or {}).get("username")
    title = DRAFT_PREFIX.sub("", mr["title"]) if mr.get("draft") else mr["title"]
    created = parse_time(mr["created_at"])
    ready = ready_at(detail.get("notes", [])) or created
    return PullRequest(
        number=mr["iid"],
        title=title,
        url=mr.get("web_url"),
        author=author,
        author_is_bot=is_bot({**(mr.get("author") or {}), **detail.get("author", {})}, bots),
        draft=bool(mr.get("draft") or mr.get("work_in_progress")),
        created_at=created,
        ready_at=ready,
        first_commit_at=min(
            filter(None, (parse_time(c.get("authoredDate")) for c in detail.get("commits", []))),
            default=None,
        ),
        first_review_at=first_response(detail.get("notes", []), author, bots, ready),
        merged_at=parse_time(mr.get("merged_at")),
        # GitHub closes a PR when it merges it; GitLab leaves closed_at empty then.
        closed_at=parse_time(mr.get("closed_at")) or parse_time(mr.get("merged_at")),
        updated_at=parse_time(mr.get("updated_at")),
        merge_commit_sha=mr.get("squash_commit_sha") or mr.get("merge_commit_sha"),
        base_branch=mr.get("target_branch"),
        head_branch=mr.get("source_branch"),
        labels=list(mr.get("labels") or []),
        reverts_number=reverts(mr, title, titles),
    )


def first_response(
    notes: list[dict[str, Any]], author: str | None, bots: tuple[str, ...], ready: datetime | None
) -> datetime | None:
    """The first approval or user (non-system) note by someone not the author and not a bot,
    at or after `ready`: a note on a draft answered no one waiting for a review."""
    times = [
        parse_time(n["createdAt"])
        for n in notes
        if (not n["system"] or n["body"].lower().startswith(APPROVED_NOTE))
        and (n.get("author") or {}).get("username") not in (None, author)
        and not is_bot(n.get("author"), bots)
    ]
    return min((at for at in times if at is not None and (ready is None or at >= ready)), default=None)


def deployment(data: dict[str, Any]) -> Deployment:
    status = DEPLOYMENT_STATUS.get(data.get("status") or "", data.get("status"))
    finished = None
    if status in ("success", "failure"):  # deployments made through the API have no job
        finished = parse_time((data.get("deployable") or {}).get("finished_at")) or parse_time(data["updated_at"])
    return Deployment(
        source="environments",
        deployment_id=str(data["id"]),
        environment=(data.get("environment") or {}).get("name"),
        sha=data.get("sha"),
        ref=data.get("ref"),
        created_at=parse_time(data.get("created_at")),
        finished_at=finished,
        status=status,
        updated_at=parse_time(data.get("updated_at")),
    )


def deploy_job(data: dict[str, Any]) -> Deployment:
    """A run of the configured deploy job: one production deployment (metrics.md §3, `workflow`)."""
    status = JOB_STATUS.get(data.get("status") or "", data.get("status"))
    finished = parse_time(data.get("finished_at")) if status in ("success", "failure") else None
    created = parse_time(data.get("created_at"))
    return Deployment(
        source="workflow",
        deployment_id=str(data["id"]),
        environment="production",
        sha=(data.get("commit") or {}).get("id") or (data.get("pipeline") or {}).get("sha"),
        ref=data.get("ref"),
        url=data.get("web_url"),
        created_at=created,
        finished_at=finished,
        status=status,
        updated_at=parse_time(data.get("finished_at")) or parse_time(data.get("started_at")) or created,
    )


def pipeline_run(data: dict[str, Any], timing: dict[str, Any]) -> PipelineRun:
    duration = timing.get("duration")
    return PipelineRun(
        run_id=str(data["id"]),
        name=data.get("source"),
        branch=data.get("ref"),
        sha=data.get("sha"),
        event=data.get("source"),
        status=data.get("status"),
        conclusion=PIPELINE_CONCLUSION.get(data.get("status") or ""),
        url=data.get("web_url"),
        created_at=parse_time(data.get("created_at")),
        started_at=parse_time(timing.get("startedAt")),
        finished_at=parse_time(timing.get("finishedAt")),
        duration_seconds=float(duration) if duration is not None else None,
    )


def release(data: dict[str, Any]) -> Release:
    released = parse_time(data.get("released_at"))
    return Release(
        release_id=data["tag_name"],
        tag=data["tag_name"],
        name=data.get("name"),
        sha=(data.get("commit") or {}).get("id"),
        url=(data.get("_links") or {}).get("self"),
        draft=False,
        prerelease=bool(data.get("upcoming_release")),
        created_at=parse_time(data.get("created_at")),
        published_at=released,
    )


def incident(data: dict[str, Any]) -> Incident:
    body = data.get("description") or ""
    found = MR_REF.search(body)
    return Incident(
        source="gitlab-incidents" if data.get("issue_type") == "incident" else "gitlab-issues",
        incident_id=str(data["iid"]),
        title=data.get("title") or "",
        url=data.get("web_url"),
        created_at=parse_time(data.get("created_at")),
        resolved_at=parse_time(data.get("closed_at")),
        labels=list(data.get("labels") or []),
        linked_sha=links.named_sha(body),
        linked_pr=int(found.group(1)) if found else None,
    )


def newest(values: Iterable[str | None]) -> datetime | None:
    """The latest of some GitLab timestamps: the cursor a batch covers."""
    return max(filter(None, (parse_time(v) for v in values)), default=None)


def created_since(data: dict[str, Any], since: datetime | None) -> bool:
    """Whether an item was created at or after `since` (None: everything is)."""
    created = parse_time(data.get("created_at"))
    return since is None or created is None or created >= since


def released(item: Release) -> datetime:
    """When a release came out: GitLab's released_at, else when it was created."""
    return item.published_at or item.created_at or datetime.min.replace(tzinfo=UTC)


def ready_at(notes: list[dict[str, Any]]) -> datetime | None:
    """The last time the MR left draft (a system note), if it ever was a draft."""
    times = [parse_time(n["createdAt"]) for n in notes if n["system"] and n["body"].lower().startswith(READY_NOTES)]
    return max(filter(None, times), default=None)


def reverts(mr: dict[str, Any], title: str, titles: dict[str, int]) -> int | None:
    found = REVERTS_MR.search(mr.get("description") or "")
    if found:
        return int(found.group(1))
    return links.reverted_number(title, mr.get("source_branch"), mr.get("description"), titles)
