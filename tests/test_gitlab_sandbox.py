"""The sandbox's GitLab: real python-gitlab pages, filters, headers and GraphQL against it."""

from __future__ import annotations

from importlib import resources

import gitlab
import pytest
import requests
from graphql import build_schema, parse, validate

from devmetrics.connectors.gitlab import MR_DETAILS
from devmetrics.sandbox.dataset import Dataset
from devmetrics.sandbox.server import Sandbox

APP = "acme/platform/app"


def client(sandbox: Sandbox) -> gitlab.Gitlab:
    return gitlab.Gitlab(f"{sandbox.url}/gitlab", private_token="token")


def test_python_gitlab_pages_through_link_headers_keeping_filters(
    gitlab_sandbox: Sandbox, gitlab_dataset: Dataset
) -> None:
    project = client(gitlab_sandbox).projects.get(APP)
    listing = project.mergerequests.list(iterator=True, per_page=20, state="merged")
    merged = [mr.iid for mr in listing]
    expected = [p.number for p in gitlab_dataset.repo("gitlab", APP).pulls if p.merged_at]  # type: ignore[union-attr]
    assert sorted(merged) == sorted(expected)
    assert listing.total == len(expected) and listing.total_pages >= 3  # X-Total, X-Total-Pages
    assert gitlab_sandbox.counts["gitlab:GET /api/v4/projects/{id}/merge_requests"] == listing.total_pages


def test_projects_by_encoded_path_and_groups_with_subgroups(gitlab_sandbox: Sandbox) -> None:
    gl = client(gitlab_sandbox)
    assert gl.projects.get("acme/platform/tools/cli").path_with_namespace == "acme/platform/tools/cli"
    group = gl.groups.get("acme/platform")
    assert [p.path_with_namespace for p in group.projects.list(get_all=True)] == [APP]
    nested = group.projects.list(get_all=True, include_subgroups=True)
    assert sorted(p.path_with_namespace for p in nested) == [APP, "acme/platform/tools/cli"]


def test_rate_limit_headers_and_etags(gitlab_sandbox: Sandbox) -> None:
    url = f"{gitlab_sandbox.url}/gitlab/api/v4/projects/acme%2Fplatform%2Fapp"
    first = requests.get(url, timeout=5)
    assert first.headers["RateLimit-Limit"] == "2000" and "RateLimit-Reset" in first.headers
    again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
    assert again.status_code == 304


def test_deployments_refuse_updated_after_without_updated_at_order(gitlab_sandbox: Sandbox) -> None:
    deployments = client(gitlab_sandbox).projects.get(APP, lazy=True).deployments
    with pytest.raises(gitlab.GitlabListError) as caught:
        deployments.list(updated_after="2026-10-01T00:00:00Z", get_all=True)
    assert caught.value.response_code == 400
    assert deployments.list(updated_after="2026-10-01T00:00:00Z", order_by="updated_at", get_all=True)


def test_pipeline_list_has_no_timings_but_the_single_pipeline_has(gitlab_sandbox: Sandbox) -> None:
    pipelines = client(gitlab_sandbox).projects.get(APP, lazy=True).pipelines
    listed = pipelines.list(per_page=5, get_all=False)[0]
    assert "duration" not in listed.attributes
    assert pipelines.get(listed.id).duration is not None


def test_graphql_validates_against_the_schema(gitlab_sandbox: Sandbox) -> None:
    gql = gitlab.GraphQL(f"{gitlab_sandbox.url}/gitlab", token="token")
    with pytest.raises(Exception, match="Cannot query field 'reviewDecision'"):
        gql.execute('query { project(fullPath: "acme/platform/app") { mergeRequests { nodes { reviewDecision } } } }')


def test_the_connectors_queries_are_valid_gitlab_graphql() -> None:
    sdl = resources.files("devmetrics.sandbox").joinpath("data/gitlab-schema.graphql").read_text()
    schema = build_schema(sdl)
    timings = (
        "query($path: ID!) { project(fullPath: $path) "
        '{ p1: pipeline(iid: "1") { iid startedAt finishedAt duration } } }'
    )
    for query in (MR_DETAILS, timings):
        assert validate(schema, parse(query)) == []


def test_files_tree_and_compare(gitlab_sandbox: Sandbox, gitlab_dataset: Dataset) -> None:
    project = client(gitlab_sandbox).projects.get(APP, lazy=True)
    repo = gitlab_dataset.repo("gitlab", APP)
    assert repo is not None
    assert project.files.get("requirements.txt", ref="main").decode() == repo.files["requirements.txt"].encode()
    top = [entry["path"] for entry in project.repository_tree(get_all=True)]
    assert "node" in top and "node/package.json" not in top
    shas = [c["id"] for c in project.repository_compare(repo.main_line[1].sha, repo.main_line[3].sha)["commits"]]
    assert shas == [repo.main_line[2].sha, repo.main_line[3].sha]
