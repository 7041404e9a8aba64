"""Config errors: one line naming the file, the key and what is wrong; exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from devmetrics.config import find_config_path, load_config
from devmetrics.errors import EXIT_USAGE, ConfigError
from devmetrics.report import settings_from_config

GOOD = """
[database]
url = "sqlite:///devmetrics.db"
[report]
timezone = "Europe/Berlin"
[[github]]
api_url = "https://github.example.com/api/v3"
token_env = "GH_TOKEN_FOR_TEST"
repos = ["acme/api", "acme/*"]
deployments = "auto"
production = "(?i)^prod(uction)?$"
incident_labels = ["incident"]
[[gitlab]]
url = "https://gitlab.com"
token_env = "GITLAB_TOKEN"
projects = ["acme/app", "acme/platform/*"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devmetrics.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert caught.value.exit_code == EXIT_USAGE
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_the_issue_example_loads(tmp_path: Path) -> None:
    config = load_config(str(write(tmp_path, GOOD)))
    assert config.github[0].host == "github.example.com"
    assert config.gitlab[0].projects == ["acme/app", "acme/platform/*"]
    assert config.report.timezone == "Europe/Berlin"
    assert config.source_key(config.gitlab[0]) == "gitlab[0]"


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_config(str(tmp_path / "nope.toml"))


def test_syntax_error_gives_the_line(tmp_path: Path) -> None:
    assert "TOML syntax error" in error_of(tmp_path, '[database]\nurl = "x\n')
    assert "line 2" in error_of(tmp_path, '[database]\nurl = "x\n')


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("deployments =", "deploymnets ="))
    assert "github[0].deploymnets: unknown key (did you mean 'deployments'?)" in message


def test_unknown_top_level_section(tmp_path: Path) -> None:
    assert "datbase: unknown key (did you mean 'database'?)" in error_of(tmp_path, "[datbase]\n")


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace('repos = ["acme/api", "acme/*"]', 'repos = "acme/api"'))
    assert "github[0].repos:" in message and "list" in message


def test_invalid_regex(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace('"(?i)^prod(uction)?$"', '"(prod"'))
    assert "github[0].production: invalid regular expression" in message


def test_unknown_signal(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace('deployments = "auto"', 'deployments = "tags"'))
    assert "github[0].deployments:" in message and "'environments'" in message


def test_unknown_timezone(tmp_path: Path) -> None:
    assert "report.timezone: unknown time zone" in error_of(tmp_path, GOOD.replace("Europe/Berlin", "Mars/Olympus"))


def test_token_variable_not_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GH_TOKEN_FOR_TEST", raising=False)
    config = load_config(str(write(tmp_path, GOOD)))
    with pytest.raises(ConfigError, match=r"github\[0\]\.token_env: environment variable "
                                          r"GH_TOKEN_FOR_TEST is not set"):
        config.github[0].token("github[0]", config.path)


def test_token_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN_FOR_TEST", "t0ken-value")
    config = load_config(str(write(tmp_path, GOOD)))
    assert config.github[0].token("github[0]", config.path) == "t0ken-value"


def test_config_path_lookup_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVMETRICS_CONFIG", "/etc/dm.toml")
    assert find_config_path("given.toml") == Path("given.toml")
    assert find_config_path(None) == Path("/etc/dm.toml")
    monkeypatch.delenv("DEVMETRICS_CONFIG")
    assert find_config_path(None) == Path("devmetrics.toml")


def test_per_repo_override_wins(tmp_path: Path) -> None:
    text = GOOD.replace('incident_labels = ["incident"]',
                        'incident_labels = ["incident"]\noverrides = { "acme/api" = { production = "^live$" } }')
    source = load_config(str(write(tmp_path, text))).github[0]
    assert source.setting("acme/api", "production") == "^live$"
    assert source.setting("acme/other", "production") == "(?i)^prod(uction)?$"


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).parents[1] / "config.example.toml"
    config = load_config(str(example))
    assert config.github and config.gitlab


def test_stale_after_days_must_be_positive(tmp_path: Path) -> None:
    def with_days(days: int) -> str:
        return GOOD.replace('timezone = "Europe/Berlin"', f'timezone = "Europe/Berlin"\nstale_after_days = {days}')

    assert "report.stale_after_days:" in error_of(tmp_path, with_days(0))
    good = write(tmp_path, with_days(7))
    assert load_config(str(good)).report.stale_after_days == 7
    assert settings_from_config(load_config(str(good))).stale_after_days == 7
