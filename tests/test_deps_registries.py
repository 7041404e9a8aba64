"""Registry clients against the fake registries on loopback: payloads, failures, the cache."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from devmetrics import store
from devmetrics.config import parse_config
from devmetrics.deps.cache import CachedRegistries
from devmetrics.deps.freshness import registries_for
from devmetrics.deps.registries import (
    BREAKER_FAILURES,
    USER_AGENT,
    RegistryClient,
    RegistryError,
    go_escape,
)
from devmetrics.deps.resolve import latest_version
from devmetrics.models import PackageFailure, PackageInfo, PackageVersion
from devmetrics.sandbox.registries import FakeCatalog, serving_registries
from devmetrics.sandbox.server import Sandbox

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registries() -> Iterator[tuple[Sandbox, dict[str, str]]]:
    catalog = FakeCatalog(known={("cargo", "big-crate"): [f"0.{n}.0" for n in range(150)]},
                          missing=[("pypi", "gone")])
    with serving_registries(catalog) as served:
        yield served


@pytest.fixture
def served(registries: tuple[Sandbox, dict[str, str]]) -> Iterator[tuple[Sandbox, RegistryClient]]:
    """The module's sandbox with fresh counts and no faults, and a client without retries."""
    sandbox, urls = registries
    sandbox.reset_counts()
    sandbox.faults.clear()
    yield sandbox, RegistryClient(urls, timeout=(2.0, 2.0), retries=0)
    sandbox.faults.clear()


@pytest.fixture
def engine(tmp_path: object) -> sa.Engine:
    return store.open_engine(f"sqlite:///{tmp_path}/cache.db")


def test_pypi_release_dates_and_yanked(served: tuple[Sandbox, RegistryClient]) -> None:
    sandbox, client = served
    requests_pkg = client.fetch("pypi", "requests")
    assert requests_pkg.released_at("2.28.0") == datetime(2022, 6, 9, tzinfo=UTC)
    assert requests_pkg.releases["2.32.0"].yanked
    assert latest_version(requests_pkg) == "2.32.3"  # 2.32.0 yanked, 2.33.0rc1 a pre-release
    assert sandbox.requests("pypi:") == 1


def test_npm_dist_tag_and_scoped_names(served: tuple[Sandbox, RegistryClient]) -> None:
    sandbox, client = served
    assert latest_version(client.fetch("npm", "react")) == "18.3.1"
    scoped = client.fetch("npm", "@types/node")
    assert scoped.name == "@types/node" and scoped.latest in scoped.releases
    assert sandbox.requests("npm:") == 2


def test_crates_one_request_per_page(served: tuple[Sandbox, RegistryClient]) -> None:
    sandbox, client = served
    crate = client.fetch("cargo", "big-crate")
    assert {f"0.{n}.0" for n in range(150)} <= set(crate.releases)
    assert sandbox.requests("cargo:") == 2  # > 100 versions: a second page
    assert any(release.yanked for release in crate.releases.values())


def test_go_latest_plus_info_for_the_version_in_use(served: tuple[Sandbox, RegistryClient]) -> None:
    sandbox, client = served
    cobra = client.fetch("go", "github.com/spf13/cobra", wanted={"v1.6.0"})
    assert cobra.latest == "v1.8.0" and not cobra.complete
    assert cobra.released_at("v1.6.0") == datetime(2022, 10, 11, tzinfo=UTC)
    assert sandbox.requests("go:") == 2
    # A pseudo-version dates itself: @latest alone.
    client.fetch("go", "github.com/BurntSushi/toml", wanted={"v0.0.0-20191202100458-e7afc7fbc510"})
    assert sandbox.requests("go:") == 3
    assert go_escape("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"


def test_rubygems_and_packagist(served: tuple[Sandbox, RegistryClient]) -> None:
    _, client = served
    rails = client.fetch("rubygems", "rails")
    assert rails.releases and not any(r.yanked for r in rails.releases.values())
    console = client.fetch("packagist", "symfony/console")  # minified on the wire
    assert console.releases and all(r.released_at for r in console.releases.values())


def test_user_agent_names_devmetrics() -> None:
    assert USER_AGENT.startswith("devmetrics/")


@pytest.mark.parametrize("fault", [{"status": 503}, {"malformed": True}, {"reset": True},
                                   {"status": 200, "body": {"releases": 5}}])
def test_failures_raise_registry_error(served: tuple[Sandbox, RegistryClient], fault: dict[str, object]) -> None:
    sandbox, client = served
    sandbox.faults.add(path="/registries/pypi/", times=None, **fault)
    with pytest.raises(RegistryError):
        client.fetch("pypi", "flask")


def test_fetch_many_turns_failures_into_none_with_a_warning(
        served: tuple[Sandbox, RegistryClient], caplog: pytest.LogCaptureFixture) -> None:
    sandbox, client = served
    # Slower than the timeout; it then answers 504, which the sandbox does not count, so the
    # late answer cannot leak into the next test's request counts.
    sandbox.faults.add(path="/registries/npm/", delay=1.5, status=504, times=None)
    client.timeout = (0.5, 0.5)
    with caplog.at_level(logging.WARNING, logger="devmetrics.deps"):
        found = client.fetch_many({("pypi", "gone"): set(), ("npm", "react"): set(),
                                   ("pypi", "flask"): set()})
    assert found[("pypi", "gone")] is None  # 404
    assert found[("npm", "react")] is None  # timeout
    assert found[("pypi", "flask")] is not None
    assert "pypi package gone" in caplog.text and "npm package react" in caplog.text


def test_a_registry_that_keeps_failing_is_not_asked_again(
        served: tuple[Sandbox, RegistryClient], caplog: pytest.LogCaptureFixture) -> None:
    sandbox, client = served
    client.max_workers = 1  # one at a time: the count below is exact
    outage = sandbox.faults.add(path="/registries/npm/", status=503, times=None)
    found = client.fetch_many({("npm", f"pkg{i}"): set() for i in range(20)} | {("pypi", "flask"): set()})
    assert outage.hits == 3  # then the other 17 were not asked
    assert sum(p is None for p in found.values()) == 20 and found[("pypi", "flask")] is not None
    assert "failed 3 times in a row" in caplog.text


@pytest.mark.parametrize("packages", [4, 8, 40])
def test_a_dead_registry_gets_three_requests_however_many_packages_and_workers(
        served: tuple[Sandbox, RegistryClient], caplog: pytest.LogCaptureFixture, packages: int) -> None:
    """A small registry, all 8 workers at once: before, every package was asked before the
    breaker could trip (5 failures), so a registry with up to 8 packages was asked them all."""
    sandbox, client = served
    outage = sandbox.faults.add(path="/registries/npm/", status=503, times=None)
    found = client.fetch_many({("npm", f"pkg{i}"): set() for i in range(packages)})
    assert outage.hits == BREAKER_FAILURES == 3
    assert all(p is None for p in found.values())
    assert caplog.text.count("registry failed 3 times in a row") == 1


def test_a_dead_registry_with_retries_gets_at_most_three_lookups_worth(
        registries: tuple[Sandbox, dict[str, str]]) -> None:
    """The client sync uses (two retries on 503): three look-ups of three requests each."""
    sandbox, urls = registries
    sandbox.reset_counts()
    sandbox.faults.clear()
    outage = sandbox.faults.add(path="/registries/cargo/", status=503, times=None)
    try:
        found = registries_for(None, urls).lookup({("cargo", f"crate{i}"): set() for i in range(6)}, NOW)
    finally:
        sandbox.faults.clear()
    assert outage.hits <= 3 * 3 and all(p is None for p in found.values())


def test_a_registry_that_answers_is_asked_in_parallel_after_its_first_answer(
        served: tuple[Sandbox, RegistryClient]) -> None:
    sandbox, client = served
    found = client.fetch_many({("npm", f"pkg{i}"): set() for i in range(12)})
    assert all(p is not None for p in found.values()) and sandbox.requests("npm:") == 12


def test_packages_that_do_not_exist_do_not_trip_the_breaker(served: tuple[Sandbox, RegistryClient]) -> None:
    sandbox, client = served
    client.max_workers = 1
    client.fetch_many({("npm", f"missing-{i}"): set() for i in range(8)} | {("npm", "react"): set()})
    assert sandbox.requests("npm:") == 9


# -------------------------------------------------------------------------------- cache

WANTED = {("pypi", "requests"): {"2.28.0"}, ("npm", "react"): set(), ("cargo", "serde"): set(),
          ("go", "github.com/spf13/cobra"): {"v1.6.0"}, ("rubygems", "rails"): set(),
          ("packagist", "monolog/monolog"): set()}


def test_cold_cache_one_request_per_package_warm_cache_none(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    sandbox, client = served
    cached = CachedRegistries(client, engine)
    cold = cached.lookup(WANTED, NOW)
    # One per package, plus Go's .info for v1.6.0 (not the latest, not a pseudo-version).
    assert sandbox.requests() == len(WANTED) + 1
    sandbox.reset_counts()
    warm = cached.lookup(WANTED, NOW + timedelta(hours=23))
    assert sandbox.requests() == 0
    assert {k: latest_version(p) for k, p in warm.items() if p} == {
        k: latest_version(p) for k, p in cold.items() if p}
    assert warm[("pypi", "requests")].released_at("2.28.0") == datetime(2022, 6, 9, tzinfo=UTC)


def test_latest_is_refreshed_after_a_day_and_release_dates_are_kept(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    sandbox, client = served
    cached = CachedRegistries(client, engine)
    cached.lookup(WANTED, NOW)
    sandbox.reset_counts()
    cached.lookup(WANTED, NOW + timedelta(days=2))
    # Stale lists are fetched again, one request each; Go's v1.6.0 date is still cached.
    assert sandbox.requests() == len(WANTED)
    assert sandbox.requests("go:GET /{module:path}/@v/{version}.info") == 0


def test_outage_with_a_stale_cache_uses_the_cache(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    sandbox, client = served
    cached = CachedRegistries(client, engine)
    cached.lookup({("pypi", "requests"): {"2.28.0"}}, NOW)
    sandbox.faults.add(path="/registries/pypi/", status=503, times=None)
    found = cached.lookup({("pypi", "requests"): {"2.28.0"}}, NOW + timedelta(days=3))
    assert found[("pypi", "requests")] is not None
    assert "using cached data" in caplog.text


def test_pypi_names_are_asked_and_cached_in_their_pep_503_form(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    sandbox, client = served
    cached = CachedRegistries(client, engine)
    found = cached.lookup({("pypi", "Foo_Bar"): {"1.0.0"}, ("pypi", "foo-bar"): set(),
                           ("pypi", "PyYAML"): set()}, NOW)
    # One look-up for Foo_Bar and foo-bar, none redirected (pypi.org answers Foo_Bar with a 301).
    assert sandbox.requests("pypi:") == 2
    assert found[("pypi", "Foo_Bar")] is found[("pypi", "foo-bar")] is not None
    assert found[("pypi", "PyYAML")].name == "pyyaml"
    sandbox.reset_counts()
    again = cached.lookup({("pypi", "FOO.bar"): set(), ("pypi", "pyyaml"): set()}, NOW + timedelta(hours=1))
    assert sandbox.requests() == 0 and again[("pypi", "FOO.bar")] is not None
    with engine.connect() as conn:
        names = conn.execute(sa.select(PackageInfo.__table__.c.name)).scalars().all()
    assert sorted(names) == ["foo-bar", "pyyaml"]
    assert client.fetch("pypi", "Py_YAML").name == "py-yaml" and sandbox.requests("pypi:") == 1


def test_failed_lookups_are_not_asked_again_within_a_day(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    sandbox, client = served
    wanted = {("pypi", "gone"): set(), ("npm", "missing-thing"): set(), ("pypi", "flask"): set()}
    cached = CachedRegistries(client, engine)
    first = cached.lookup(wanted, NOW)
    assert sandbox.requests() == 3 and first[("pypi", "gone")] is None
    with engine.connect() as conn:
        failures = {row.name: row for row in conn.execute(sa.select(PackageFailure.__table__))}
    assert set(failures) == {"gone", "missing-thing"}
    assert failures["gone"].reason == f"HTTP 404 for {sandbox.url}/registries/pypi/pypi/gone/json"
    assert failures["gone"].registry_url == f"{sandbox.url}/registries/pypi"
    assert failures["gone"].failed_at == NOW
    sandbox.reset_counts()
    with caplog.at_level(logging.WARNING, logger="devmetrics.deps"):
        second = cached.lookup(wanted, NOW + timedelta(hours=23))
    assert sandbox.requests() == 0 and second[("npm", "missing-thing")] is None
    assert "pypi package gone: not asked; its look-up failed at 2026-11-23 12:00 UTC (HTTP 404" in caplog.text
    assert "asked again after 2026-11-24 12:00 UTC" in caplog.text
    sandbox.reset_counts()
    cached.lookup(wanted, NOW + timedelta(hours=25))  # past the TTL: all three again
    assert sandbox.requests() == 3


def test_an_outage_is_remembered_too_and_a_recovery_forgets_it(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    sandbox, client = served
    cached = CachedRegistries(client, engine, failure_ttl=timedelta(hours=2))
    sandbox.faults.add(path="/registries/npm/", status=503, times=None)
    assert cached.lookup({("npm", "react"): set()}, NOW)[("npm", "react")] is None
    sandbox.faults.clear()
    sandbox.reset_counts()
    assert cached.lookup({("npm", "react"): set()}, NOW + timedelta(hours=1))[("npm", "react")] is None
    assert sandbox.requests() == 0  # within the TTL configured
    assert cached.lookup({("npm", "react"): set()}, NOW + timedelta(hours=3))[("npm", "react")] is not None
    assert sandbox.requests() == 1 and store.count_rows(engine, PackageFailure) == 0


def test_packages_the_breaker_skipped_are_not_remembered_as_failed(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    sandbox, client = served
    sandbox.faults.add(path="/registries/npm/", status=503, times=None)
    CachedRegistries(client, engine).lookup({("npm", f"pkg{i}"): set() for i in range(10)}, NOW)
    assert store.count_rows(engine, PackageFailure) == BREAKER_FAILURES  # the 7 not asked will be


def test_a_failure_at_another_registry_url_is_asked_again(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    """A mirror that was wrong and is now fixed: its failures say nothing about the new URL."""
    sandbox, client = served
    wrong = RegistryClient({"pypi": f"{sandbox.url}/registries/nowhere"}, retries=0)
    CachedRegistries(wrong, engine).lookup({("pypi", "flask"): set()}, NOW)
    assert store.count_rows(engine, PackageFailure) == 1
    sandbox.reset_counts()
    found = CachedRegistries(client, engine).lookup({("pypi", "flask"): set()}, NOW + timedelta(hours=1))
    assert found[("pypi", "flask")] is not None and sandbox.requests("pypi:") == 1
    assert store.count_rows(engine, PackageFailure) == 0


def test_credentials_in_a_mirror_url_stay_out_of_the_failure_cache(
        served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    sandbox, _ = served
    host = sandbox.url.removeprefix("http://")
    client = RegistryClient({"pypi": f"http://user:s3cr3t-pass@{host}/registries/pypi"}, retries=0)
    CachedRegistries(client, engine).lookup({("pypi", "gone"): set()}, NOW)
    with engine.connect() as conn:
        row = conn.execute(sa.select(PackageFailure.__table__)).one()
    assert "s3cr3t" not in f"{row.reason} {row.registry_url}"
    assert row.registry_url == f"{sandbox.url}/registries/pypi"


def test_the_failure_ttl_comes_from_the_config() -> None:
    assert parse_config({}).deps.failed_lookup_ttl_hours == 24
    config = parse_config({"deps": {"failed_lookup_ttl_hours": 0.5}})
    assert config.deps.failed_lookup_ttl_hours == 0.5


def test_cache_rows(served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    _, client = served
    CachedRegistries(client, engine).lookup({("pypi", "requests"): set()}, NOW)
    with engine.connect() as conn:
        info = conn.execute(sa.select(PackageInfo.__table__)).mappings().one()
        versions = conn.execute(sa.select(PackageVersion.__table__.c.version)).scalars().all()
    assert (info["ecosystem"], info["name"], info["complete"]) == ("pypi", "requests", True)
    assert set(versions) == {"2.28.0", "2.28.2", "2.31.0", "2.32.0", "2.32.3", "2.33.0rc1"}


def test_a_hung_registry_costs_one_timeout_and_three_requests() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []

    def accept_and_never_answer() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:  # the listener was closed: the test is over
                return

    threading.Thread(target=accept_and_never_answer, daemon=True).start()
    client = RegistryClient({"pypi": f"http://127.0.0.1:{listener.getsockname()[1]}"}, timeout=(0.5, 0.5))
    started = time.monotonic()
    found = client.fetch_many({("pypi", f"pkg{i}"): set() for i in range(40)})
    # Three look-ups time out together and trip the breaker; the other 37 are not asked.
    assert time.monotonic() - started < 3.0
    assert client.requests_made == BREAKER_FAILURES and all(p is None for p in found.values())
    listener.close()
    for connection in accepted:
        connection.close()
