"""No secret anywhere: markers in tokens, URL passwords and query tokens, swept from every output.

Each scenario runs `devmetrics` as a user does (a subprocess, `-vv`) against the sandbox forge,
with the markers placed where secrets live: the forge token (in a variable whose name says
nothing, so only the config names it), registry mirror URLs with `user:PASSWORD@` and
`?token=QUERY`, a Slack webhook, and forge answers that echo all three (a 401 message, an HTML
error page, an incident whose title and URL hold them). Success and every error path are run;
then stdout, stderr (the log is on stderr), every file written (the SQLite database, its WAL,
the digest), and every text column of every table are searched for the markers.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from conftest import GITHUB_NOW

from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.dataset import build_dataset
from devmetrics.sandbox.server import Sandbox

pytestmark = pytest.mark.slow

TOKEN = "dmTOKENmarker7f3a9c2e51"
PASSWORD = "dmPASSWORDmarker5b8e11"
QUERY = "dmQUERYmarker0c4d77aa"
MARKERS = (TOKEN, PASSWORD, QUERY)
TOKEN_ENV = "DM_FORGE_PAT"  # nothing in the name says "token": only the config does
HOOK_ENV = "DM_CHAT_HOOK"
ECHO = f"Bad credentials {TOKEN} for https://bot:{PASSWORD}@ghe.example/x?private_token={QUERY}&page=2"
HTML = (f"<!DOCTYPE html><html><head><title>Unicorn!</title></head><body>{ECHO}"
        + "<p>We had issues producing the response to your request.</p>" * 40 + "</body></html>").encode()
WEEK = "2026-W47"  # the week before the dataset's "now" (GITHUB_NOW, 2026-11-23)


@dataclass
class Scenario:
    name: str
    commands: list[list[str]]
    codes: set[int]
    github_url: str | None = None  # None: the sandbox
    gitlab_url: str | None = None
    registries: str | None = None  # base of every mirror URL; None: the sandbox's, with credentials
    faults: list[dict[str, Any]] = field(default_factory=list)
    token: str = TOKEN
    extra: str = ""  # more TOML


SYNC = ["sync", "-vv"]
SCENARIOS = [
    Scenario("success", [SYNC, ["report", "--format", "json", "-vv"], ["report", "--by", "week"],
                         ["explain", "incidents", "--repo", "acme/api", "--since", "2026-08-01"],
                         ["deps", "--repo", "acme/api", "--format", "json"],
                         ["digest", "--week", WEEK, "-o", "digest.md"], ["digest", "--week", WEEK, "--format", "json"]],
             {0}),
    Scenario("401 echoing every secret", [SYNC], {4}, faults=[
        dict(path=r"/graphql", status=401, body={"message": ECHO}, times=None),
        dict(path=r"/merge_requests", status=401, body={"message": ECHO}, times=None)]),
    Scenario("502 HTML error pages", [SYNC], {4}, faults=[
        dict(path=r"/releases", status=502, body=HTML, headers={"Content-Type": "text/html"}, times=None),
        dict(path=r"/gitlab/.*/deployments", status=502, body=HTML, headers={"Content-Type": "text/html"},
             times=None)]),
    Scenario("404 HTML error pages", [SYNC], {4}, faults=[
        dict(path=r"/issues", status=404, body=HTML, headers={"Content-Type": "text/html"}, times=None)]),
    Scenario("malformed JSON", [SYNC], {4}, faults=[dict(path=r"/actions/runs|/pipelines", malformed=True,
                                                         times=None)]),
    Scenario("rate limit past max_wait", [SYNC], {1}, faults=[
        dict(path=r"/graphql", status=403, body={"message": ECHO}, headers={"Retry-After": "600"}, times=None)]),
    Scenario("registries failing, echoing", [SYNC], {0}, faults=[
        dict(path=r"^/registries/", status=500, body={"error": ECHO}, times=None)]),
    Scenario("registries unreachable", [SYNC], {0}, registries="http://127.0.0.1:9"),
    Scenario("forges unreachable", [SYNC], {1, 4}, github_url="http://127.0.0.1:9/github",
             gitlab_url="http://127.0.0.1:9/gitlab"),
    Scenario("api_url with a password", [SYNC, ["report"]], {2},
             github_url=f"http://dm-user:{PASSWORD}@127.0.0.1:9/github"),
    Scenario("api_url with a query token", [SYNC], {2}, github_url=f"http://127.0.0.1:9/github?access_token={QUERY}"),
    Scenario("gitlab url with a token as user", [SYNC], {2}, gitlab_url=f"http://{TOKEN}@127.0.0.1:9/gitlab"),
    Scenario("database url with a password", [SYNC], {1, 2},
             extra=f'[database]\nurl = "postgresql+psycopg://dm:{PASSWORD}@127.0.0.1:9/db?password={QUERY}"\n'),
    Scenario("digest posts refused, echoing", [SYNC, ["digest", "--week", WEEK, "--post", "github-issue"]], {0, 1},
             faults=[dict(path=r"/issues", method="POST", status=422, body={"message": ECHO}, times=None)],
             extra='[digest]\nrepo = "acme/api"\n'),
    Scenario("slack webhook unreachable", [SYNC, ["digest", "--week", WEEK, "--post", "slack"]], {0, 1}),
]


@pytest.fixture(scope="module")
def forge() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    sandbox, registries = build_sandbox(build_dataset(now=GITHUB_NOW))
    with sandbox:
        yield sandbox, registries


def mirror(base: str) -> str:
    """A registry URL with a password in its userinfo and a token in its query."""
    return base.replace("http://", f"http://mirror-user:{PASSWORD}@", 1) + f"?token={QUERY}"


def write_config(folder: Path, sandbox: Sandbox, registries: dict[str, str], scenario: Scenario) -> Path:
    bases = {eco: f"{scenario.registries}/registries/{eco}" if scenario.registries else base
             for eco, base in registries.items()}
    lines = [f'{eco} = "{mirror(base)}"' for eco, base in sorted(bases.items())]
    database = "" if "[database]" in scenario.extra else f'[database]\nurl = "sqlite:///{folder / "dm.db"}"\n'
    text = (database + "[sync]\ntimeout = 5\nretries = 1\nmax_wait = 2\n"
            f"[[github]]\napi_url = \"{scenario.github_url or sandbox.url + '/github'}\"\ntoken_env = \"{TOKEN_ENV}\"\n"
            'repos = ["acme/api"]\n'
            f"[[gitlab]]\nurl = \"{scenario.gitlab_url or sandbox.url + '/gitlab'}\"\ntoken_env = \"{TOKEN_ENV}\"\n"
            'projects = ["acme/platform/app"]\n'
            f"[registries]\n{chr(10).join(lines)}\n" + scenario.extra)
    if "[digest]" not in text:
        text += f'[digest]\nslack_webhook_env = "{HOOK_ENV}"\n'
    path = folder / "devmetrics.toml"
    path.write_text(text)
    return path


def leaky_incident(sandbox: Sandbox) -> list[dict[str, Any]]:
    """acme/api's incident issues, the first one rewritten to hold every marker."""
    url = f"{sandbox.url}/github/repos/acme/api/issues"
    issues = requests.get(url, params={"labels": "incident", "state": "all", "per_page": 100}, timeout=10,
                          headers={"Authorization": "token sweep-reader"}).json()
    leaky = copy.deepcopy(issues[0])
    leaky.update(title=f"Outage: {ECHO}", body=ECHO, created_at="2026-11-18T10:00:00Z",
                 updated_at="2026-11-18T12:00:00Z", closed_at="2026-11-18T12:00:00Z",
                 html_url=f"https://bot:{PASSWORD}@ghe.example/acme/api/issues/{leaky['number']}?token={QUERY}")
    return [leaky, *issues[1:]]


def run_scenario(folder: Path, config: Path, scenario: Scenario) -> list[str]:
    env = {**os.environ, TOKEN_ENV: scenario.token, "PYTHONUNBUFFERED": "1",
           HOOK_ENV: f"http://hook:{PASSWORD}@127.0.0.1:9/services/T0/B0/{QUERY}"}
    outputs = []
    for command in scenario.commands:
        done = subprocess.run([sys.executable, "-m", "devmetrics", command[0], "--config", str(config), *command[1:]],
                              env=env, capture_output=True, text=True, timeout=300, cwd=folder)
        outputs += [done.stdout, done.stderr]
        assert done.returncode in scenario.codes, f"{scenario.name}: {command}: {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
    return outputs


def database_texts(path: Path) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) for every text value of every table."""
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, str | bytes):
                        yield table.name, column, value if isinstance(value, str) else value.decode(errors="replace")
    engine.dispose()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_no_marker_appears_anywhere(scenario: Scenario, forge: tuple[Sandbox, dict[str, str]], tmp_path: Path) -> None:
    sandbox, registries = forge
    sandbox.faults.clear()
    sandbox.faults.add(path=r"^/github/repos/acme/api/issues\?", method="GET", status=200,
                       body=leaky_incident(sandbox), times=None)
    for fault in scenario.faults:
        sandbox.faults.add(**fault)
    try:
        outputs = run_scenario(tmp_path, write_config(tmp_path, sandbox, registries, scenario), scenario)
    finally:
        sandbox.faults.clear()
    for marker in MARKERS:
        assert not [text for text in outputs if marker in text], f"{scenario.name}: {marker} printed"
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.name != "devmetrics.toml":
                assert marker.encode() not in path.read_bytes(), f"{scenario.name}: {marker} in {path.name}"
    if (tmp_path / "dm.db").exists():
        texts = list(database_texts(tmp_path / "dm.db"))
        assert texts or scenario.name != "success", "nothing stored"
        assert not [(t, c) for t, c, v in texts if any(m in v for m in MARKERS)]


def test_the_success_scenario_stored_and_printed_the_leaky_incident(
        forge: tuple[Sandbox, dict[str, str]], tmp_path: Path) -> None:
    """The sweep is worth something only if the markers' carriers did arrive: the incident is
    stored (its title masked), the digest names it, dependencies came through the mirrors."""
    sandbox, registries = forge
    sandbox.faults.clear()
    sandbox.faults.add(path=r"^/github/repos/acme/api/issues\?", method="GET", status=200,
                       body=leaky_incident(sandbox), times=None)
    scenario = Scenario("stored", [SYNC, ["digest", "--week", WEEK, "-o", "digest.md"]], {0})
    try:
        run_scenario(tmp_path, write_config(tmp_path, sandbox, registries, scenario), scenario)
    finally:
        sandbox.faults.clear()
    texts = {(t, c): v for t, c, v in database_texts(tmp_path / "dm.db") if v.startswith("Outage:")}
    assert list(texts.values()) == ["Outage: Bad credentials *** for https://ghe.example/x?page=2"]
    assert "Outage: Bad credentials \\*\\*\\*" in (tmp_path / "digest.md").read_text()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dm.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dependency WHERE latest_version IS NOT NULL")).scalar()
    engine.dispose()
