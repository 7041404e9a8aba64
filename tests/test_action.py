"""The GitHub Action: lint action.yml and the example workflow, then run its steps locally.

The local run does what a runner does for a composite action: each `run:` step in order
with bash (`bash --noprofile --norc -eo pipefail`), the step's `env:` with its `${{ }}`
expressions evaluated, a fresh $GITHUB_OUTPUT per step, and $GITHUB_STEP_SUMMARY,
$GITHUB_ACTION_PATH, $RUNNER_TEMP set. `uses:` steps (setup-python, cache) are skipped:
the venv's Python stands in for setup-python, and a cold then a warm database stand in for
the cache. The forge is the sandbox GitHub with the digest's write routes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEST_NOW, clock_env

from devmetrics.clock import NOW_ENV
from devmetrics.sandbox import build_sandbox
from devmetrics.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
EXAMPLE = ROOT / "docs" / "examples" / "weekly-digest.yml"
BIN = Path(sys.executable).parent
TOKEN = "ghs_actionTOKEN0123456789"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def tool(name: str) -> str | None:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name)


# ------------------------------------------------------------------------------- lint

@pytest.mark.parametrize("path", [ACTION, EXAMPLE], ids=["action.yml", "example-workflow"])
def test_zizmor_finds_nothing(path: Path) -> None:
    zizmor = tool("zizmor")
    assert zizmor is not None, "zizmor is not installed (pip install -e '.[test]' has it)"
    done = subprocess.run([zizmor, "--offline", "--no-progress", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_nothing(tmp_path: Path) -> None:
    """The example workflow, and a workflow using action.yml as a local action (how
    actionlint checks an action's inputs and metadata)."""
    actionlint = tool("actionlint")
    assert actionlint is not None, "actionlint is not installed (pip install -e '.[test]' has it)"
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(EXAMPLE, workflows / "weekly-digest.yml")
    (tmp_path / "devmetrics").mkdir()
    shutil.copy(ACTION, tmp_path / "devmetrics" / "action.yml")
    (workflows / "local.yml").write_text(LOCAL_WORKFLOW)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)  # actionlint wants a repository
    done = subprocess.run([actionlint, "-no-color"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


LOCAL_WORKFLOW = """\
name: local
on: workflow_dispatch
permissions:
  contents: read
jobs:
  digest:
    runs-on: ubuntu-latest
    steps:
      - id: digest
        uses: ./devmetrics
        with:
          config: devmetrics.toml
          post: step-summary
      - run: cat "$DIGEST"
        env:
          DIGEST: ${{ steps.digest.outputs.digest-path }}
"""


def test_action_metadata_is_consistent() -> None:
    """What actionlint would say about the action itself, checked here in any case."""
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {"config", "token", "week", "post", "python-version", "since",
                                     "dependencies"}
    ids = {step.get("id") for step in action["runs"]["steps"]}
    for name, output in action["outputs"].items():
        step_id = re.search(r"steps\.([\w-]+)\.outputs", output["value"])
        assert step_id and step_id.group(1) in ids, name
    for step in action["runs"]["steps"]:
        assert "uses" in step or step.get("shell") == "bash", step["name"]
        if "run" in step:  # inputs reach scripts through env only (no template injection)
            assert "${{" not in step["run"], step["name"]
        for expression in EXPRESSION.findall(json.dumps(step)):
            for name in re.findall(r"inputs\.([\w-]+)", expression):
                assert name in action["inputs"], expression


def test_example_workflow_runs_weekly_with_the_permissions_it_needs() -> None:
    workflow = load(EXAMPLE)
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1: on -> True
    assert triggers["schedule"] == [{"cron": "0 8 * * MON"}]
    assert workflow["permissions"] == {}
    assert workflow["jobs"]["digest"]["permissions"] == {
        "contents": "read", "issues": "write", "discussions": "write"}


# ------------------------------------------------------------------ the local run

@pytest.fixture(scope="module")
def forge() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    sandbox, registries = build_sandbox()
    with sandbox:
        yield sandbox, registries


def write_config(workspace: Path, sandbox: Sandbox, registries: Mapping[str, str]) -> None:
    lines = "\n".join(f'{name} = "{url}"' for name, url in sorted(registries.items()))
    (workspace / "devmetrics.toml").write_text(f"""\
[database]
url = "sqlite:///devmetrics.db"

[[github]]
api_url = "{sandbox.url}/github"
repos = ["acme/api"]

[digest]
repo = "acme/api"
labels = ["devmetrics"]

[registries]
{lines}
""")


def evaluate(value: str, context: Mapping[str, str]) -> str:
    """`${{ inputs.x }}`, `${{ steps.id.outputs.y }}`, `${{ github.token }}`... from `context`;
    an expression this runner does not know fails the test rather than passing silently."""
    def one(found: re.Match[str]) -> str:
        key = found.group(1)
        assert key in context or key.startswith("steps."), f"unsupported expression {key}"
        return context.get(key, "")
    return EXPRESSION.sub(one, value)


def run_action(workspace: Path, inputs: Mapping[str, str], runner_env: Mapping[str, str]
               ) -> tuple[dict[str, str], list[str]]:
    """Run action.yml's `run:` steps in order; (the action's outputs, each step's stderr)."""
    action = load(ACTION)
    context = {f"inputs.{name}": str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    context |= {f"inputs.{name}": value for name, value in inputs.items()}
    context |= {"github.token": runner_env["GITHUB_TOKEN"], "runner.temp": runner_env["RUNNER_TEMP"],
                "github.repository": runner_env["GITHUB_REPOSITORY"], "github.action_path": str(ROOT)}
    logs = []
    for index, step in enumerate(action["runs"]["steps"]):
        if "uses" in step:
            continue
        output = workspace.parent / f"output-{index}"
        output.touch()
        env = {**runner_env, "GITHUB_OUTPUT": str(output),
               **{k: evaluate(str(v), context) for k, v in (step.get("env") or {}).items()}}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                              cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"step {step['name']!r} failed:\n{done.stdout}\n{done.stderr}"
        logs.append(done.stdout + done.stderr)
        for line in output.read_text().splitlines():
            key, _, value = line.partition("=")
            context[f"steps.{step.get('id')}.outputs.{key}"] = value
    outputs = {name: evaluate(spec["value"], context) for name, spec in action["outputs"].items()}
    return outputs, logs


def runner_environment(tmp_path: Path, sandbox: Sandbox) -> dict[str, str]:
    """What a runner sets (and what the job's env would), with this venv first on PATH."""
    temp = tmp_path / "runner-temp"
    temp.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, **clock_env(), "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin", "CI": "true",
            "GITHUB_ACTIONS": "true", "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_WORKSPACE": str(tmp_path / "workspace"), "GITHUB_REPOSITORY": "acme/api",
            "GITHUB_API_URL": f"{sandbox.url}/github", "GITHUB_TOKEN": TOKEN,
            "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"), "RUNNER_TEMP": str(temp)}


@pytest.mark.slow
def test_the_actions_steps_post_the_digest(tmp_path: Path,
                                           forge: tuple[Sandbox, dict[str, str]]) -> None:
    sandbox, registries = forge
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    write_config(workspace, sandbox, registries)
    env = runner_environment(tmp_path, sandbox)
    inputs = {"post": "github-issue, step-summary", "token": TOKEN}

    outputs, logs = run_action(workspace, inputs, env)
    assert "devmetrics is installed from" in logs[0]  # the venv's editable install is used
    assert "Cold cache: syncing the last 91d" in logs[2]
    markdown = Path(outputs["digest-path"]).read_text()
    digest = json.loads(Path(outputs["json-path"]).read_text())
    assert markdown.startswith(f"<!-- devmetrics-digest week={digest['week']} -->")
    assert digest["repos"][0]["repo"] == "acme/api"
    assert digest["repos"][0]["dependency_freshness"]["dependencies"] > 0  # deps on by default
    assert (tmp_path / "step-summary.md").read_text() == markdown
    issue = week_issue(sandbox, digest["week"])
    assert issue["body"].startswith(markdown[:200]) and issue["labels"] == ["devmetrics"]

    # The next run finds the database (the cache's job): no cold sync, the same issue edited.
    outputs, logs = run_action(workspace, {**inputs, "dependencies": "false"}, env)
    assert "Cold cache" not in logs[2]
    assert week_issue(sandbox, digest["week"])["number"] == issue["number"]
    assert TOKEN not in "".join(logs)


def documented_config(workspace: Path, sandbox: Sandbox, registries: Mapping[str, str]) -> Path:
    """docs/github-action.md's configuration as printed there (`.github/devmetrics.toml`,
    `sqlite:///.devmetrics/devmetrics.db`), pointed at the sandbox and its repos."""
    docs = (ROOT / "docs" / "github-action.md").read_text()
    block = re.search(r"```toml\n(\[database\].*?)```", docs, re.S)
    assert block, "docs/github-action.md shows the configuration in a toml block"
    text = block.group(1)
    assert 'url = "sqlite:///.devmetrics/devmetrics.db"' in text
    text = (text.replace('repos = ["your-org/api", "your-org/web"]',
                         f'api_url = "{sandbox.url}/github"\nrepos = ["acme/api"]')
                .replace('repo = "your-org/engineering"', 'repo = "acme/api"'))
    lines = "\n".join(f'{name} = "{url}"' for name, url in sorted(registries.items()))
    path = workspace / ".github" / "devmetrics.toml"
    path.parent.mkdir(parents=True)
    path.write_text(f"{text}\n[registries]\n{lines}\n")
    return path


def at(env: Mapping[str, str], now: datetime) -> dict[str, str]:
    return {**env, NOW_ENV: now.isoformat()}


@pytest.mark.slow
def test_the_documented_config_on_a_cold_a_warm_and_an_evicted_cache(
        tmp_path: Path, forge: tuple[Sandbox, dict[str, str]]) -> None:
    """The first run of a new user: no `.devmetrics/` folder yet (a cold cache). Then a warm
    cache a week later, and a cache evicted after weeks (GitHub drops caches unused for 7
    days; restore-keys then bring back an older database): the digest of that week is the
    one a run with an always-warm cache posts."""
    sandbox, registries = forge
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    documented_config(workspace, sandbox, registries)
    env = runner_environment(tmp_path, sandbox)
    inputs = {"config": ".github/devmetrics.toml", "post": "step-summary", "token": TOKEN,
              "dependencies": "false"}
    database = workspace / ".devmetrics" / "devmetrics.db"
    assert not database.parent.exists()

    _, logs = run_action(workspace, inputs, at(env, TEST_NOW))  # cold
    assert "Cold cache: syncing the last 91d" in logs[2]
    assert database.is_file() and database.parent.stat().st_mode & 0o777 == 0o700
    old = tmp_path / "cache-after-week-1"
    shutil.copytree(database.parent, old)

    later = TEST_NOW + timedelta(weeks=1)
    _, logs = run_action(workspace, inputs, at(env, later))  # warm
    assert "Cold cache" not in logs[2]
    weeks = TEST_NOW + timedelta(weeks=4)
    warm_outputs, _ = run_action(workspace, inputs, at(env, weeks))
    always_warm = json.loads(Path(warm_outputs["json-path"]).read_text())

    shutil.rmtree(database.parent)  # evicted: restore-keys bring back the oldest entry
    shutil.copytree(old, database.parent)
    outputs, logs = run_action(workspace, inputs, at(env, weeks))
    assert "Cold cache" not in logs[2]
    assert json.loads(Path(outputs["json-path"]).read_text()) == always_warm
    assert TOKEN not in "".join(logs)


def week_issue(sandbox: Sandbox, week: str) -> dict[str, Any]:
    github = dict(sandbox.apps)["/github"]
    found = [i for i in github.posts.issues["acme/api"]  # type: ignore[attr-defined]
             if f"week={week} -->" in i["body"]]
    assert len(found) == 1, "one issue per week, edited on the next run"
    return found[0]


# ------------------------------------------------------------------------------- cron

CRON = ROOT / "scripts" / "cron-example"


def run_cron(tmp_path: Path, sandbox: Sandbox, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**clock_env(), "HOME": str(tmp_path), "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin", "GITHUB_TOKEN": TOKEN,
           "DEVMETRICS_CONFIG": str(tmp_path / "workspace" / "devmetrics.toml"),
           "DEVMETRICS_OUT": str(tmp_path / "digests"), "DEVMETRICS_SYNC_ARGS": "--no-deps",
           **settings}
    return subprocess.run(["bash", str(CRON)], cwd=tmp_path / "workspace", env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def cron_forge(tmp_path: Path, forge: tuple[Sandbox, dict[str, str]]) -> Sandbox:
    """The sandbox, with a workspace holding a config that points at it."""
    sandbox, registries = forge
    (tmp_path / "workspace").mkdir()
    write_config(tmp_path / "workspace", sandbox, registries)
    return sandbox


@pytest.mark.slow
def test_cron_example_syncs_then_writes_and_posts_the_digest(tmp_path: Path, cron_forge: Sandbox) -> None:
    sandbox = cron_forge
    done = run_cron(tmp_path, sandbox, DEVMETRICS_POST="github-issue", DEVMETRICS_WEEK="2026-W40")
    assert done.returncode == 0, done.stderr
    [markdown] = (tmp_path / "digests").glob("digest-*.md")
    assert markdown.read_text().startswith("<!-- devmetrics-digest week=2026-W40 -->")
    assert json.loads(markdown.with_suffix(".json").read_text())["week"] == "2026-W40"
    assert week_issue(sandbox, "2026-W40")["title"] == "Engineering metrics 2026-W40"


@pytest.mark.slow
def test_cron_sync_only_run_leaves_when_another_sync_holds_the_lock(tmp_path: Path,
                                                                   cron_forge: Sandbox) -> None:
    from devmetrics.lock import sync_lock
    from devmetrics.store import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'workspace' / 'devmetrics.db'}")
    with sync_lock(engine):
        done = run_cron(tmp_path, cron_forge, DEVMETRICS_SYNC_ONLY="1")
    assert done.returncode == 0, done.stderr
    assert "another sync is running; this one is skipped" in done.stderr
    assert not (tmp_path / "digests").exists()


def test_the_docs_show_the_checked_example_workflow() -> None:
    example = EXAMPLE.read_text()
    body = example[example.index("name: Weekly"):]  # the file without its opening comment
    assert body.strip() in (ROOT / "docs" / "github-action.md").read_text()
