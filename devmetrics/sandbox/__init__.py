"""The sandbox forge: GitHub, GitLab and package registries on loopback, from one dataset.

`build_sandbox()` mounts every app on one server: GitHub at /github (REST, GraphQL at
/github/graphql, Enterprise-style /github/api/v3 and /github/api/graphql), GitLab at
/gitlab (/gitlab/api/v4), the registries at /registries/<ecosystem>. Tests, the demo and
the benchmarks all use it; `python -m devmetrics.sandbox` serves it standalone.
"""

from __future__ import annotations

from devmetrics.sandbox.dataset import Dataset, build_dataset
from devmetrics.sandbox.server import App, Sandbox


def sandbox_apps(dataset: Dataset) -> tuple[list[tuple[str, App]], dict[str, str]]:
    """The mounted apps, and each registry's path (ecosystem -> path below the base URL)."""
    from devmetrics.sandbox.github import GitHubApp
    from devmetrics.sandbox.github_posts import add_post_routes
    from devmetrics.sandbox.gitlab import GitLabApp
    from devmetrics.sandbox.registries import registry_apps

    github = GitHubApp(dataset)
    add_post_routes(github)
    apps: list[tuple[str, App]] = [("/github", github), ("/gitlab", GitLabApp(dataset))]
    registries = registry_apps(dataset)
    apps += [(f"/registries/{ecosystem}", app) for ecosystem, app in registries.items()]
    return apps, {ecosystem: f"/registries/{ecosystem}" for ecosystem in registries}


def build_sandbox(dataset: Dataset | None = None, port: int = 0) -> tuple[Sandbox, dict[str, str]]:
    """A sandbox (not started) and the registry base URLs to put in a config."""
    apps, paths = sandbox_apps(dataset or build_dataset())
    sandbox = Sandbox(apps, port=port)
    return sandbox, {ecosystem: sandbox.url + path for ecosystem, path in paths.items()}


__all__ = ["Sandbox", "build_dataset", "build_sandbox", "sandbox_apps"]
