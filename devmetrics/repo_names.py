"""Repository names that cannot steer a request: checked where they enter, encoded where used.

A name comes from the config or from a forge's listing, and ends up in a request path
(`/repos/OWNER/NAME/...`, `/projects/GROUP%2FPROJECT/...`). `acme/../../user` would make
an HTTP client ask `/user` with the token attached (clients remove dot segments), so:

- the config accepts only names made of the forge's own characters (`github_entry_problem`,
  `gitlab_entry_problem`), and each connector drops a listed name that is not (with a warning);
- every path segment is percent-encoded when a request is built (`segment`, `path_segments`),
  and a path from the forge (a branch, a file in a tree) with an empty, `.` or `..` segment
  is refused.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# GitHub: an owner is letters, digits and hyphens (Enterprise managed users add `_shortcode`),
# not starting with a hyphen; a repository name is letters, digits, `.`, `-` and `_`.
GITHUB_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
GITHUB_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
# GitLab: each path segment is letters, digits, `_`, `-` and `.`, not starting with `-`.
GITLAB_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}")


def _dots_only(part: str) -> bool:
    return set(part) == {"."}


def github_name_problem(full_name: str) -> str | None:
    """Why `owner/name` is not a GitHub repository name, or None when it is one."""
    owner, slash, name = full_name.partition("/")
    if not slash or "/" in name:
        return "is not owner/name"
    if not GITHUB_OWNER.fullmatch(owner):
        return f"owner {owner!r} is not a GitHub owner (letters, digits and hyphens)"
    if not GITHUB_REPO.fullmatch(name) or _dots_only(name):
        return f"name {name!r} is not a GitHub repository name (letters, digits, '.', '-', '_'; not '.' or '..')"
    return None


def github_entry_problem(entry: str) -> str | None:
    """A configured GitHub entry: `owner/name`, or `owner/*` for every repo of an owner."""
    owner, _, name = entry.partition("/")
    return github_name_problem(f"{owner}/x" if name == "*" else entry)


def gitlab_path_problem(path: str) -> str | None:
    """Why `group[/subgroup...]/project` is not a GitLab project path, or None."""
    parts = path.split("/")
    if len(parts) < 2:
        return "is not group/project (subgroups allowed: group/subgroup/project)"
    for part in parts:
        if not GITLAB_SEGMENT.fullmatch(part) or _dots_only(part):
            return (f"segment {part!r} is not a GitLab path (letters, digits, '_', '-', '.'; "
                    "not empty, '.' or '..')")
    return None


def gitlab_entry_problem(entry: str) -> str | None:
    """A configured GitLab entry: `group/project`, or `group/*` (a group and its subgroups)."""
    if entry.endswith("/*"):
        return gitlab_path_problem(entry[:-2] + "/x")
    return gitlab_path_problem(entry)


def segment(value: str) -> str:
    """One path segment, percent-encoded (a `/` or `?` in it cannot start another)."""
    if not value or _dots_only(value):
        raise ValueError(f"{value!r} cannot be a path segment")
    return quote(value, safe="")


def path_segments(path: str) -> str:
    """A slash-separated path from the forge (a branch, a file), each segment encoded."""
    return "/".join(segment(part) for part in path.split("/"))


def github_repo_path(full_name: str) -> str:
    """`/repos/OWNER/NAME`, both encoded."""
    owner, _, name = full_name.partition("/")
    return f"/repos/{segment(owner)}/{segment(name)}"
