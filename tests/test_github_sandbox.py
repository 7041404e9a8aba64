"""The sandbox's GitHub as the real PyGithub meets it: paging, GraphQL, rate-limit headers."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from github import Auth, Github, GithubException
from github_helpers import NOW, TOKEN, connect, records, repo_record

from devmetrics.config import GitHubSource, SyncSection
from devmetrics.connectors.github import GitHubConnector
from devmetrics.connectors.github_queries import QUERIES
from devmetrics.errors import ForgeError
from devmetrics.sandbox.dataset import Dataset
from devmetrics.sandbox.github import GitHubApp
from devmetrics.sandbox.github_graphql import validation_errors
from devmetrics.sandbox.server import Sandbox


def client(sandbox: Sandbox, path: str = "/github", per_page: int = 30) -> Github:
    return Github(base_url=sandbox.url + path, auth=Auth.Token("ghp_sandboxtoken"), per_page=per_page,
                  seconds_between_requests=None, seconds_between_writes=None)


def test_pygithub_pages_through_link_headers_keeping_filters(sandbox: Sandbox, dataset: Dataset) -> None:
    pulls = list(client(sandbox).get_repo("acme/api").get_pulls(state="closed", sort="updated"))
    source = dataset.repo("github", "acme/api")
    assert source is not None
    assert len(pulls) == sum(1 for p in source.pulls if p.closed_at) > 90  # 4+ pages of 30
    assert sandbox.requests("github:GET /repos/{owner}/{repo}/pulls") >= 4
    answer = requests.get(sandbox.url + "/github/repos/acme/api/pulls?state=closed&sort=updated&page=2",
                          headers={"Authorization": "token x"}, timeout=10)
    links = answer.links
    assert set(links) == {"next", "last", "first", "prev"}
    assert all("state=closed" in link["url"] and "sort=updated" in link["url"] for link in links.values())


def test_payloads_follow_githubs_shapes(sandbox: Sandbox) -> None:
    repo = client(sandbox).get_repo("acme/api")
    run = repo.get_workflow_runs()[0]
    assert run.repository.full_name == "acme/api" and run.jobs_url.startswith(sandbox.url + "/github/repos/acme/api/")
    assert repo.get_contents("requirements.txt").decoded_content.startswith(b"requests==")  # type: ignore[union-attr]
    statuses = list(repo.get_deployments()[0].get_statuses())
    assert statuses and statuses[0].state in {"success", "failure", "error", "inactive", "in_progress"}


def test_a_wrong_graphql_field_gets_githubs_error(sandbox: Sandbox) -> None:
    query = 'query { repository(owner: "acme", name: "api") { pullRequests(first: 1) { nodes { nmber } } } }'
    answer = requests.post(sandbox.url + "/github/graphql", json={"query": query},
                           headers={"Authorization": "bearer x"}, timeout=10)
    assert answer.status_code == 200  # GitHub answers GraphQL errors with 200
    (error,) = answer.json()["errors"]
    assert error["message"] == "Field 'nmber' doesn't exist on type 'PullRequest'"
    assert error["locations"] == [{"line": 1, "column": 83}]
    with pytest.raises(GithubException):  # and PyGithub raises it
        client(sandbox).requester.graphql_query(query, {})


def test_connection_limits_as_on_github(sandbox: Sandbox) -> None:
    query = 'query { repository(owner: "acme", name: "api") { pullRequests(first: 101) { totalCount } } }'
    _, data = client(sandbox).requester.requestJsonAndCheck("POST", "/graphql", input={"query": query})
    assert data["data"] == {"repository": None}
    assert "exceeds the `first` limit of 100 records" in data["errors"][0]["message"]
    assert data["errors"][0]["path"] == ["repository", "pullRequests"]


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_connector_query_is_valid_against_githubs_schema(name: str) -> None:
    assert validation_errors(QUERIES[name]) == []


def test_the_connector_sends_only_those_queries(sandbox: Sandbox, github_app: GitHubApp) -> None:
    connector = connect(sandbox)
    for repo in connector.list_repos():
        for stream in connector.streams:
            records(connector.fetch(repo, stream.name, NOW - timedelta(days=30)))
    assert github_app.graphql_queries and set(github_app.graphql_queries) <= set(QUERIES.values())
    assert all(validation_errors(q) == [] for q in github_app.graphql_queries)


def test_rate_limit_headers_budgets_and_free_304s(sandbox: Sandbox) -> None:
    url, auth = sandbox.url + "/github/repos/acme/api/releases", {"Authorization": "token x"}
    first = requests.get(url, headers=auth, timeout=10)
    assert first.headers["X-RateLimit-Resource"] == "core" and first.headers["X-RateLimit-Used"] == "1"
    again = requests.get(url, headers={**auth, "If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.headers["X-RateLimit-Used"] == "1"  # not charged
    graphql = requests.post(sandbox.url + "/github/graphql", headers=auth, timeout=10,
                            json={"query": "query { rateLimit { remaining } }"})
    assert graphql.headers["X-RateLimit-Resource"] == "graphql"
    limits = client(sandbox).get_rate_limit().resources
    assert (limits.core.used, limits.graphql.used) == (1, 1)


def test_requests_without_a_token_are_refused(sandbox: Sandbox) -> None:
    answer = requests.get(sandbox.url + "/github/repos/acme/api", timeout=10)
    assert answer.status_code == 401 and answer.json()["message"] == "Requires authentication"


def test_enterprise_paths_keep_api_v3_in_links_and_urls(sandbox: Sandbox) -> None:
    repo = client(sandbox, "/github/api/v3").get_repo("acme/api")
    assert repo.url == sandbox.url + "/github/api/v3/repos/acme/api"
    assert len(list(repo.get_pulls(state="all"))) == 141
    answer = requests.get(repo.url + "/pulls?state=all", headers={"Authorization": "token x"}, timeout=10)
    assert answer.links["next"]["url"].startswith(repo.url + "/pulls?")
    assert answer.json()[0]["url"].startswith(repo.url + "/pulls/")


def test_github_app_installation_auth(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    monkeypatch.setenv("SANDBOX_APP_KEY", pem)
    source = GitHubSource(api_url=sandbox.url + "/github", repos=["acme/api"], app_id=42,
                          app_private_key_env="SANDBOX_APP_KEY", app_installation_id=7)
    connector = GitHubConnector(source, SyncSection(), "")
    pulls, _ = records(connector.fetch(repo_record(connector, "acme/api"), "pull_requests", None))
    assert len(pulls) == 141
    assert sandbox.requests("github:POST /app/installations/{installation_id}/access_tokens") == 1


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as a private CA would issue (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "devmetrics sandbox CA")])
    # Valid for decades: OpenSSL checks it against the real clock, whatever the suite's clock says.
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2100, 1, 1, tzinfo=UTC))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "ca.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_a_private_ca_is_trusted_through_ca_bundle(dataset: Dataset, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Sandbox([("/github", GitHubApp(dataset))])
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)  # HTTPS for this test
    with server:
        api_url = server.url.replace("http://", "https://") + "/github/api/v3"
        untrusted = GitHubConnector(GitHubSource(api_url=api_url, repos=["acme/api"]), SyncSection(retries=0), TOKEN)
        with pytest.raises(ForgeError, match="cannot reach"):
            untrusted.list_repos()
        trusted = GitHubConnector(GitHubSource(api_url=api_url, repos=["acme/api"], ca_bundle=str(cert)),
                                  SyncSection(retries=0), TOKEN)
        assert [r.full_name for r in trusted.list_repos()] == ["acme/api"]
