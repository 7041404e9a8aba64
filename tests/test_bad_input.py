"""Bad input: every case answered with one clear line and the documented exit status.

Runs `devmetrics` the way a user does (the `main` entry point, and a subprocess for a few),
and asserts that no output holds a traceback.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from devmetrics.cli import main
from devmetrics.store import open_engine

BASE = """
[database]
url = "sqlite:///{tmp}/dm.db"
[[github]]
api_url = "http://127.0.0.1:9/github"
token_env = "DM_BAD_INPUT_TOKEN"
repos = ["acme/api"]
"""

# (name, config text or None for BASE, arguments, exit status, text the one line must hold)
CONFIG_CASES = [
    ("missing file", "<missing>", ["report"], 2, "config file not found"),
    ("toml syntax", '[database\nurl = "x"', ["report"], 2, "TOML syntax error"),
    ("unterminated string", '[database]\nurl = "x\n', ["report"], 2, "line 2"),
    ("unknown section", "[databse]\n", ["report"], 2, "did you mean 'database'"),
    ("unknown key", BASE + 'deploymnets = "auto"\n', ["report"], 2, "did you mean 'deployments'"),
    ("unknown report key", BASE + "[report]\ntimezon = 'UTC'\n", ["report"], 2, "did you mean 'timezone'"),
    ("repos not a list", BASE.replace('["acme/api"]', '"acme/api"'), ["report"], 2, "github[0].repos"),
    ("repos empty", BASE.replace('["acme/api"]', "[]"), ["report"], 2, "github[0].repos"),
    ("repos missing", BASE.replace('repos = ["acme/api"]', ""), ["report"], 2, "required key is missing"),
    ("bad regex", BASE + 'production = "(prod"\n', ["report"], 2, "invalid regular expression"),
    ("bad override regex", BASE + 'overrides = { "acme/api" = { production = "[" } }\n', ["report"], 2,
     "overrides.acme/api.production"),
    ("unknown signal", BASE + 'deployments = "tags"\n', ["report"], 2, "github[0].deployments"),
    ("bad timezone", BASE + "[report]\ntimezone = 'Mars/Base'\n", ["report"], 2, "unknown time zone"),
    ("negative window", BASE + "[report]\nwindow_days = -3\n", ["report"], 2, "report.window_days"),
    ("wrong type number", BASE + "[sync]\nmax_wait = 'long'\n", ["report"], 2, "sync.max_wait"),
    ("github not an array", BASE.replace("[[github]]", "[github]"), ["report"], 2, "github"),
    ("bad database url", BASE.replace("sqlite:///{tmp}/dm.db", "nosuchdb://x"), ["report"], 2, "database.url"),
    ("token unset", None, ["sync"], 2, "DM_BAD_INPUT_TOKEN is not set"),
    ("labels wrong type", BASE + "incident_labels = 'incident'\n", ["report"], 2, "incident_labels"),
    ("bool wrong type", BASE + "include_archived = 'yes'\n", ["report"], 2, "include_archived"),
    # Names and URLs that would steer a request or carry a credential (docs/reliability.md)
    ("repo climbing out", BASE.replace('["acme/api"]', '["acme/../../user"]'), ["sync"], 2,
     "github[0].repos: 'acme/../../user': is not owner/name"),
    ("repo to the rate limit", BASE.replace('["acme/api"]', '["../../rate_limit"]'), ["sync"], 2, "github[0].repos"),
    ("repo with a query", BASE.replace('["acme/api"]', '["acme/api?per_page=1"]'), ["report"], 2, "github[0].repos"),
    ("gitlab path climbing out", BASE + '[[gitlab]]\ntoken_env = "DM_BAD_INPUT_TOKEN"\nprojects = ["a/../../x"]\n',
     ["report"], 2, "gitlab[0].projects: 'a/../../x'"),
    ("gitlab empty segment", BASE + '[[gitlab]]\ntoken_env = "DM_BAD_INPUT_TOKEN"\nprojects = ["a//x"]\n',
     ["report"], 2, "gitlab[0].projects"),
    ("digest repo climbing out", BASE + '[digest]\nrepo = "acme/../x"\n', ["report"], 2, "digest.repo"),
    ("api_url with a password", BASE.replace("http://127.0.0.1:9", "http://dm:pw@127.0.0.1:9"), ["report"], 2,
     "credentials in a URL are refused"),
    ("api_url with a query token", BASE.replace("/github", "/github?access_token=abc"), ["report"], 2,
     "credentials in a URL are refused"),
    ("api_url not a url", BASE.replace("http://127.0.0.1:9/github", "not a url"), ["report"], 2,
     "github[0].api_url: 'not a url' is not an http(s) URL"),
    ("short token", "<short token>", ["sync"], 2, "DM_BAD_INPUT_TOKEN holds 1 character, which is not a token"),
    # issue 14 items 3-8: each was "unexpected ..." (exit 1) before
    ("unknown benchmark set", BASE + "[report]\nlevels = 'dora-2032'\n", ["report"], 2,
     "report.levels: unknown benchmark set 'dora-2032' (known: dora-2023); did you mean 'dora-2023'?"),
    ("garbage database", "<garbage db>", ["report"], 1, "dm.db is not a devmetrics database (not a SQLite file)"),
    ("another program's database", "<foreign db>", ["report"], 1,
     "dm.db is not a devmetrics database (it holds other tables: notes)"),
    ("database folder cannot be made", BASE.replace("sqlite:///{tmp}/dm.db", "sqlite:////proc/devmetrics/dm.db"),
     ["report"], 1, "database.url: cannot create the folder /proc/devmetrics for the SQLite file"),
    ("registry not a url", BASE + '[registries]\npypi = "not a url"\n', ["report"], 2, "registries"),
    ("digest repo not a name", BASE + '[digest]\nrepo = "just-a-name"\n', ["report"], 2, "digest.repo"),
    ("negative stale days", BASE + "[report]\nstale_after_days = -1\n", ["report"], 2, "report.stale_after_days"),
    ("zero min events", BASE + "[report]\nmin_events = 0\n", ["report"], 2, "report.min_events"),
    ("incident window zero", BASE + "[report]\nincident_window_hours = 0\n", ["report"], 2,
     "report.incident_window_hours"),
    ("negative lookback", BASE + "[sync]\nlookback_days = -1\n", ["report"], 2, "sync.lookback_days"),
    ("zero timeout", BASE + "[sync]\ntimeout = 0\n", ["report"], 2, "sync.timeout"),
    ("unknown sync key", BASE + "[sync]\nsince_dayz = 3\n", ["report"], 2, "did you mean 'since_days'"),
]

ARG_CASES = [
    ("no command", [], 0, None),
    ("unknown command", ["bogus"], 2, "No such command"),
    ("unknown option", ["report", "--bogus"], 2, "No such option"),
    ("bad since", ["report", "--since", "yesterday-ish"], 2, "is not a date"),
    ("bad until", ["report", "--until", "2026-13-40"], 2, "is not a date"),
    ("since after until", ["report", "--since", "2026-11-20", "--until", "2026-11-01"], 2, "must be before"),
    ("bad window", ["report", "--window", "soon"], 2, "is not a window"),
    ("zero window", ["report", "--window", "0d"], 2, "is not a window"),
    ("bad format", ["report", "--format", "xml"], 2, "Invalid value for '--format'"),
    ("bad by", ["report", "--by", "day"], 2, "Invalid value for '--by'"),
    ("bad shard", ["sync", "--shard", "5/2"], 2, "is not a shard"),
    ("shard garbage", ["sync", "--shard", "half"], 2, "is not a shard"),
    ("bad sync since", ["sync", "--since", "last tuesday"], 2, "is not a date"),
    ("explain without repo", ["explain", "lead_time_hours"], 2, "exactly one --repo"),
    ("deps without repo", ["deps"], 2, "Missing option '--repo'"),
    ("bad post target", ["digest", "--post", "fax"], 2, "Invalid value for '--post'"),
    ("unknown time zone option", ["report", "--timezone", "Nowhere/Land"], 2,
     "Invalid value for '--timezone': unknown time zone 'Nowhere/Land'"),
    ("report repo on an empty store", ["report", "--repo", "acme/x"], 2,
     "Invalid value for '--repo': acme/x matches none of the repos the database holds (none yet: run devmetrics sync)"),
    ("deps repo unknown", ["deps", "--repo", "acme/x"], 2, "'--repo': acme/x matches none of the repos"),
    ("output folder missing", ["report", "--output", "/nonexistent/devmetrics/x.json"], 2,
     "Invalid value for '--output': cannot write /nonexistent/devmetrics/x.json"),
    ("bad week", ["digest", "--week", "2026-W60"], 2, "is not an ISO week like 2026-W47"),
    ("week garbage", ["digest", "--week", "soon"], 2, "is not an ISO week"),
    ("explain unknown metric", ["explain", "bogus", "--repo", "acme/api"], 2, "unknown metric 'bogus'"),
    ("explain two repos", ["explain", "lead_time_hours", "--repo", "a/b", "--repo", "c/d"], 2, "exactly one --repo"),
    ("negative window", ["report", "--window", "-3d"], 2, "is not a window"),
    ("impossible date", ["report", "--since", "2026-02-30"], 2, "is not a date"),
    ("bad deps format", ["deps", "--repo", "acme/api", "--format", "xml"], 2, "Invalid value for '--format'"),
    ("bad digest format", ["digest", "--format", "pdf"], 2, "Invalid value for '--format'"),
    ("zero shard", ["sync", "--shard", "0/2"], 2, "is not a shard"),
]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    saved = sys.argv
    sys.argv = ["devmetrics", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    return code, out, err


def config_args(tmp_path: Path, text: str | None) -> list[str]:
    path = tmp_path / "devmetrics.toml"
    if text != "<missing>":
        path.write_text((text or BASE).replace("{tmp}", str(tmp_path)))
    return ["--config", str(path)]


PACKAGE = str(Path(__file__).resolve().parents[1] / "devmetrics")


def assert_one_clear_line(code: int, err: str, expected_code: int, needle: str | None) -> None:
    """One line, the documented status; never "unexpected" (a bug report, not a message),
    a traceback, or a path inside the installed package."""
    assert "Traceback" not in err and "unexpected" not in err, err
    assert PACKAGE not in err, err
    assert code == expected_code, err
    if needle is not None:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert lines[0].startswith("devmetrics: error: ") and needle in lines[0], err


@pytest.mark.parametrize(("name", "text", "argv", "code", "needle"), CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config(name: str, text: str | None, argv: list[str], code: int, needle: str,
                    tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DM_BAD_INPUT_TOKEN", raising=False)
    if text == "<short token>":
        monkeypatch.setenv("DM_BAD_INPUT_TOKEN", "x")
        text = None
    database = tmp_path / "dm.db"
    if text == "<garbage db>":
        database.write_bytes(bytes(range(256)) * 8)
        text = None
    elif text == "<foreign db>":
        with sqlite3.connect(database) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
        text = None
    else:
        open_engine(f"sqlite:///{database}").dispose()  # a devmetrics store, which must come out unchanged
    before = database.read_bytes()
    got, out, err = run([*argv, *config_args(tmp_path, text)], capsys)
    assert_one_clear_line(got, err, code, needle)
    assert "Traceback" not in out
    assert database.read_bytes() == before, "the store is unchanged"


@pytest.mark.parametrize(("name", "argv", "code", "needle"), ARG_CASES, ids=[c[0] for c in ARG_CASES])
def test_bad_arguments(name: str, argv: list[str], code: int, needle: str | None, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    extra = config_args(tmp_path, None) if argv and argv[0] not in ("bogus",) else []
    if argv[:1] and argv[0] not in ("bogus",) and "--bogus" not in argv:
        argv = [argv[0], *extra, *argv[1:]]
    got, out, err = run(argv, capsys)
    assert_one_clear_line(got, err, code, needle)


def test_corpus_is_large_enough() -> None:
    assert len(CONFIG_CASES) + len(ARG_CASES) > 60


def test_config_before_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`devmetrics --config F report`, as git and kubectl users type it (issue 14 item 12)."""
    monkeypatch.setenv("DEVMETRICS_CONFIG", str(tmp_path / "elsewhere.toml"))  # the option wins over the env
    [_, path] = config_args(tmp_path, None)
    got, out, err = run(["--config", path, "-v", "report", "--format", "json"], capsys)
    assert got == 0, err
    assert json.loads(out)["repos"] == []
    assert "the database holds no repos yet: run `devmetrics sync`" in err


def test_database_is_left_alone_by_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "dm.db"
    database.write_bytes(b"precious")
    run(["report", *config_args(tmp_path, BASE + 'deploymnets = "auto"\n')], capsys)
    assert database.read_bytes() == b"precious"


def test_subprocess_error_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "devmetrics", "report", "--config", str(tmp_path / "none.toml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "config file not found" in done.stderr


# Broken manifests on a repo's default branch: each is skipped with one warning line that
# names the file, and the good manifest beside it is still read.
BAD_MANIFESTS = [
    ("package.json", b"{not json"),
    ("package.json", b'["a list, not an object"]'),
    ("pyproject.toml", b"[project\ndependencies = ["),
    ("requirements.txt", b"\xff\xfe\x00garbage\x00"),
    ("go.mod", b"module\nrequire (\n"),
    ("Cargo.toml", b"[dependencies\nserde = "),
    ("composer.json", b'{"require": "not a table"}'),
    ("pnpm-lock.yaml", b"lockfileVersion: [unclosed\n"),
]


@pytest.mark.parametrize(("name", "content"), BAD_MANIFESTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_MANIFESTS)])
def test_bad_manifest_is_skipped_with_one_warning(name: str, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    from devmetrics.deps.manifests import read_all

    pairs = {"package.json": "package.json", "pnpm-lock.yaml": "package.json"}
    files = {f"broken/{name}": content, "good/requirements.txt": b"click==8.1.7\n"}
    if name in pairs:  # a lock file is read with its manifest
        files.setdefault(f"broken/{pairs[name]}", b'{"dependencies": {"left-pad": "^1.3.0"}}')
    deps = read_all(sorted(files), lambda path: files[path])
    assert ("pypi", "click") in {(d.ecosystem, d.name) for d in deps}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "Traceback" not in caplog.text
    assert all("\n" not in w for w in warnings)
    if not any(d.manifest_path.startswith("broken/") for d in deps):
        assert any("broken/" in w for w in warnings), warnings
