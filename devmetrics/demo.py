"""`devmetrics demo`: the real sync path against a sandbox forge on loopback.

Starts the sandbox (GitHub REST + GraphQL, GitLab v4, package registries) on a free
port, writes a config pointing at it, runs the same sync a user runs against github.com
and gitlab.com, and prints the report. Nothing in the report comes from the dataset
directly: every number went through the connectors, the store and the calculator.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click

from devmetrics.config import load_config
from devmetrics.sandbox import build_sandbox

DEMO_TOKEN_ENV = "DEVMETRICS_DEMO_TOKEN"

CONFIG_TEMPLATE = """\
# devmetrics demo configuration: a sandbox forge on {url} (see config.example.toml)
[database]
url = "sqlite:///{database}"

[report]
timezone = "UTC"

[[github]]
api_url = "{url}/github"
token_env = "{token_env}"
repos = ["acme/*"]                       # archived repos and forks are left out
deployments = "auto"
overrides = {{ "acme/web" = {{ workflow = "Deploy" }} }}   # acme/web deploys from a workflow

[[gitlab]]
url = "{url}/gitlab"
token_env = "{token_env}"
projects = ["acme/*"]                    # subgroups included

[registries]
{registries}
"""


def write_demo_config(folder: Path, url: str, registries: dict[str, str]) -> Path:
    path = folder / "devmetrics.toml"
    lines = "\n".join(f'{name} = "{base}"' for name, base in sorted(registries.items()))
    path.write_text(CONFIG_TEMPLATE.format(url=url, database=folder / "devmetrics.db",
                                           token_env=DEMO_TOKEN_ENV, registries=lines))
    return path


def run_demo(folder: Path | None, keep_serving: bool = False) -> None:
    from devmetrics.cli import open_store, summarise_sync
    from devmetrics.progress import progress_reporter
    from devmetrics.report import build_report, render_report, settings_from_config, today_in
    from devmetrics.sync import run_sync

    folder = folder or Path(tempfile.mkdtemp(prefix="devmetrics-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(DEMO_TOKEN_ENV, "sandbox-token")  # the sandbox takes any token
    sandbox, registries = build_sandbox()
    with sandbox:
        config_path = write_demo_config(folder, sandbox.url, registries)
        config = load_config(str(config_path))
        engine = open_store(config)
        click.echo(f"Sandbox forge on {sandbox.url}; syncing into {folder / 'devmetrics.db'} ...", err=True)
        started = time.monotonic()
        with progress_reporter() as progress:
            result = run_sync(config, engine, progress=progress)
        click.echo(f"Sync took {time.monotonic() - started:.1f} s.", err=True)
        summarise_sync(result)
        settings = settings_from_config(config)
        until = today_in(settings.timezone)
        since = until.fromordinal(until.toordinal() - config.report.window_days)
        click.echo(render_report(build_report(engine, settings, since, until, [], None), "table"))
        _explore_hint(config_path)
        if keep_serving:
            click.echo(f"Sandbox still serving on {sandbox.url}; Ctrl-C to stop.", err=True)
            _serve_until_interrupted()


def _explore_hint(config_path: Path) -> None:
    exe = _command_name()
    click.echo(
        f"\nConfig:   {config_path}\nDatabase: {config_path.parent / 'devmetrics.db'}\n"
        f"Explore:  {exe} report --config {config_path} --format json\n"
        f"          {exe} explain lead_time_hours --repo acme/api --config {config_path}\n"
        f"          {exe} deps --repo acme/api --config {config_path}\n"
        f"          {exe} digest --config {config_path}",
        err=True,
    )


def _command_name() -> str:
    """`devmetrics` when that is what the shell finds, else the path that ran (./scripts/demo's venv)."""
    ran = Path(sys.argv[0]).resolve()
    on_path = shutil.which("devmetrics")
    return "devmetrics" if on_path and Path(on_path).resolve() == ran else str(ran)


def _serve_until_interrupted() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
