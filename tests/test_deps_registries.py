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
from devmetrics.deps.cache import CachedRegistries
from devmetrics.deps.registries import MAX_WORKERS, USER_AGENT, RegistryClient, RegistryError, go_escape
from devmetrics.deps.resolve import latest_version
from devmetrics.models import PackageInfo, PackageVersion
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
    assert outage.hits == 5  # then the other 15 were not asked
    assert sum(p is None for p in found.values()) == 20 and found[("pypi", "flask")] is not None
    assert "failed 5 times in a row" in caplog.text


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


def test_cache_rows(served: tuple[Sandbox, RegistryClient], engine: sa.Engine) -> None:
    _, client = served
    CachedRegistries(client, engine).lookup({("pypi", "requests"): set()}, NOW)
    with engine.connect() as conn:
        info = conn.execute(sa.select(PackageInfo.__table__)).mappings().one()
        versions = conn.execute(sa.select(PackageVersion.__table__.c.version)).scalars().all()
    assert (info["ecosystem"], info["name"], info["complete"]) == ("pypi", "requests", True)
    assert set(versions) == {"2.28.0", "2.28.2", "2.31.0", "2.32.0", "2.32.3", "2.33.0rc1"}


def test_a_hung_registry_costs_about_two_timeouts_not_one_per_package() -> None:
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
    # 8 workers time out together; the 5th failure trips the breaker; the rest are not asked.
    assert time.monotonic() - started < 3.0
    assert client.requests_made <= 2 * MAX_WORKERS and all(p is None for p in found.values())
    listener.close()
    for connection in accepted:
        connection.close()
