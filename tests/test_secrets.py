"""The one masking rule (devmetrics/secrets.py) and the forge messages that must keep to it.

- tokens are masked as whole values, never inside other words; a configured token shorter
  than 8 characters is refused (exit 2, one line);
- URL userinfo and credential-like query parameters are removed wherever a URL is printed,
  logged, raised or stored; credentials in a forge's URL are refused, a registry mirror's are
  sent as HTTP auth;
- a forge's error page (HTML) never reaches a message: "GitHub answered 502 Bad Gateway";
- an unreachable forge is one short line.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from github_helpers import connect, records, repo_record
from test_bad_input import assert_one_clear_line, run

from devmetrics import secrets
from devmetrics.config import GitLabSource, SyncSection, parse_config
from devmetrics.connectors.gitlab import GitLabConnector
from devmetrics.deps.registries import RegistryClient, RegistryError
from devmetrics.errors import ConfigError, ForgeError
from devmetrics.models import Repository
from devmetrics.sandbox.server import Sandbox
from devmetrics.store import open_engine, save_repository

HTML_PAGE = ("<!DOCTYPE html>\n<html><head><title>Unicorn! &middot; GitHub</title><style>body{}</style>"
             "</head><body><p>We had issues producing the response to your request.</p>" + "x" * 3000
             + "</body></html>").encode()


# --------------------------------------------------------------------------- the rule

def test_a_token_is_masked_whole_and_never_inside_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_TEST_TOKEN", "exceeded")
    assert secrets.redact("Max retries exceeded") == "Max retries ***"
    assert secrets.redact("exceededly, notexceeded, exceeded2") == "exceededly, notexceeded, exceeded2"
    assert secrets.redact("token=exceeded&x, 'exceeded', /exceeded/, a%3Dexceeded") == \
        "token=***&x, '***', /***/, a%3D***"


def test_a_secret_named_variable_shorter_than_8_is_not_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_TEST_TOKEN", "x")  # the old rule turned this into "Ma*** retries e***ceeded"
    assert secrets.redact("Max retries exceeded") == "Max retries exceeded"


def test_a_configured_token_shorter_than_8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_SHORT", "x")
    path = tmp_path / "devmetrics.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "dm.db"}"\n[[github]]\n'
                    'api_url = "http://127.0.0.1:9/github"\ntoken_env = "DM_SHORT"\nrepos = ["acme/api"]\n')
    code, out, err = run(["sync", "--config", str(path)], capsys)
    assert_one_clear_line(code, err, 2, "github[0].token_env: environment variable DM_SHORT holds 1 character, "
                                        "which is not a token")
    assert not (tmp_path / "dm.db").exists()


def test_a_variable_the_config_names_is_masked_whatever_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DM_FORGE_PAT_NAMELESS", "pat-value-0123456789")
    assert "pat-value" in secrets.redact("pat-value-0123456789")
    secrets.watch_env(["DM_FORGE_PAT_NAMELESS"])
    assert secrets.redact("auth pat-value-0123456789 failed") == "auth *** failed"


@pytest.mark.parametrize(("text", "expected"), [
    ("https://user:secret@mirror.example/simple", "https://mirror.example/simple"),
    ("see https://TOKEN0123@github.com/acme/api.git now", "see https://github.com/acme/api.git now"),
    ("GET https://h/x?a=1&private_token=zz&b=2 failed", "GET https://h/x?a=1&b=2 failed"),
    ("https://h/x?token=zz", "https://h/x"),
    ("url: /api/v4/x?access_token=q)", "url: /api/v4/x)"),
    ("https://s3/x?X-Amz-Signature=abc&X-Amz-Credential=def&v=1", "https://s3/x?v=1"),
    ("https://h/?key=1&sig=2&signature=3&password=4&secret=5&client_secret=6&api_key=7&q=ok", "https://h/?q=ok"),
    ("https://registry.npmjs.org/@scope%2Fname", "https://registry.npmjs.org/@scope%2Fname"),
    ("what? no. did you mean 'deployments'?", "what? no. did you mean 'deployments'?"),
    ("https://h/search?q=tokens&page=2", "https://h/search?q=tokens&page=2"),
    ("postgresql+psycopg://dm:pw@db.example/metrics", "postgresql+psycopg://db.example/metrics"),
])
def test_urls_lose_userinfo_and_credential_parameters(text: str, expected: str) -> None:
    assert secrets.redact(text) == expected


def test_credentials_in_a_forge_url_are_refused_without_showing_them() -> None:
    for source in ({"github": [{"api_url": "https://dm-user:pw-marker-123@ghe.example/api/v3", "repos": ["a/b"]}]},
                   {"gitlab": [{"url": "https://gitlab.example/?private_token=pt-marker-123", "projects": ["a/b"]}]}):
        with pytest.raises(ConfigError) as raised:
            parse_config(source)
        assert "credentials in a URL are refused" in str(raised.value)
        assert "marker" not in str(raised.value) and "dm-user" not in str(raised.value)


def test_every_stored_string_is_cleaned(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'dm.db'}")
    save_repository(engine, Repository(forge="github", host="ghe.example", full_name="acme/api",
                                       url="https://bot:pw-marker-123@ghe.example/acme/api?token=qt-marker-456"))
    with engine.connect() as conn:
        url = conn.execute(sa.text("SELECT url FROM repository")).scalar()
    assert url == "https://ghe.example/acme/api"


def test_a_registry_mirror_gets_its_credentials_as_auth_and_never_shows_them(sandbox: Sandbox) -> None:
    base = sandbox.url.replace("http://", "http://mirror-user:pw-marker-123@") + "/nothing?token=qt-marker-456"
    client = RegistryClient({"pypi": base}, retries=0)
    assert client.base_urls["pypi"] == f"{sandbox.url}/nothing"
    with pytest.raises(RegistryError) as raised:
        client.get("pypi", "/pypi/requests/json")
    assert "marker" not in str(raised.value) and "HTTP 404" in str(raised.value)
    assert sandbox.received[-1] == ("GET", "/nothing/pypi/requests/json?token=qt-marker-456")


# --------------------------------------------------------------- what forges answer

def test_github_502_html_page_stays_out_of_the_message(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox, sync=SyncSection(retries=1))
    repo = repo_record(connector, "acme/api")
    sandbox.faults.add(path=r"/releases", status=502, body=HTML_PAGE, headers={"Content-Type": "text/html"},
                       times=None)
    with pytest.raises(ForgeError) as raised:
        records(connector.fetch(repo, "releases", None))
    assert str(raised.value).endswith("acme/api releases: GitHub answered 502 Bad Gateway")
    assert "<" not in str(raised.value) and "Unicorn" not in caplog.text


def test_gitlab_html_error_pages_stay_out_of_the_message(gitlab_sandbox: Sandbox) -> None:
    source = GitLabSource(url=f"{gitlab_sandbox.url}/gitlab", projects=["acme/platform/app"])
    connector = GitLabConnector(source, SyncSection(retries=1), "glpat-secrets-test-token")
    for status, expected in ((404, "HTTP 404 Not Found"), (502, "HTTP 502 after 1 retries")):
        gitlab_sandbox.faults.clear()
        gitlab_sandbox.faults.add(path=r"/projects/", status=status, body=HTML_PAGE,
                                  headers={"Content-Type": "text/html"}, times=None)
        with pytest.raises(ForgeError) as raised:
            connector.list_repos()
        assert str(raised.value).endswith(f"acme/platform/app (projects): {expected}")
        assert "<" not in str(raised.value)


def test_an_unreachable_forge_is_one_short_line() -> None:
    from devmetrics.config import GitHubSource
    from devmetrics.connectors.github import GitHubConnector

    source = GitHubSource(api_url="http://127.0.0.1:9/api/v3", repos=["acme/api"])
    with pytest.raises(ForgeError) as raised:
        GitHubConnector(source, SyncSection(retries=0, timeout=2), "ghp_unreachable_token").list_repos()
    assert str(raised.value) == ("127.0.0.1:9 acme/api repositories: cannot reach http://127.0.0.1:9/api/v3: "
                                 "connection refused")


def test_a_secret_left_in_an_older_store_is_not_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written before the rule (the password of an api_url was stored with the host)
    still prints nothing secret: report, digest and explain outputs pass the rule too."""
    monkeypatch.setenv("DM_OLD_STORE_TOKEN", "ghp_oldstoreTOKEN12345")
    engine = open_engine(f"sqlite:///{tmp_path / 'dm.db'}")
    with engine.begin() as conn:  # written as an older devmetrics did: no cleaning
        conn.execute(sa.text("INSERT INTO repository (forge, host, full_name, url, archived, fork) VALUES "
                             "('github', 'dm-user:pw-marker-123@ghe.example', 'acme/api', "
                             "'https://dm-user:pw-marker-123@ghe.example/acme/api', 0, 0)"))
        conn.execute(sa.text("INSERT INTO incident (repo_id, source, incident_id, title, url, created_at, labels) "
                             "VALUES (1, 'issues', '7', 'Outage, token ghp_oldstoreTOKEN12345 leaked', "
                             "'https://ghe.example/acme/api/issues/7?token=qt-marker-456', "
                             "'2026-11-18 10:00:00.000000', '[]')"))
    engine.dispose()
    path = tmp_path / "devmetrics.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "dm.db"}"\n[[github]]\n'
                    'api_url = "https://ghe.example/api/v3"\ntoken_env = "DM_OLD_STORE_TOKEN"\nrepos = ["acme/api"]\n')
    printed = []
    for argv in (["digest", "--week", "2026-W47"], ["digest", "--week", "2026-W47", "--format", "json"],
                 ["report", "--format", "json", "--since", "2026-11-01", "--until", "2026-11-30"],
                 ["explain", "incidents", "--repo", "acme/api", "--since", "2026-11-01", "--until", "2026-11-30",
                  "--format", "json"]):
        done = subprocess.run([sys.executable, "-m", "devmetrics", argv[0], "--config", str(path), *argv[1:]],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (argv, done.stderr)
        printed.append(done.stdout + done.stderr)
    assert "Outage, token \\*\\*\\* leaked" in printed[0]  # masked before Markdown escaped it
    assert not [text for text in printed if "marker" in text or "ghp_oldstore" in text]
