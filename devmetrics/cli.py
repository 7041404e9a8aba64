"""The devmetrics command line: thin click commands over the library.

Errors are one line on stderr with a documented exit status (errors.py); a token never
appears in anything printed (every message passes through `redact`, devmetrics/secrets.py).
"""

from __future__ import annotations

import difflib
import functools
import glob
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from devmetrics import __version__
from devmetrics.config import Config, load_config
from devmetrics.errors import EXIT_BREACHED, EXIT_PARTIAL, EXIT_RUNTIME, ConfigError, DevmetricsError
from devmetrics.secrets import redact, watch_env

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("devmetrics")


# ------------------------------------------------------------------------ output hygiene

class RedactingFilter(logging.Filter):
    """Every log line through the one masking rule (devmetrics/secrets.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


def setup_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("devmetrics: %(levelname)s: %(message)s"))
    root = logging.getLogger("devmetrics")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))
    root.propagate = False


def fail(message: str, code: int) -> None:
    click.echo(f"devmetrics: error: {redact(message)}", err=True)
    sys.exit(code)


# ----------------------------------------------------------------------- option parsing

def parse_when(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """`2026-10-01`, an ISO datetime, or a relative `90d` / `12w` (ago), as UTC."""
    if value is None:
        return None
    from devmetrics.clock import now_utc

    relative = re.fullmatch(r"(\d+)([dw])", value.strip())
    if relative:
        days = int(relative.group(1)) * (7 if relative.group(2) == "w" else 1)
        return now_utc() - timedelta(days=days)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (2026-10-01), a datetime or a "
                                 "relative age like 90d") from None
    from datetime import UTC

    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-10-01") from None


def parse_days(value: str) -> int:
    found = re.fullmatch(r"(\d+)([dw]?)", value.strip())
    if not found or int(found.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a window like 28d or 4w")
    return int(found.group(1)) * (7 if found.group(2) == "w" else 1)


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    found = re.fullmatch(r"(\d+)/(\d+)", value.strip())
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise click.BadParameter(f"{value!r} is not a shard like 1/4 (I/N with 1 <= I <= N)")
    return int(found.group(1)), int(found.group(2))


def config_option(func: F) -> F:
    """--config and -v, shared by every command that reads the configuration."""
    func = click.option("--config", "config_path", metavar="PATH", envvar="DEVMETRICS_CONFIG",
                        help="Config file (default: $DEVMETRICS_CONFIG, else ./devmetrics.toml).")(func)
    return click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")(func)


def output_options(formats: tuple[str, ...]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        func = click.option("--format", "fmt", type=click.Choice(formats), default=formats[0],
                            show_default=True, help="Output format.")(func)
        return click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                            help="Write to this file instead of standard output.")(func)
    return decorate


def window_options(func: F) -> F:
    func = click.option("--since", help="First day of the window (inclusive), e.g. 2026-10-01.")(func)
    func = click.option("--until", help="Day after the window (exclusive); default: today.")(func)
    func = click.option("--window", help="Window length ending at --until, e.g. 28d or 4w.")(func)
    func = click.option("--repo", "repos", multiple=True, metavar="GLOB",
                        help="Only repos whose full name matches (repeatable, globs).")(func)
    return click.option("--timezone", help="Report time zone (default: report.timezone).")(func)


def write_output(text: str, output: str | None) -> None:
    text = redact(text)  # a store written before the masking rule may still hold a secret
    if output:
        try:
            Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot write {output}: {exc.strerror or exc}", param_hint="'--output'") from None
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


def with_config(func: F) -> F:
    """Load the config (one-line errors) and pass it as `config`.

    `--config` and `-v` may come before the command too (`devmetrics --config F report`, as
    with git and kubectl); the command's own option wins, then the group's, then the env var."""
    @functools.wraps(func)
    def wrapper(config_path: str | None, verbose: int, **kwargs: Any) -> Any:
        context = click.get_current_context()
        group = context.find_root().meta
        if group.get("config_path") and (
                config_path is None or context.get_parameter_source("config_path") is ParameterSource.ENVIRONMENT):
            config_path = group["config_path"]
        verbose += group.get("verbose", 0)
        setup_logging(verbose)
        config = load_config(config_path)
        watch_env(config.secret_env_names())  # masked whatever the variables are called
        return func(config=config, **kwargs)
    return wrapper  # type: ignore[return-value]


def open_store(config: Config) -> Any:
    from devmetrics.store import open_engine

    return open_engine(config.database.url)


# ---------------------------------------------------------------------------- commands

def fix_now(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """`--now`: every command of this run reads this time as now (the `DEVMETRICS_NOW` clock)."""
    from devmetrics.clock import NOW_ENV, parse_now

    if value is None:
        return
    try:
        os.environ[NOW_ENV] = parse_now(value).isoformat()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="devmetrics")
@click.option("--now", metavar="DATETIME", callback=fix_now, expose_value=False, is_eager=True,
              help="Treat this ISO datetime as now, for reproducible reports and tests "
                   "(also $DEVMETRICS_NOW; default: the system clock).")
@click.option("--config", "config_path", metavar="PATH",
              help="Config file for the command (also accepted after it).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(context: click.Context, config_path: str | None, verbose: int) -> None:
    """Engineering delivery metrics from GitHub and GitLab, kept in SQLite.

    Sync your forges into a database, then report DORA, flow, pipeline and dependency
    metrics per repo. Start with `devmetrics demo` to see it work against a sandbox forge.
    """
    context.meta.update(config_path=config_path, verbose=verbose)


@cli.command()
@config_option
@click.option("--since", "since", metavar="WHEN",
              help="First sync reads from here: a date or an age like 90d (default: sync.since_days).")
@click.option("--full", is_flag=True, help="Ignore cursors and re-read everything from --since.")
@click.option("--repo", "repos", multiple=True, metavar="GLOB", help="Only these repos (globs).")
@click.option("--shard", metavar="I/N", help="Take shard I of N repos (N collectors, one database).")
@click.option("--no-deps", is_flag=True, help="Skip dependency freshness.")
@click.option("--no-wait", is_flag=True, help="Exit with status 3 if another sync holds the lock.")
@with_config
def sync(config: Config, since: str | None, full: bool, repos: tuple[str, ...], shard: str | None,
         no_deps: bool, no_wait: bool) -> None:
    """Sync the configured GitHub and GitLab sources into the database."""
    from devmetrics.lock import sync_lock
    from devmetrics.progress import progress_reporter
    from devmetrics.sync import SyncOptions, build_connector, run_sync

    options = SyncOptions(since=parse_when(since), full=full, repos=repos,
                          shard=parse_shard(shard), deps=not no_deps)
    for source in config.sources:  # a missing token is a config error: say so before any work
        if not getattr(source, "app_id", None):
            source.token(config.source_key(source), config.path)
    engine = open_store(config)
    with sync_lock(engine, wait=not no_wait, shard=options.shard), progress_reporter() as progress:
        result = run_sync(config, engine, options, progress, build_connector)
    summarise_sync(result, repos)


def summarise_sync(result: Any, repo_globs: tuple[str, ...] = ()) -> None:
    """One line for the sync, one per failed repo; the exit status says which (docs/cron.md).

    0: every repo synced; 4: some repos or streams failed (the rest is stored); 1: nothing
    synced (every stream of every repo failed), or the rate-limit budget ran out; 2: `--repo`
    matched none of the listed repos.
    """
    repos, failed = result.repos, result.failed_repos
    if not repos and repo_globs and not result.stopped:
        raise no_such_repo(repo_globs, sorted(set(result.listed), key=str.lower), "the config lists")
    written = f"{plural(sum(s.records for s in result.streams), 'record')} written, " \
              f"{plural(result.requests, 'API request')}"
    for repo, failure in failed.items():
        click.echo(redact(f"devmetrics: error: {repo}: {failure.stream}: {_reason(failure.error)}"), err=True)
    if result.stopped:
        fail(f"sync stopped early, what was read is stored: {result.stopped}", EXIT_RUNTIME)
    if not failed:
        click.echo(f"synced {plural(len(repos), 'repo')}: {written}", err=True)
        return
    if result.nothing_synced:
        repo, failure = next(iter(failed.items()))
        fail(f"0 of {plural(len(repos), 'repo')} synced; {repo}: {_reason(failure.error)}", EXIT_RUNTIME)
    stored_some = {s.repo for s in result.streams if not s.error}
    in_part = sum(1 for repo in failed if repo in stored_some)
    counts = [f"{in_part} in part"] if in_part else []
    counts += [f"{len(failed) - in_part} failed"] if len(failed) > in_part else []
    click.echo(f"synced {len(repos) - len(failed)} of {plural(len(repos), 'repo')} in full "
               f"({', '.join(counts)}, errors above): {written}", err=True)
    sys.exit(EXIT_PARTIAL)


def plural(count: int, noun: str) -> str:
    """`1 repo`, `2 repos`, `1,204 records`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _reason(error: str | None) -> str:
    """A failure's reason without the `host repo stream:` prefix the connector put before it."""
    text = error or "failed"
    for marker in ("GitHub answered ", "GitLab answered ", "cannot reach "):
        if marker in text:
            return text[text.index(marker):].removeprefix("GitHub answered ").removeprefix("GitLab answered ")
    return text


@cli.command()
@config_option
@window_options
@click.option("--by", type=click.Choice(["week", "month"]), help="Add a trend table by period.")
@click.option("--wide", is_flag=True, help="Table: every column (in blocks when the terminal is narrow), "
              "not the headline figures; one repo too, instead of its card.")
@output_options(("table", "json", "csv", "markdown"))
@with_config
def report(config: Config, since: str | None, until: str | None, window: str | None,
           repos: tuple[str, ...], timezone: str | None, by: str | None, wide: bool, fmt: str,
           output: str | None) -> None:
    """Print the metrics per repo and for all repos.

    The table fits the terminal: one row per repo with the headline figures (a legend
    says what the short column names mean); one repo (`--repo X`) prints as a card with
    median, p90, n, level and the last 12 weeks as a sparkline."""
    from devmetrics.report import build_report, render_report
    from devmetrics.terminal import Screen

    settings, start, end = report_window(config, since, until, window, timezone)
    engine = open_store(config)
    result = build_report(engine, settings, start, end, list(repos), by)
    if repos and not result["repos"]:
        from devmetrics.store import stored_repo_names

        raise no_such_repo(repos, stored_repo_names(engine))
    history = None
    if fmt == "table" and len(result["repos"]) == 1 and not wide:  # the card's last 12 weeks
        only = [glob.escape(result["repos"][0]["repo"])]
        history = build_report(engine, settings, end - timedelta(weeks=12), end, only, "week")["trend"]
    screen = Screen.detect(to_file=bool(output))
    write_output(render_report(result, fmt, screen, wide, history), output)
    if not result["repos"]:
        click.echo("devmetrics: the database holds no repos yet: run `devmetrics sync`, then report again",
                   err=True)


def no_such_repo(globs: tuple[str, ...], known: list[str], where: str = "the database holds") -> click.BadParameter:
    """A --repo that matches no repo: a usage error naming the ones there are (did-you-mean)."""
    close = difflib.get_close_matches(globs[0], known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "") if known else "none yet: run devmetrics sync"
    return click.BadParameter(f"{' '.join(globs)} matches none of the repos {where} ({listed}){hint}",
                              param_hint="'--repo'")


def report_window(config: Config, since: str | None, until: str | None, window: str | None,
                  timezone: str | None) -> tuple[Any, date, date]:
    """Settings and [since, until) dates: default the `report.window_days` ending today."""
    from devmetrics.config import check_zone
    from devmetrics.report import settings_from_config, today_in

    if timezone is not None:
        try:
            check_zone(timezone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--timezone'") from None
    settings = settings_from_config(config, timezone)
    end = parse_date(until) or today_in(settings.timezone)
    days = parse_days(window) if window else config.report.window_days
    start = parse_date(since) or end - timedelta(days=days)
    if start >= end:
        raise click.BadParameter(f"--since {start} must be before --until {end}")
    return settings, start, end


@cli.command()
@config_option
@click.option("--until", help="Day after the window (exclusive); default: today.")
@click.option("--repo", "repos", multiple=True, metavar="GLOB",
              help="Only repos whose full name matches (repeatable, globs).")
@output_options(("table", "json", "markdown", "github"))
@with_config
def check(config: Config, until: str | None, repos: tuple[str, ...], fmt: str, output: str | None) -> None:
    """Evaluate every [[targets]] per repo: exit 5 when one is breached."""
    from devmetrics.report import build_report, settings_from_config, today_in
    from devmetrics.targets import BREACHED, evaluate, render, weekly_states, with_states

    if not config.targets:
        raise ConfigError(f"{config.path}: no [[targets]] tables (see docs/targets.md)")
    settings = settings_from_config(config)
    end = parse_date(until) or today_in(settings.timezone)
    engine = open_store(config)
    default = config.report.window_days
    rows = {}
    for days in sorted({t.window_days or default for t in config.targets}):
        report = build_report(engine, settings, end - timedelta(days=days), end, list(repos))
        rows[days] = report["repos"]
    results = evaluate(config.targets, rows, default, config.report.min_events)
    if not repos:  # the weekly states (and their history in the store) are kept for every repo
        results = with_states(results, weekly_states(engine, config, end))
    engine.dispose()
    write_output(render(results, fmt), output)
    if any(r.status == BREACHED for r in results):
        sys.exit(EXIT_BREACHED)


@cli.command()
@config_option
@click.argument("metric")
@window_options
@output_options(("table", "json", "csv"))
@with_config
def explain(config: Config, metric: str, since: str | None, until: str | None,
            window: str | None, repos: tuple[str, ...], timezone: str | None, fmt: str,
            output: str | None) -> None:
    """List the rows behind a metric for one repo (deployments, PRs, incidents)."""
    from devmetrics.explain import explain as explain_rows
    from devmetrics.explain import render_explain
    from devmetrics.terminal import Screen

    if len(repos) != 1:
        raise click.UsageError("explain needs exactly one --repo")
    settings, start, end = report_window(config, since, until, window, timezone)
    rows = explain_rows(open_store(config), settings, metric, repos[0], start, end)
    write_output(render_explain(rows, fmt, metric, Screen.detect(to_file=bool(output))), output)


@cli.command()
@config_option
@click.option("--repo", required=True, help="The repo's full name (owner/name).")
@output_options(("table", "json"))
@with_config
def deps(config: Config, repo: str, fmt: str, output: str | None) -> None:
    """List a repo's dependencies, worst first: current, latest, libyears, majors behind."""
    from devmetrics.deps.freshness import list_dependencies, render_dependencies
    from devmetrics.store import stored_repo_names
    from devmetrics.terminal import Screen

    engine = open_store(config)
    rows = list_dependencies(engine, repo)
    if not rows and repo not in (known := stored_repo_names(engine)):
        raise no_such_repo((repo,), known)
    write_output(render_dependencies(rows, fmt, screen=Screen.detect(to_file=bool(output))), output)


@cli.command()
@config_option
@click.option("--week", help="ISO week like 2026-W47 (default: the last full week).")
@click.option("--repo", "repos", multiple=True, metavar="GLOB", help="Only these repos (globs).")
@click.option("--post", "targets", multiple=True, default=("stdout",), show_default=True,
              type=click.Choice(["stdout", "github-issue", "github-discussion", "step-summary", "slack"]),
              help="Where to post the digest (repeatable).")
@click.option("--no-record", is_flag=True,
              help="Do not store the figures posted (a preview: the next digest's revised lines stay as they were).")
@output_options(("markdown", "json"))
@with_config
def digest(config: Config, week: str | None, repos: tuple[str, ...], targets: tuple[str, ...],
           no_record: bool, fmt: str, output: str | None) -> None:
    """Build the weekly digest, post it, and store the figures it posted."""
    from devmetrics.digest import build_digest, render_digest
    from devmetrics.digest.history import record_figures
    from devmetrics.publish import publish

    engine = open_store(config)
    data = build_digest(engine, config, week, list(repos) or None)
    text = redact(render_digest(data, fmt))  # type: ignore[arg-type]  # click.Choice checked it
    if output:
        write_output(text, output)
    posted = [t for t in targets if not (t == "stdout" and output)]
    for line in publish(redact(render_digest(data, "markdown")), posted, config, data, stdout=text):
        click.echo(redact(line), err=True)
    if not no_record:  # after every target took it: what is stored is what was posted
        record_figures(engine, data)


@cli.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False), metavar="DIR",
              help="Where to keep the demo config and database (default: a new temp folder).")
@click.option("--keep-serving", is_flag=True, help="Keep the sandbox forge running afterwards.")
def demo(workdir: str | None, keep_serving: bool) -> None:
    """Sync a sandbox forge on loopback into SQLite and print the report."""
    from devmetrics.demo import run_demo

    setup_logging(0)
    run_demo(Path(workdir) if workdir else None, keep_serving)


def main() -> None:
    """Entry point: every known error is one line and an exit status, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # plain `devmetrics`: show the help, as --help would
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except click.ClickException as exc:
        exc.show() if not isinstance(exc, click.UsageError) else _usage(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        fail("aborted", 130)
    except DevmetricsError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; what was synced so far is stored", 130)
    except Exception as exc:  # a bug: still one line, with how to get the details
        if os.environ.get("DEVMETRICS_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (set DEVMETRICS_DEBUG=1 for details)",
             EXIT_RUNTIME)


def _usage(exc: click.UsageError) -> None:
    command = exc.ctx.command_path if exc.ctx else "devmetrics"
    click.echo(f"devmetrics: error: {command}: {redact(exc.format_message())}", err=True)


__all__ = ["ConfigError", "cli", "main"]
