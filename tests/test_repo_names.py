"""No configured or listed repository name can steer a request out of its repo's API prefix.

`repos = ["acme/../../user"]` made the GitHub connector ask /api/v3/user with the token
attached (HTTP clients remove dot segments). Names are now checked at the config and at
every listing, and every path segment is encoded: these tests send hostile names through
the config and through the forge's own listings, and read every request the sandbox
received (`Sandbox.received`, recorded before any mount or fault) to prove it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
from conftest import GITHUB_NOW
from test_bad_input import assert_one_clear_line, run

from devmetrics.config import parse_config
from devmetrics.errors import ConfigError
from devmetrics.repo_names import github_entry_problem, gitlab_entry_problem
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import build_dataset
from devmetrics.sandbox.server import Sandbox
from devmetrics.store import open_engine
from devmetrics.sync import SyncOptions, run_sync

TOKEN_ENV = "DM_REPO_NAMES_TOKEN"

GITHUB_HOSTILE = ["acme/../../user", "../../rate_limit", "acme/api/../../../../user", "acme/..", "acme/.",
                  "acme/api?per_page=1", "acme/api#x", "acme/%2e%2e", "acme/a b", "acme\\..\\user",
                  "/acme/api", "acme/api/", "acme//api", "-acme/api", "acme/api/issues", ""]
GITLAB_HOSTILE = ["acme/../../../user", "acme/platform/../../../../users", "acme//x", "acme/./x",
                  "acme/platform/app/../../../../../version", "acme/%2e%2e/x", "/acme/x", "acme/x/",
                  "acme", "acme/x?private_token=1", "acme/-x", "acme/x y", "../acme/*", ""]


@pytest.fixture
def forge() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    sandbox, registries = build_sandbox(build_dataset(now=GITHUB_NOW))
    with sandbox:
        yield sandbox, registries


def config_for(sandbox: Sandbox, registries: dict[str, str], tmp_path: Path,
               github: list[str] | None = None, gitlab: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"database": {"url": f"sqlite:///{tmp_path / 'dm.db'}"},
                            "sync": {"retries": 0, "timeout": 10, "max_wait": 5}, "registries": registries}
    if github is not None:
        data["github"] = [{"api_url": f"{sandbox.url}/github", "token_env": TOKEN_ENV, "repos": github}]
    if gitlab is not None:
        data["gitlab"] = [{"url": f"{sandbox.url}/gitlab", "token_env": TOKEN_ENV, "projects": gitlab}]
    return data


# ------------------------------------------------------------------------ the config

@pytest.mark.parametrize("name", GITHUB_HOSTILE)
def test_a_hostile_github_name_is_refused_by_the_config(name: str) -> None:
    with pytest.raises(ConfigError, match=r"github\[0\]\.repos"):
        parse_config({"github": [{"repos": ["acme/api", name]}]})


@pytest.mark.parametrize("name", GITLAB_HOSTILE)
def test_a_hostile_gitlab_path_is_refused_by_the_config(name: str) -> None:
    with pytest.raises(ConfigError, match=r"gitlab\[0\]\.projects"):
        parse_config({"gitlab": [{"projects": ["acme/app", name]}]})


@pytest.mark.parametrize("entry", ["acme/api", "acme/*", "Acme-Corp/my.repo_2", "octo_emu/x", "acme/.github"])
def test_real_github_names_are_accepted(entry: str) -> None:
    assert github_entry_problem(entry) is None


@pytest.mark.parametrize("entry", ["acme/app", "acme/*", "acme/platform/*", "acme/platform/tools/cli",
                                   "my.group/sub_group/pro-ject.js"])
def test_real_gitlab_paths_are_accepted(entry: str) -> None:
    assert gitlab_entry_problem(entry) is None


def test_sync_with_a_hostile_name_is_one_line_and_sends_nothing(
        forge: tuple[Sandbox, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, registries = forge
    monkeypatch.setenv(TOKEN_ENV, "repo-names-token")
    path = tmp_path / "devmetrics.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "dm.db"}"\n[[github]]\n'
                    f'api_url = "{sandbox.url}/github"\ntoken_env = "{TOKEN_ENV}"\n'
                    'repos = ["acme/api", "acme/../../user"]\n')
    code, _, err = run(["sync", "--config", str(path)], capsys)
    assert_one_clear_line(code, err, 2, "github[0].repos: 'acme/../../user': is not owner/name")
    assert sandbox.received == []


# ------------------------------------------------------------------------ the listings

def hostile_github_listing(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The real org listing, plus copies of acme/api under hostile names, and acme/web with a
    default branch that would climb out of its repo in the tree request."""
    items = requests.get(f"{sandbox.url}/github/orgs/acme/repos", params={"per_page": 100}, timeout=10,
                         headers={"Authorization": "token repo-names-token"}).json()
    api = next(item for item in items if item["full_name"] == "acme/api")
    hostile = [dict(copy.deepcopy(api), full_name=name, id=9000 + i) for i, name in enumerate(GITHUB_HOSTILE)]
    hostile.append(dict(copy.deepcopy(api), full_name="other/api", id=8999))  # not acme's
    for item in items:
        if item["full_name"] == "acme/web":
            item["default_branch"] = "../../../../../../user"
    return items + hostile


def hostile_gitlab_listing(sandbox: Sandbox) -> list[dict[str, Any]]:
    url = f"{sandbox.url}/gitlab/api/v4/groups/acme/projects"
    items = requests.get(url, params={"per_page": 100, "include_subgroups": "true"}, timeout=10,
                         headers={"PRIVATE-TOKEN": "repo-names-token"}).json()
    app = next(item for item in items if item["path_with_namespace"] == "acme/platform/app")
    hostile = [dict(copy.deepcopy(app), path_with_namespace=name, id=9000 + i)
               for i, name in enumerate([*GITLAB_HOSTILE, "other/app"])]
    return items + hostile


def requests_outside(received: list[tuple[str, str]], github: set[str], gitlab: set[str]) -> list[str]:
    """Requests that are neither a listing, GraphQL, a registry, nor inside a synced repo."""
    outside = []
    for method, target in received:
        path = urlsplit(target).path
        if path in ("/github/graphql", "/gitlab/api/graphql", "/github/orgs/acme/repos",
                    "/gitlab/api/v4/groups/acme/projects") or path.startswith("/registries/"):
            continue
        parts = path.split("/")
        if path.startswith("/github/repos/") and "/".join(parts[3:5]) in github and ".." not in parts:
            continue
        if path.startswith("/gitlab/api/v4/projects/") and unquote(parts[5]) in gitlab and ".." not in parts:
            continue
        outside.append(f"{method} {target}")
    return outside


def test_no_listed_name_makes_a_request_leave_its_repo(
        forge: tuple[Sandbox, dict[str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, registries = forge
    monkeypatch.setenv(TOKEN_ENV, "repo-names-token")
    github_items, gitlab_items = hostile_github_listing(sandbox), hostile_gitlab_listing(sandbox)
    sandbox.faults.add(path=r"^/github/orgs/acme/repos", status=200, body=github_items, times=None)
    sandbox.faults.add(path=r"^/gitlab/api/v4/groups/acme/projects", status=200, body=gitlab_items, times=None)
    sandbox.reset_counts()
    config = parse_config(config_for(sandbox, registries, tmp_path, github=["acme/*"], gitlab=["acme/*"]))
    result = run_sync(config, open_engine(config.database.url), SyncOptions())

    synced = {s.repo for s in result.streams if s.stream == "pull_requests" or s.stream == "merge_requests"}
    assert synced == {"acme/api", "acme/web", "acme/platform/app", "acme/platform/tools/cli"}
    assert requests_outside(sandbox.received, {"acme/api", "acme/web"},
                            {"acme/platform/app", "acme/platform/tools/cli"}) == []
    assert sandbox.requests("github:GET /repos/{owner}/{repo}/pulls") == 0  # GraphQL reads PRs
    assert any(s.repo == "acme/web" and s.stream == "dependencies" for s in result.streams)
    skipped = [r.getMessage() for r in caplog.records if "skipped the listed" in r.getMessage()]
    assert len(skipped) == len(GITHUB_HOSTILE) + 1 + len(GITLAB_HOSTILE) + 1, skipped


def test_a_hostile_path_in_a_tree_is_not_requested(
        forge: tuple[Sandbox, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, registries = forge
    monkeypatch.setenv(TOKEN_ENV, "repo-names-token")
    tree = {"sha": "0" * 40, "truncated": False, "tree": [
        {"path": "../../../../../../user/requirements.txt", "type": "blob"},
        {"path": "ok/../../../../../../../rate_limit/requirements.txt", "type": "blob"}]}
    sandbox.faults.add(path=r"/git/trees/", status=200, body=tree, times=None)
    sandbox.reset_counts()
    config = parse_config(config_for(sandbox, registries, tmp_path, github=["acme/api"]))
    run_sync(config, open_engine(config.database.url), SyncOptions())
    assert requests_outside(sandbox.received, {"acme/api"}, set()) == []
    assert not any("/contents/" in target for _, target in sandbox.received)


def test_a_repository_github_names_oddly_fails_that_repo_and_sends_nothing_more(
        forge: tuple[Sandbox, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, registries = forge
    monkeypatch.setenv(TOKEN_ENV, "repo-names-token")
    sandbox.faults.add(path=r"^/github/repos/acme/api$", status=200, times=None,
                       body={"full_name": "acme/../../user", "default_branch": "main"})
    sandbox.reset_counts()
    config = parse_config(config_for(sandbox, registries, tmp_path, github=["acme/api", "acme/web"]))
    result = run_sync(config, open_engine(config.database.url), SyncOptions(deps=False))
    failed = [s for s in result.failures if s.repo == "acme/api"]
    assert len(failed) == 1 and "GitHub named it 'acme/../../user', which is not owner/name" in str(failed[0].error)
    assert requests_outside(sandbox.received, {"acme/api", "acme/web"}, set()) == []
    assert {s.repo for s in result.streams if s.stream == "pull_requests"} == {"acme/web"}
