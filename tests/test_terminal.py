"""The terminal summaries in a real pseudo-terminal at 80, 100 and 120 columns.

The CLI runs as a user runs it (a pty of that size, no $COLUMNS), over a store synced from
the sandbox forge. No line may be wider than the terminal, the headline figures must be
there, and what each width shows is kept in tests/snapshots/terminal-<width>.txt, so a
change of layout shows up in review (DEVMETRICS_UPDATE_SNAPSHOTS=1 rewrites them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from devmetrics.render import render_report
from devmetrics.terminal import Screen, shorten_middle, sparkline

WIDTHS = (80, 100, 120)
SNAPSHOTS = Path(__file__).parent / "snapshots"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = set("─━│┃┏┓┗┛┡┩╇╈┳┻┣┫└┘┌┐├┤┼")


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's store: the sandbox forge synced through the real connectors."""
    from devmetrics.config import load_config
    from devmetrics.demo import DEMO_TOKEN_ENV, write_demo_config
    from devmetrics.sandbox import build_sandbox
    from devmetrics.store import open_engine
    from devmetrics.sync import run_sync

    folder = tmp_path_factory.mktemp("terminal")
    os.environ.setdefault(DEMO_TOKEN_ENV, "sandbox-token")
    sandbox, registries = build_sandbox()
    with sandbox:
        path = write_demo_config(folder, sandbox.url, registries)
        config = load_config(str(path))
        result = run_sync(config, open_engine(config.database.url))
    assert not result.failures
    return path


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    return env | {"TERM": "xterm-256color"} | extra


def in_pty(config: Path, width: int, *args: str, **env: str) -> tuple[int, str]:
    """(exit status, what the terminal shows) of `devmetrics ARGS` in a pty `width` wide."""
    child = pexpect.spawn(sys.executable, ["-m", "devmetrics", *args, "--config", str(config)],
                          dimensions=(50, width), env=environment(**env), encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before.replace("\r\n", "\n")


def visible(text: str) -> str:
    return ANSI.sub("", text)


def json_report(config: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "devmetrics", "report", "--format", "json", *args,
                           "--config", str(config)], capture_output=True, text=True, env=environment(), check=True)
    return json.loads(done.stdout)


def assert_fits(text: str, width: int) -> None:
    too_wide = [line for line in visible(text).splitlines() if len(line) > width]
    assert not too_wide, f"lines wider than {width}: {too_wide}"


COMMANDS = {
    "report": ("report",),
    "report --repo acme/api": ("report", "--repo", "acme/api"),
    "report --wide": ("report", "--wide"),
    "explain lead_time_hours": ("explain", "lead_time_hours", "--repo", "acme/api"),
    "deps": ("deps", "--repo", "acme/platform/app"),
}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_summary_fits_the_terminal_and_matches_its_snapshot(demo_config: Path, width: int) -> None:
    shown = []
    for name, args in COMMANDS.items():
        status, text = in_pty(demo_config, width, *args)
        assert status == 0, text
        assert_fits(text, width)
        assert "\x1b[" in text  # a terminal gets colour
        lines = [line.rstrip() for line in visible(text).rstrip().splitlines()]
        shown.append("\n".join([f"$ devmetrics {name}", *lines]) + "\n")
    snapshot = SNAPSHOTS / f"terminal-{width}.txt"
    text = "\n".join(shown)
    if os.environ.get("DEVMETRICS_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        snapshot.write_text(text, encoding="utf-8")
    assert snapshot.exists(), f"no snapshot {snapshot}: run with DEVMETRICS_UPDATE_SNAPSHOTS=1"
    assert text == snapshot.read_text(encoding="utf-8"), (
        f"{snapshot.name} differs: check the new layout, then DEVMETRICS_UPDATE_SNAPSHOTS=1")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_compact_table_has_the_headline_figures(demo_config: Path, width: int) -> None:
    report = json_report(demo_config)
    _, text = in_pty(demo_config, width, "report", NO_COLOR="1")
    for row in [*report["repos"], report["all"]]:
        name = row["repo"]
        first = {line.split()[0]: line for line in text.splitlines() if line.strip()}
        line = first.get(name) or next(v for k, v in first.items() if "…" in k and
                                       name.startswith(k.split("…")[0]) and name.endswith(k.split("…")[1]))
        restore = row["time_to_restore_hours"]["median"]
        figures = [f"{row['deployment_frequency_per_week']:.1f}", f"{row['deployment_success_rate'] * 100:.0f}",
                   f"{row['change_failure_rate'] * 100:.0f}", f"{row['lead_time_hours']['median']:.1f}",
                   f"{row['cycle_time_hours']['median']:.1f}", f"{row['pipeline_duration_minutes']['median']:.1f}",
                   "—" if restore is None else f"{restore:.1f}", f"{row['dependency_freshness']['libyears']:.1f}"]
        assert line.split()[1:9] == figures, line
    assert "Dep/wk deployments a week" in " ".join(text.split())  # the legend


@pytest.mark.parametrize("width", WIDTHS)
def test_the_card_shows_median_p90_n_level_and_twelve_weeks(demo_config: Path, width: int) -> None:
    row = json_report(demo_config, "--repo", "acme/api")["repos"][0]
    _, text = in_pty(demo_config, width, "report", "--repo", "acme/api", NO_COLOR="1")
    lead = next(line for line in text.splitlines() if line.startswith("Lead time h"))
    distribution = row["lead_time_hours"]
    marks = lead.split()[-1]
    assert lead.split()[3:7] == [f"{distribution['median']:.1f}", f"{distribution['p90']:.1f}",
                                 str(distribution["n"]), row["levels"]["lead_time"]]
    assert len(marks) == 12 and set(marks) <= set("▁▂▃▄▅▆▇█·")


def test_no_color_and_pipes_get_plain_aligned_text(demo_config: Path) -> None:
    _, no_color = in_pty(demo_config, 80, "report", NO_COLOR="1")
    assert "\x1b" not in no_color and "─" in no_color  # a terminal still gets the header rule
    piped = subprocess.run([sys.executable, "-m", "devmetrics", "report", "--config", str(demo_config)],
                           capture_output=True, text=True, env=environment(), check=True).stdout
    assert "\x1b" not in piped and not BOX & set(piped)
    header, *rows = piped.splitlines()[1:7]
    assert all(len(line) == len(header) for line in rows[:-1] if line.strip())  # right edges line up
    # the other formats stay as they were
    markdown = subprocess.run([sys.executable, "-m", "devmetrics", "report", "--format", "markdown", "--config",
                               str(demo_config)], capture_output=True, text=True, env=environment(), check=True)
    assert markdown.stdout.splitlines()[2].startswith("| Repo | Deploys |")


def test_deps_headers_stay_whole_at_80_columns(demo_config: Path) -> None:
    _, text = in_pty(demo_config, 80, "deps", "--repo", "acme/platform/app", NO_COLOR="1")
    header = next(line for line in text.splitlines() if line.startswith("Package"))
    assert header.split() == ["Package", "Ecosystem", "Manifest", "Current", "Latest", "Libyears", "behind",
                              "Resolution"]


def test_a_repo_that_is_not_there_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "devmetrics.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "devmetrics", "report", "--repo", "acme/x", "--config", str(config)],
                          capture_output=True, text=True, env=environment())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "devmetrics: error: python -m devmetrics report: Invalid value for '--repo': acme/x matches none of "
        "the repos the database holds (none yet: run devmetrics sync)"]


def hostile_report() -> dict[str, Any]:
    row = {"repo": "[bold red]evil[/]\x1b[2J\x07/x", "forge": "github", "deployment_signal": "merges",
           "deployments": 1, "levels": {"lead_time": "elite"}}
    return {"since": "2026-11-02", "until": "2026-11-23", "timezone": "UTC", "levels_benchmark": "dora-2023",
            "repos": [row, dict(row, repo="acme/ok")], "all": dict(row, repo="all")}


@pytest.mark.parametrize("wide", [False, True])
def test_forge_text_neither_styles_nor_corrupts_the_terminal(wide: bool) -> None:
    text = render_report(hostile_report(), "table", Screen(width=100, color=True, boxes=True), wide=wide)
    assert "[bold red]evil[/]\ufffd[2J\ufffd/x" in visible(text)
    assert "\x1b[2J" not in text and "\x07" not in text
    card = render_report(dict(hostile_report(), repos=hostile_report()["repos"][:1]), "table",
                         Screen(width=80, color=True))
    assert "[bold red]evil[/]\ufffd[2J" in visible(card) and "\x1b[2J" not in card


def test_explain_and_deps_escape_forge_text() -> None:
    from devmetrics.deps.report import render_dependencies
    from devmetrics.explain import render_explain

    rows = [{"pr": 1, "author": "[blink]x\x1b]0;title\x07", "merged_at": "2026-11-03 12:00", "hours": 1.5}]
    text = render_explain(rows, "table", "lead_time_hours", Screen(width=80, color=True))
    assert "\x1b]0;" not in text and "[blink]x\ufffd]0;title\ufffd" in visible(text)
    deps = [{"name": "[red]pkg\x1b[5m", "ecosystem": "npm", "manifest_path": "package.json", "current_version": "1",
             "latest_version": "2", "libyears": 1.0, "majors_behind": 1, "resolution": "pin", "status": "ok"}]
    text = render_dependencies(deps, screen=Screen(width=80, color=True))
    assert "\x1b[5m" not in text and "[red]pkg\ufffd[5m" in visible(text)


def test_shorten_middle_and_sparkline() -> None:
    assert shorten_middle("acme/platform/tools/cli", 12) == "acme/p…s/cli"
    assert shorten_middle("short", 12) == "short"
    assert sparkline([0, 4, None, 8]) == "▁▅·█"
    assert sparkline([None, None]) == "··"
    assert sparkline([3, 3]) == "██"
