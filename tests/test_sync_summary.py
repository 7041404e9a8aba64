"""What a sync says it did (issue 17 item 4; docs/cron.md's exit statuses).

Every repo synced: one line, exit 0. Some repos failed: a line per failed repo with its
reason, then "synced 2 of 3 repos", exit 4. Every repo failed (a wrong token, a host that
cannot be reached): "0 of 3 repos synced; acme/api: 401 ... — check the token in ...", exit 1.
`--repo` matching nothing is a usage error naming the listed repos (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_bad_input import run

from devmetrics.cli import plural
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.server import Sandbox

TOKEN_ENV = "DM_SYNC_SUMMARY_TOKEN"
REPOS = ["acme/api", "acme/web", "acme/legacy-billing"]


@pytest.fixture
def forge(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv(TOKEN_ENV, "ghp_summaryTOKEN0123456789")
    sandbox, _ = build_sandbox()
    with sandbox:
        yield sandbox


def config(tmp_path: Path, api_url: str, repos: list[str] = REPOS) -> list[str]:
    listed = ", ".join(f'"{r}"' for r in repos)
    path = tmp_path / "devmetrics.toml"
    path.write_text(f"""
[database]
url = "sqlite:///{tmp_path / 'dm.db'}"
[sync]
retries = 0
timeout = 30
[[github]]
api_url = "{api_url}"
token_env = "{TOKEN_ENV}"
repos = [{listed}]
""")
    return ["--config", str(path)]


def lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_plural() -> None:
    assert [plural(n, "repo") for n in (0, 1, 2, 1204)] == ["0 repos", "1 repo", "2 repos", "1,204 repos"]


def test_every_repo_synced(tmp_path: Path, forge: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["sync", *config(tmp_path, f"{forge.url}/github", ["acme/api"]), "--no-deps"], capsys)
    assert code == 0, err
    assert lines(err)[-1].startswith("synced 1 repo: ") and " records written, " in err


def test_a_wrong_token_fails_every_repo_and_says_which_variable(tmp_path: Path, forge: Sandbox,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    forge.faults.add(path=r"/github", status=401, times=None,
                     body={"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
    code, _, err = run(["sync", *config(tmp_path, f"{forge.url}/github"), "--no-deps"], capsys)
    assert code == 1, err
    assert "Traceback" not in err and "unexpected" not in err
    last = lines(err)[-1]
    assert last.startswith("devmetrics: error: 0 of 3 repos synced; acme/api: 401 Unauthorized: Bad credentials"), err
    assert last.endswith(f"— check the token in {TOKEN_ENV}"), err
    assert len(lines(err)) == 4  # one line per failed repo, then the summary


def test_an_unreachable_host_fails_every_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "ghp_summaryTOKEN0123456789")
    code, _, err = run(["sync", *config(tmp_path, "http://127.0.0.1:9/github", ["acme/api"]), "--no-deps"], capsys)
    assert code == 1, err
    assert lines(err)[-1].startswith("devmetrics: error: 0 of 1 repo synced; acme/api: cannot reach "), err


def test_some_repos_failed(tmp_path: Path, forge: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    forge.faults.add(path=r"/repos/acme/web", status=404, times=None, body={"message": "Not Found"})
    code, _, err = run(["sync", *config(tmp_path, f"{forge.url}/github", ["acme/api", "acme/web"]), "--no-deps"],
                       capsys)
    assert code == 4, err
    failed = [line for line in lines(err) if line.startswith("devmetrics: error: ")]
    assert len(failed) == 1 and failed[0].startswith("devmetrics: error: acme/web: "), err
    assert "404" in failed[0]
    assert lines(err)[-1].startswith("synced 1 of 2 repos in full (1 failed, errors above): "), err


def test_a_repo_glob_that_matches_nothing_is_a_usage_error(tmp_path: Path, forge: Sandbox,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sync", *config(tmp_path, f"{forge.url}/github", ["acme/api", "acme/web"]), "--no-deps"]
    code, _, err = run([*args, "--repo", "acme/wbe"], capsys)
    assert code == 2, err
    assert lines(err) == ["devmetrics: error: devmetrics sync: Invalid value for '--repo': acme/wbe matches none of "
                          "the repos the config lists (acme/api, acme/web); did you mean 'acme/web'?"]
