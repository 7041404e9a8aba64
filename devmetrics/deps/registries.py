"""Package registry clients: every version of a package with its first publication time.

One request per package wherever the registry allows it:
- PyPI      GET /pypi/<name>/json                     all releases, files' upload times, yanked
- npm       GET /<name>                               dist-tags, versions (deprecated), time
- crates.io GET /api/v1/crates/<name>/versions        num, created_at, yanked: every
            version at once (it pages only when asked with per_page; a meta.next_page is
            followed all the same). The sparse index has no dates, so reading it as well
            would double the cost for nothing.
- Go proxy  GET /<module>/@latest (+ /@v/<v>.info for the version in use when it is not
            the latest and not a pseudo-version, whose time is in its name): the proxy has
            no one-request history with dates
- RubyGems  GET /api/v1/versions/<name>.json          number, created_at per platform
- Packagist GET /p2/<vendor>/<name>.json              minified versions with their time

Base URLs come from config (`registries`, for mirrors). A mirror's credentials, in its URL's
userinfo (`https://user:secret@mirror.example/simple`) or query (`?token=...`), are taken out
of the URL before it is used: the userinfo is sent as HTTP Basic auth and the query as request
parameters, so messages only ever name the URL without them (devmetrics/secrets.py).
A failure raises RegistryError; `fetch_each` logs it and hands it back (`fetch_many`: as
None) so the rest of a repo is still evaluated. PyPI names are asked for in their PEP 503
form, the URL PyPI itself redirects every other spelling to.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import requests
from packaging.utils import canonicalize_name
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from devmetrics import __version__, secrets
from devmetrics.clock import now_utc
from devmetrics.deps.versions import same_version

log = logging.getLogger("devmetrics.deps")

DEFAULT_BASE_URLS: dict[str, str] = {
    "pypi": "https://pypi.org",
    "npm": "https://registry.npmjs.org",
    "cargo": "https://crates.io",
    "go": "https://proxy.golang.org",
    "rubygems": "https://rubygems.org",
    "packagist": "https://repo.packagist.org",
}
USER_AGENT = f"devmetrics/{__version__} (dependency freshness; python-requests)"
MAX_WORKERS = 8
# (connect, read). The read timeout bounds a silence between bytes, not the whole body, so
# a large npm document that keeps arriving is not cut off by it.
TIMEOUT = (5.0, 15.0)
# crates.io's data access policy asks crawlers for at most one request per second.
POLITE_INTERVAL = {"https://crates.io": 1.0}
# After this many failures in a row, a registry is taken as down for the rest of the run:
# its remaining packages are unknown at once instead of each waiting out its timeouts.
# Until a registry has answered, no more look-ups are in flight to it than it would take
# to trip, so a registry that is down is asked this many times and no more.
BREAKER_FAILURES = 3
PSEUDO_VERSION_TIME = re.compile(r"(\d{14})-[0-9a-f]{12}$")

Key = tuple[str, str]  # (ecosystem, name)


class RegistryError(Exception):
    """A registry could not say anything about a package (outage, timeout, 404, bad body)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(secrets.redact(message))


class PackageNotFound(RegistryError):
    """The registry answered, and does not know the package (404/410): not an outage."""


class RegistrySkipped(RegistryError):
    """Not asked: this registry failed too often in a row during this run."""


@dataclass
class Release:
    released_at: datetime | None
    yanked: bool = False  # yanked, deprecated, or without any file to install


@dataclass
class PackageReleases:
    ecosystem: str
    name: str
    releases: dict[str, Release] = field(default_factory=dict)
    latest: str | None = None  # the registry's own pointer: npm dist-tags.latest, Go @latest
    complete: bool = True  # False when only some versions were looked up (Go)
    fetched_at: datetime | None = None

    def spelling(self, version: str) -> str:
        """The registry's own spelling of `version`: PyPI's 2.0 for a pin of 2.0.0,
        Packagist's v1.2.3 for 1.2.3. The version itself when no release matches."""
        if version in self.releases:
            return version
        return next((known for known in self.releases if same_version(self.ecosystem, known, version)), version)

    def released_at(self, version: str) -> datetime | None:
        release = self.releases.get(version)
        if release is not None and release.released_at is not None:
            return release.released_at
        return pseudo_version_time(version) if self.ecosystem == "go" else None


def pseudo_version_time(version: str) -> datetime | None:
    """Go pseudo-versions carry their commit time: v0.0.0-20191202100458-e7afc7fbc510."""
    found = PSEUDO_VERSION_TIME.search(version.split("+")[0])
    return datetime.strptime(found[1], "%Y%m%d%H%M%S").replace(tzinfo=UTC) if found else None


def canonical_name(ecosystem: str, name: str) -> str:
    """The one spelling a registry files a package under: PEP 503 for PyPI (`Foo_Bar` and
    `foo.bar` are `foo-bar`); other ecosystems' names are taken as written."""
    return canonicalize_name(name) if ecosystem == "pypi" else name


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RegistryClient:
    """HTTP access to the registries: base URLs, User-Agent, retries, bounded concurrency."""

    def __init__(self, base_urls: Mapping[str, str] | None = None, timeout: Any = TIMEOUT,
                 max_workers: int = MAX_WORKERS, retries: int = 2) -> None:
        self.base_urls: dict[str, str] = dict(DEFAULT_BASE_URLS)
        self._auth: dict[str, tuple[str, str]] = {}
        self._params: dict[str, list[tuple[str, str]]] = {}
        for ecosystem, url in (base_urls or {}).items():
            self._configure(ecosystem, url)
        for unknown in set(self.base_urls) - set(DEFAULT_BASE_URLS):
            log.warning("registries.%s: not an ecosystem devmetrics reads (%s); ignored",
                        unknown, ", ".join(DEFAULT_BASE_URLS))
        self.timeout = timeout
        self.max_workers = max(1, min(max_workers, MAX_WORKERS))
        self.retries = retries  # transient failures (429, 502-504, resets) are retried
        self.requests_made = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._last_request: dict[str, float] = {}
        # The breaker's state per ecosystem, under _breaker: failures in a row, whether the
        # last answer was good, and look-ups in flight while it was not.
        self._breaker = threading.Condition()
        self._failures_in_a_row: dict[str, int] = {}
        self._answering: set[str] = set()
        self._probing: dict[str, int] = {}

    def _configure(self, ecosystem: str, url: str) -> None:
        """A mirror's base URL without credentials; they go to auth and query parameters."""
        url, auth = secrets.split_credentials(url)
        parts = urlsplit(url)
        params = parse_qsl(parts.query, keep_blank_values=True)
        for name, value in params:
            if secrets.is_credential_param(name):
                secrets.remember(value)
        self.base_urls[ecosystem] = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
        if auth is not None:
            self._auth[ecosystem] = auth
        if params:
            self._params[ecosystem] = params

    def fetch(self, ecosystem: str, name: str, wanted: Collection[str] = (),
              known: Collection[str] = ()) -> PackageReleases:
        """Every version of `name` (Go: the latest plus `wanted` versions not in `known`)."""
        fetcher = FETCHERS.get(ecosystem)
        if fetcher is None:
            raise RegistryError(f"no registry client for ecosystem {ecosystem!r}")
        name = canonical_name(ecosystem, name)
        with self._admitted(ecosystem):
            try:
                package = fetcher(self, name, set(wanted) - set(known))
            except PackageNotFound:
                self._record(ecosystem, failed=False)  # the registry works; the package is gone
                raise
            except RegistryError:
                self._record(ecosystem, failed=True)
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # JSON of another shape
                self._record(ecosystem, failed=True)
                raise RegistryError(f"unexpected answer for {name}: {exc!r}") from None
            self._record(ecosystem, failed=False)
        package.fetched_at = now_utc()
        return package

    @contextmanager
    def _admitted(self, ecosystem: str) -> Iterator[None]:
        """Wait for a turn to ask `ecosystem`; RegistrySkipped once its breaker has tripped.

        A registry whose last answer was good is asked by every worker at once. One that
        has not answered yet, or failed last, gets no more look-ups in flight than failures
        it would take to trip: when it is down, it is asked BREAKER_FAILURES times in all.
        """
        with self._breaker:
            while True:
                failures = self._failures_in_a_row.get(ecosystem, 0)
                if failures >= BREAKER_FAILURES:
                    raise RegistrySkipped(f"not asked: the {ecosystem} registry failed "
                                          f"{BREAKER_FAILURES} times in a row")
                probing = ecosystem not in self._answering
                if not probing or failures + self._probing.get(ecosystem, 0) < BREAKER_FAILURES:
                    break
                self._breaker.wait()
            if probing:
                self._probing[ecosystem] = self._probing.get(ecosystem, 0) + 1
        try:
            yield
        finally:
            with self._breaker:
                if probing:
                    self._probing[ecosystem] -= 1
                self._breaker.notify_all()

    def _record(self, ecosystem: str, failed: bool) -> None:
        with self._breaker:
            count = self._failures_in_a_row.get(ecosystem, 0) + 1 if failed else 0
            self._failures_in_a_row[ecosystem] = count
            (self._answering.discard if failed else self._answering.add)(ecosystem)
        if count == BREAKER_FAILURES:
            log.warning("the %s registry failed %d times in a row: its other packages are "
                        "counted as unknown without asking it again in this run", ecosystem, count)

    def fetch_each(self, wanted: Mapping[Key, Collection[str]],
                   known: Mapping[Key, Collection[str]] | None = None) -> dict[Key, PackageReleases | RegistryError]:
        """Fetch packages in parallel; a failed one is its RegistryError, with a warning logged
        (once for the registry when its breaker tripped)."""
        known = known or {}

        def one(key: Key) -> PackageReleases | RegistryError:
            try:
                return self.fetch(key[0], key[1], wanted[key], known.get(key, ()))
            except RegistrySkipped as exc:  # already warned about, once for the registry
                log.debug("%s package %s: %s", key[0], key[1], exc)
                return exc
            except RegistryError as exc:
                log.warning("%s package %s: registry look-up failed: %s", key[0], key[1], exc)
                return exc

        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return dict(zip(wanted, pool.map(one, wanted), strict=True))

    def fetch_many(self, wanted: Mapping[Key, Collection[str]],
                   known: Mapping[Key, Collection[str]] | None = None) -> dict[Key, PackageReleases | None]:
        """As fetch_each, with None for a package that failed."""
        return {key: None if isinstance(found, RegistryError) else found
                for key, found in self.fetch_each(wanted, known).items()}

    def base_url(self, ecosystem: str) -> str:
        """Where `ecosystem` is asked (credentials were taken out of it by _configure)."""
        return self.base_urls.get(ecosystem, "")

    def get(self, ecosystem: str, path: str, not_found_ok: bool = False) -> Any:
        """GET base_url + path as JSON; RegistryError on failure (PackageNotFound on 404)."""
        url = self.base_urls[ecosystem] + path
        self._throttle(self.base_urls[ecosystem])
        try:
            response = self._session().get(url, timeout=self.timeout, auth=self._auth.get(ecosystem),
                                           params=self._params.get(ecosystem))
        except requests.RequestException as exc:
            raise RegistryError(f"{type(exc).__name__} for {url}") from None
        finally:
            with self._lock:
                self.requests_made += 1
        if response.status_code in (404, 410):
            if not_found_ok:
                return None
            raise PackageNotFound(f"HTTP {response.status_code} for {url}")
        if response.status_code != 200:
            raise RegistryError(f"HTTP {response.status_code} for {url}")
        try:
            return response.json()
        except ValueError:
            raise RegistryError(f"unreadable JSON from {url}") from None

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:  # requests sessions are not thread-safe: one per worker thread
            session = requests.Session()
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
            # A read that timed out is not retried: the registry is stuck, and each retry
            # would cost the whole timeout again (the breaker then stops asking it at all).
            retry = Retry(total=self.retries, read=0, backoff_factor=0.5,
                          status_forcelist=(429, 502, 503, 504), allowed_methods=("GET",),
                          respect_retry_after_header=True, raise_on_status=False)
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            self._local.session = session
        return session

    def _throttle(self, base_url: str) -> None:
        interval = POLITE_INTERVAL.get(base_url)
        if not interval:
            return
        with self._lock:
            wait = self._last_request.get(base_url, 0.0) + interval - time.monotonic()
            self._last_request[base_url] = time.monotonic() + max(wait, 0.0)
        if wait > 0:
            time.sleep(wait)


# --------------------------------------------------------------------------- registries

def _pypi(client: RegistryClient, name: str, wanted: set[str]) -> PackageReleases:
    document = client.get("pypi", f"/pypi/{quote(name)}/json")
    package = PackageReleases("pypi", name)
    for version, files in (document.get("releases") or {}).items():
        times = [t for t in (parse_time(f.get("upload_time_iso_8601") or f.get("upload_time"))
                             for f in files) if t]
        # A release with no files, or only yanked files, cannot be installed by pip.
        yanked = not files or all(f.get("yanked") for f in files)
        package.releases[version] = Release(min(times) if times else None, yanked)
    return package


def _npm(client: RegistryClient, name: str, wanted: set[str]) -> PackageReleases:
    # Scoped names keep their @ and escape the slash: /@scope%2Fname.
    document = client.get("npm", "/" + quote(name, safe="@"))
    times = document.get("time") or {}
    package = PackageReleases("npm", name, latest=(document.get("dist-tags") or {}).get("latest"))
    for version, meta in (document.get("versions") or {}).items():
        package.releases[version] = Release(parse_time(times.get(version)),
                                            bool((meta or {}).get("deprecated")))
    return package


def _cargo(client: RegistryClient, name: str, wanted: set[str]) -> PackageReleases:
    package = PackageReleases("cargo", name)
    path: str | None = f"/api/v1/crates/{quote(name)}/versions"
    while path:
        document = client.get("cargo", path)
        for item in document.get("versions") or []:
            package.releases[item["num"]] = Release(parse_time(item.get("created_at")),
                                                    bool(item.get("yanked")))
        next_page = (document.get("meta") or {}).get("next_page")
        path = f"/api/v1/crates/{quote(name)}/versions{next_page}" if next_page else None
    return package


def go_escape(path: str) -> str:
    """The proxy protocol's case encoding: each capital letter becomes ! and its lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def _go(client: RegistryClient, module: str, wanted: set[str]) -> PackageReleases:
    base = "/" + go_escape(module)
    latest = client.get("go", f"{base}/@latest")
    package = PackageReleases("go", module, latest=latest.get("Version"), complete=False)
    package.releases[package.latest or ""] = Release(parse_time(latest.get("Time")))
    for version in wanted - {package.latest}:
        if pseudo_version_time(version) is not None:
            continue
        info = client.get("go", f"{base}/@v/{go_escape(version)}.info", not_found_ok=True)
        if info is None:
            raise PackageNotFound(f"version {version} not found")
        package.releases[version] = Release(parse_time(info.get("Time")))
    return package


def _rubygems(client: RegistryClient, name: str, wanted: set[str]) -> PackageReleases:
    package = PackageReleases("rubygems", name)
    # One entry per (version, platform); the first publication of any platform counts.
    # Yanked gems are simply absent from this list.
    for item in client.get("rubygems", f"/api/v1/versions/{quote(name)}.json") or []:
        released = parse_time(item.get("created_at"))
        previous = package.releases.get(item["number"])
        if previous is None or (released and previous.released_at and released < previous.released_at):
            package.releases[item["number"]] = Release(released)
    return package


def _packagist(client: RegistryClient, name: str, wanted: set[str]) -> PackageReleases:
    document = client.get("packagist", f"/p2/{name}.json")
    package = PackageReleases("packagist", name)
    for item in expand_minified((document.get("packages") or {}).get(name, [])):
        package.releases[str(item["version"])] = Release(parse_time(item.get("time")))
    return package


def expand_minified(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Composer 2's minified metadata: each entry lists only what changed since the one
    before it, and "__unset" removes a key (composer/metadata-minifier)."""
    expanded: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for item in items:
        current = {**current, **item}
        current = {k: v for k, v in current.items() if v != "__unset"}
        expanded.append(current)
    return expanded


FETCHERS: dict[str, Callable[[RegistryClient, str, set[str]], PackageReleases]] = {
    "pypi": _pypi, "npm": _npm, "cargo": _cargo, "go": _go, "rubygems": _rubygems,
    "packagist": _packagist,
}
