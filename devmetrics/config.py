"""TOML configuration → typed, validated objects.

A bad file gives one line naming the file, the key and what is wrong (ConfigError, exit 2).
Tokens never live in the file: a source names the environment variable that holds it.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devmetrics import repo_names, secrets
from devmetrics.errors import ConfigError

DEFAULT_CONFIG = "devmetrics.toml"
CONFIG_ENV = "DEVMETRICS_CONFIG"
DEFAULT_PRODUCTION = r"(?i)^prod(uction)?$"

Signal = Literal["auto", "environments", "workflow", "releases", "merges"]


class Section(BaseModel):
    # strict: TOML is typed, so "yes" is not a boolean and "30" is not a number.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _check_forge_url(value: str) -> str:
    """An http(s) URL with a host and no credentials: tokens go in token_env, never in a URL."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{secrets.redact_url(value)!r} is not an http(s) URL like https://HOST/api/v3")
    if secrets.has_userinfo(value):
        secrets.split_credentials(value)  # remembered, so even a traceback would mask them
        raise ValueError(f"{secrets.redact_url(value)!r} with a user name or password: credentials in "
                         "a URL are refused; remove them and put the token in the variable token_env names")
    if secrets.redact_url(value) != value:
        raise ValueError(f"{secrets.redact_url(value)!r} with a credential in its query: credentials in "
                         "a URL are refused; remove it and put the token in the variable token_env names")
    return value


def _check_entries(problem: Callable[[str], str | None]) -> Callable[[list[str]], list[str]]:
    def check(entries: list[str]) -> list[str]:
        for entry in entries:
            found = problem(entry)
            if found:
                raise ValueError(f"{entry!r}: {found}")
        return entries
    return check


class RepoOverride(Section):
    """Per-repo settings that win over the source's."""

    deployments: Signal | None = None
    production: str | None = None
    workflow: str | None = None

    _regex = field_validator("production")(lambda v: v if v is None else _check_regex(v))


class SourceBase(Section):
    token_env: str
    deployments: Signal = "auto"
    production: str = DEFAULT_PRODUCTION
    workflow: str | None = None  # the CI workflow (file or name) / GitLab job that deploys
    incident_labels: list[str] = ["incident"]
    include_archived: bool = False
    include_forks: bool = False
    ca_bundle: str | None = None  # a PEM file for a self-signed or corporate CA
    overrides: dict[str, RepoOverride] = {}

    _regex = field_validator("production")(_check_regex)

    def token(self, key: str, config_path: Path | None) -> str:
        """The token from the environment; a clear error when the variable is unset."""
        value = os.environ.get(self.token_env, "")
        if not value:
            raise ConfigError(
                f"{_where(config_path)}{key}.token_env: environment variable {self.token_env} "
                "is not set (export it with a token)"
            )
        try:
            return secrets.check_token(value, f"environment variable {self.token_env}")
        except ValueError as exc:
            raise ConfigError(f"{_where(config_path)}{key}.token_env: {exc}") from None

    def setting(self, repo: str, name: str) -> Any:
        """A per-repo override if there is one, else the source's value."""
        override = self.overrides.get(repo)
        value = getattr(override, name, None)  # overrides carry only a few of the keys
        return getattr(self, name) if value is None else value


class GitHubSource(SourceBase):
    forge: Literal["github"] = "github"
    api_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    repos: list[str] = Field(min_length=1)
    # GitHub App authentication instead of a token: app id, private key, installation.
    app_id: int | None = None
    app_private_key_env: str | None = None
    app_installation_id: int | None = None

    _url = field_validator("api_url")(_check_forge_url)
    _repos = field_validator("repos")(_check_entries(repo_names.github_entry_problem))

    @property
    def host(self) -> str:
        host = re.sub(r"^https?://", "", self.api_url).split("/")[0]
        return "github.com" if host == "api.github.com" else host


class GitLabSource(SourceBase):
    forge: Literal["gitlab"] = "gitlab"
    url: str = "https://gitlab.com"
    token_env: str = "GITLAB_TOKEN"
    projects: list[str] = Field(min_length=1)

    _url = field_validator("url")(_check_forge_url)
    _projects = field_validator("projects")(_check_entries(repo_names.gitlab_entry_problem))

    @property
    def host(self) -> str:
        return re.sub(r"^https?://", "", self.url).split("/")[0]

    @property
    def repos(self) -> list[str]:
        return self.projects


class DatabaseSection(Section):
    url: str = "sqlite:///devmetrics.db"


class ReportSection(Section):
    timezone: str = "UTC"
    window_days: int = Field(default=28, ge=1)
    incident_window_hours: float = Field(default=72, gt=0)
    hotfix_labels: list[str] = ["hotfix"]
    bots: list[str] = []  # extra accounts to treat as bots (besides type Bot and *[bot])
    levels: str = "dora-2023"
    # A figure resting on fewer events than this in either week is "few events": never called
    # better or worse, never given a level (the digest; `devmetrics check` uses the same).
    min_events: int = Field(default=5, ge=1)
    stale_after_days: float = Field(default=14, gt=0)  # an open PR quiet this long is stale

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: str) -> str:
        from devmetrics.metrics.levels import benchmark_sets

        known = benchmark_sets()
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown benchmark set {value!r} (known: {', '.join(known)}){hint}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


def check_zone(value: str) -> str:
    """An IANA time zone name, or a ValueError saying what is wrong."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
    return value


class SyncSection(Section):
    since_days: int = Field(default=90, ge=1)  # how far back the first sync reads
    lookback_days: float = Field(default=3, ge=0)  # re-read window for late changes
    max_wait: float = Field(default=900, ge=0)  # longest wait on a rate limit, seconds
    timeout: float = Field(default=30, gt=0)  # one HTTP request, seconds
    retries: int = Field(default=5, ge=0)  # 5xx / connection retries per request


class DigestSection(Section):
    repo: str | None = None  # owner/name where github-issue / github-discussion posts go
    labels: list[str] = ["devmetrics"]
    discussion_category: str = "General"
    slack_webhook_env: str = "SLACK_WEBHOOK_URL"
    title: str = "Engineering metrics {week}"
    # The token that posts (github-issue / github-discussion); default: the first [[github]]
    # source's token_env, else GITHUB_TOKEN. Lets a read-only sync token differ from the poster.
    token_env: str | None = None
    # A past week's posted figure that has since changed by more than this share of itself
    # gets a "revised" line in the next digest (digest/history.py).
    revision_threshold: float = Field(default=0.1, ge=0)
    # With more repos than this, the digest opens with a one-row-per-repo overview and shows
    # the detail only for this many (those that need attention most); the rest is on the dashboard.
    detail_repos: int = Field(default=5, ge=0)
    dashboard_url: str | None = None  # the HTML dashboard the digest links to (devmetrics' own)
    title_length: int = Field(default=80, ge=10)  # PR and incident titles are shortened to this

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        found = repo_names.github_name_problem(value) if value is not None else None
        if found:
            raise ValueError(f"{value!r}: {found}")
        return value


class DepsSection(Section):
    # A package a registry could not give (unknown to it, or the registry failed) is not
    # asked again for this long; 0 asks every sync.
    failed_lookup_ttl_hours: float = Field(default=24, ge=0)


class TargetSection(Section):
    """One `[[targets]]` table (metrics.md §9); its metric key is checked in devmetrics/targets.py."""

    name: str = Field(min_length=1)
    metric: str = Field(min_length=1)  # a JSON report key, a distribution's field as key.field
    at_most: float | None = None
    at_least: float | None = None
    repos: list[str] = []  # globs over full names; empty: every repo
    window: str | None = None  # like 28d or 4w; default report.window_days
    owner: str | None = None  # a GitHub or GitLab handle or team, for mentions
    guardrail: list[str] = []  # other targets' names that must be met for this one to count
    breach_after: int = Field(default=2, ge=1)  # consecutive breached weeks before alerting
    recover_after: int = Field(default=2, ge=1)  # consecutive met weeks before recovering

    @field_validator("at_most", "at_least", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[1-9]\d*[dw]", value):
            raise ValueError(f"{value!r} is not a window like 28d or 4w")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> TargetSection:
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError(f"target {self.name!r}: give exactly one of at_most or at_least")
        return self

    @property
    def window_days(self) -> int | None:
        if self.window is None:
            return None
        return int(self.window[:-1]) * (7 if self.window.endswith("w") else 1)


class Config(Section):
    database: DatabaseSection = DatabaseSection()
    report: ReportSection = ReportSection()
    sync: SyncSection = SyncSection()
    digest: DigestSection = DigestSection()
    deps: DepsSection = DepsSection()
    registries: dict[str, str] = {}  # ecosystem -> registry base URL (mirrors)
    github: list[GitHubSource] = []
    gitlab: list[GitLabSource] = []
    targets: list[TargetSection] = []
    path: Path | None = None

    @field_validator("registries")
    @classmethod
    def _registry_urls(cls, value: dict[str, str]) -> dict[str, str]:
        """A mirror's URL must be http(s) with a host (it may carry credentials: they are
        used for the mirror and masked everywhere else, docs/dependencies.md)."""
        for ecosystem, url in value.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{ecosystem}: {secrets.redact_url(url)!r} is not an http(s) URL "
                                 "like https://mirror.example/simple")
        return value

    @property
    def sources(self) -> list[GitHubSource | GitLabSource]:
        return [*self.github, *self.gitlab]

    def secret_env_names(self) -> list[str]:
        """Every environment variable this config names as holding a secret (to mask)."""
        names = [self.digest.token_env, self.digest.slack_webhook_env]
        for source in self.sources:
            names += [source.token_env, getattr(source, "app_private_key_env", None)]
        return [name for name in names if name]

    def source_key(self, source: GitHubSource | GitLabSource) -> str:
        """`github[0]`, `gitlab[1]`: how messages name a source's table in the file."""
        group = self.github if isinstance(source, GitHubSource) else self.gitlab
        return f"{source.forge}[{next(i for i, s in enumerate(group) if s is source)}]"


def find_config_path(explicit: str | None) -> Path:
    """--config, else $DEVMETRICS_CONFIG, else ./devmetrics.toml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(explicit: str | None = None) -> Config:
    path = find_config_path(explicit)
    if not path.is_file():
        hint = "" if explicit else f" (pass --config, set {CONFIG_ENV}, or create it from config.example.toml)"
        raise ConfigError(f"{path}: config file not found{hint}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    try:
        config = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, data, path)) from None
    if config.targets:
        from devmetrics.targets import check_targets

        check_targets(config.targets, _where(path))
    return config


def _where(path: Path | None) -> str:
    return f"{path}: " if path else ""


def _one_line(exc: ValidationError, data: dict[str, Any], path: Path | None) -> str:
    error = exc.errors()[0]
    loc = error["loc"]
    key = _key_name(loc)
    if error["type"] == "extra_forbidden":
        return f"{_where(path)}{key}: unknown key{_did_you_mean(loc)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required key is missing"
    return f"{_where(path)}{key}: {message}"


def _key_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation if part in model.model_fields else None
        inner = _section_type(annotation)
        if inner is None:
            break
        model = inner
    known = [name for name in model.model_fields if name != "path"]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"


def _section_type(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
