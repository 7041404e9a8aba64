"""Fake package registries for tests, the benchmark and the demo, on the sandbox server.

Each registry answers the endpoints devmetrics/deps/registries.py reads, in the real
payload shapes, under its own prefix (`/registries/pypi`, `/registries/npm`, ...), so the
real client runs unchanged with `base_urls(sandbox.url)`. Data is deterministic:
- curated histories for the demo dataset's packages (sandbox/dataset.py MANIFESTS);
- any other name gets a history generated from a hash of its name, with the versions a
  test registers (e.g. those in the fixture lock files) merged in, one yanked version
  above the highest stable one (where the registry has yanking) and a newer pre-release;
- names registered as missing, and names starting with "missing-", answer 404;
- PyPI answers a name not in its PEP 503 form with a 301 to that form, as pypi.org does.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from devmetrics.deps import versions as v
from devmetrics.deps.manifests import DeclaredDependency
from devmetrics.sandbox.dataset import Dataset
from devmetrics.sandbox.server import App, Request, Response, Sandbox, serving

PREFIX = "/registries"
ECOSYSTEMS = ("pypi", "npm", "cargo", "go", "rubygems", "packagist")
EPOCH = datetime(2014, 1, 6, tzinfo=UTC)
HORIZON = datetime(2026, 10, 1, tzinfo=UTC)  # no generated release is newer than this


@dataclass(frozen=True)
class FakeVersion:
    version: str
    released_at: datetime
    yanked: bool = False


def _d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (ecosystem, name) -> [(version, released, yanked)]: the demo dataset's packages.
CURATED: dict[tuple[str, str], list[tuple[str, str, bool]]] = {
    ("pypi", "requests"): [("2.28.0", "2022-06-09", False), ("2.28.2", "2023-01-12", False),
                           ("2.31.0", "2023-05-22", False), ("2.32.0", "2024-05-20", True),
                           ("2.32.3", "2024-05-29", False), ("2.33.0rc1", "2024-09-01", False)],
    ("pypi", "click"): [("8.0.0", "2021-05-11", False), ("8.1.3", "2022-04-28", False),
                        ("8.1.7", "2023-08-17", False)],
    ("pypi", "flask"): [("2.2.0", "2022-08-01", False), ("2.2.5", "2023-05-02", False),
                        ("2.3.3", "2023-08-21", False), ("3.0.3", "2024-04-07", False)],
    ("pypi", "pyyaml"): [("5.4.1", "2021-01-20", False), ("6.0", "2021-10-13", False),
                         ("6.0.1", "2023-07-18", False)],
    ("pypi", "pydantic"): [("1.10.0", "2022-08-30", False), ("1.10.13", "2023-09-27", False),
                           ("2.0", "2023-06-30", False), ("2.7.1", "2024-04-23", False),
                           ("2.8.0b1", "2024-06-27", False)],
    ("pypi", "sqlalchemy"): [("1.4.46", "2023-01-04", False), ("1.4.52", "2024-03-04", False),
                             ("2.0.30", "2024-05-05", False)],
    ("npm", "react"): [("17.0.2", "2021-03-22", False), ("18.2.0", "2022-06-14", False),
                       ("18.3.1", "2024-04-26", False), ("19.0.0-rc.0", "2024-04-25", False)],
    ("npm", "lodash"): [("4.17.20", "2020-08-13", False), ("4.17.21", "2021-02-20", False)],
    ("npm", "express"): [("4.17.1", "2019-05-26", False), ("4.17.3", "2022-02-17", False),
                         ("4.19.2", "2024-03-25", False)],
    ("npm", "typescript"): [("4.9.5", "2023-01-30", False), ("5.4.5", "2024-04-11", False)],
    ("go", "github.com/spf13/cobra"): [("v1.6.0", "2022-10-11", False),
                                       ("v1.8.0", "2023-11-05", False)],
    ("go", "golang.org/x/sync"): [("v0.1.0", "2022-09-26", False), ("v0.7.0", "2024-03-04", False)],
}


class FakeCatalog:
    """Version histories by (ecosystem, name), deterministic for a given registration."""

    def __init__(self, known: Mapping[tuple[str, str], Iterable[str]] | None = None,
                 missing: Iterable[tuple[str, str]] = ()) -> None:
        self.known = {key: set(values) for key, values in (known or {}).items()}
        self.missing = set(missing)
        self._histories: dict[tuple[str, str], list[FakeVersion]] = {}

    def add(self, ecosystem: str, name: str, versions: Iterable[str]) -> None:
        self.known.setdefault((ecosystem, name), set()).update(versions)
        self._histories.pop((ecosystem, name), None)

    def add_in_use(self, deps: Iterable[DeclaredDependency]) -> FakeCatalog:
        """Publish every locked or pinned version of `deps` (e.g. a fixture's lock files)."""
        for dep in deps:
            in_use = dep.locked or v.exact_pin(dep.ecosystem, dep.spec)
            if in_use and dep.source == "registry":
                self.add(dep.ecosystem, dep.name, [in_use])
        return self

    def history(self, ecosystem: str, name: str) -> list[FakeVersion] | None:
        """Oldest first; None when the registry does not know the package."""
        key = (ecosystem, name)
        if key in self.missing or name.rsplit("/", 1)[-1].startswith("missing-"):
            return None
        if key not in self._histories:
            known = self.known.get(key, set())
            # A curated history serves only while it has every version a test registered.
            curated = key in CURATED and known <= {version for version, _, _ in CURATED[key]}
            self._histories[key] = _curated(key) if curated else _generated(ecosystem, name, known)
        return self._histories[key]


def _curated(key: tuple[str, str]) -> list[FakeVersion]:
    return [FakeVersion(version, _d(day), yanked) for version, day, yanked in CURATED[key]]


def _generated(ecosystem: str, name: str, known: set[str]) -> list[FakeVersion]:
    rng = random.Random(hashlib.sha256(f"{ecosystem}:{name}".encode()).hexdigest())
    numbers = {(major, minor, patch)
               for major in range(rng.randint(0, 3), rng.randint(4, 7))
               for minor in range(rng.randint(1, 4)) for patch in range(rng.randint(1, 3))}
    names = {_format(ecosystem, n) for n in numbers} | {k for k in known if v.is_valid(ecosystem, k)}
    top = v.highest(ecosystem, [n for n in names if v.is_stable(ecosystem, n)]) or "1.0.0"
    yanked = _format(ecosystem, _next(ecosystem, top, patch=True))
    pre = _format(ecosystem, _next(ecosystem, top, patch=False), pre=True)
    ordered = sorted(names | {yanked, pre}, key=v.sort_key(ecosystem))
    return _dated(ordered, rng, yanked)


def _dated(ordered: list[str], rng: random.Random, yanked: str) -> list[FakeVersion]:
    start = EPOCH + timedelta(days=rng.randint(0, 900))
    step = min(timedelta(days=rng.randint(20, 80)), (HORIZON - start) / max(len(ordered), 1))
    return [FakeVersion(version, start + step * i, version == yanked)
            for i, version in enumerate(ordered)]


def _next(ecosystem: str, version: str, patch: bool) -> tuple[int, int, int]:
    release = list(v.release_numbers(ecosystem, version)) + [0, 0, 0]
    major, minor, micro = release[:3]
    return (major, minor, micro + 1) if patch else (major + 1, 0, 0)


def _format(ecosystem: str, number: tuple[int, int, int], pre: bool = False) -> str:
    text = ".".join(map(str, number))
    if pre:
        text += {"pypi": "rc1", "rubygems": ".rc1", "packagist": "-RC1"}.get(ecosystem, "-rc.1")
    return "v" + text if ecosystem == "go" else text


# ------------------------------------------------------------------------ the registries

def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _not_found() -> Response:
    return Response(404, {"message": "Not Found"})


class RegistryApp(App):
    """One registry's endpoints over a shared catalog."""

    ecosystem = ""

    def __init__(self, catalog: FakeCatalog) -> None:
        super().__init__()
        self.name = self.ecosystem
        self.catalog = catalog
        self.register()

    endpoints: tuple[tuple[str, str], ...] = ()  # (path template, handler method name)

    def register(self) -> None:
        for template, handler in self.endpoints:
            self.route("GET", template)(getattr(self, handler))

    def history(self, name: str) -> list[FakeVersion] | None:
        return self.catalog.history(self.ecosystem, name)

    def stable_latest(self, history: list[FakeVersion]) -> FakeVersion:
        stable = [h for h in history if not h.yanked and v.is_stable(self.ecosystem, h.version)]
        return (stable or history)[-1]


class PyPI(RegistryApp):
    ecosystem = "pypi"

    endpoints = (("/pypi/{name}/json", "project"),)

    def project(self, request: Request, name: str) -> Any:
        # Warehouse files a project under its normalised name and redirects any other
        # spelling there (Foo_Bar -> foo-bar), so such a look-up costs two requests.
        if name != canonicalize_name(name):
            location = f"{request.base_url}/pypi/{canonicalize_name(name)}/json"
            return Response(301, b"", {"Location": location, "Content-Type": "text/plain"})
        history = self.history(name)
        if history is None:
            return _not_found()
        return {"info": {"name": name, "version": self.stable_latest(history).version},
                "releases": {h.version: [{"upload_time_iso_8601": _iso(h.released_at),
                                          "yanked": h.yanked}] for h in history}}


class Npm(RegistryApp):
    ecosystem = "npm"

    endpoints = (("/{name:path}", "packument"),)

    def packument(self, request: Request, name: str) -> Any:
        history = self.history(unquote(name))
        if history is None:
            return _not_found()
        times = {h.version: _iso(h.released_at) for h in history}
        versions = {h.version: {"version": h.version, **({"deprecated": "do not use"} if h.yanked else {})}
                    for h in history}
        return {"name": unquote(name), "dist-tags": {"latest": self.stable_latest(history).version},
                "versions": versions,
                "time": {"created": times[history[0].version], **times}}


class Crates(RegistryApp):
    """crates.io's versions endpoint. The real one answers every version at once unless
    asked to page (per_page); this fake pages crates of more than `page_size` versions
    anyway, the way crates.io does (seek cursor in meta.next_page), so the client's
    handling of further pages is exercised."""

    ecosystem = "cargo"
    page_size = 100

    endpoints = (("/api/v1/crates/{name}/versions", "versions"),)

    def versions(self, request: Request, name: str) -> Any:
        history = self.history(name)
        if history is None:
            return Response(404, {"errors": [{"detail": "Not Found"}]})
        if request.arg("page") is not None:  # as crates.io: offset paging is refused here
            return Response(400, {"errors": [{"detail": "?page= is not supported for this request"}]})
        newest_first = history[::-1]
        start = request.int_arg("seek", 0)
        chunk = newest_first[start:start + self.page_size]
        following = start + self.page_size
        next_page = f"?per_page={self.page_size}&seek={following}" if following < len(newest_first) else None
        return {"versions": [{"num": h.version, "created_at": _iso(h.released_at), "yanked": h.yanked}
                             for h in chunk],
                "meta": {"total": len(history), "next_page": next_page}}


class GoProxy(RegistryApp):
    ecosystem = "go"

    endpoints = (("/{module:path}/@latest", "latest"), ("/{module:path}/@v/list", "list"),
                 ("/{module:path}/@v/{version}.info", "info"))

    def latest(self, request: Request, module: str) -> Any:
        history = self.history(go_unescape(module))
        if history is None:
            return Response(404, b"not found: module unknown", {"Content-Type": "text/plain"})
        found = self.stable_latest(history)
        return {"Version": found.version, "Time": _iso(found.released_at)}

    def list(self, request: Request, module: str) -> Any:
        history = self.history(go_unescape(module))
        if history is None:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        return Response(200, "".join(f"{h.version}\n" for h in history).encode(),
                        {"Content-Type": "text/plain; charset=utf-8"})

    def info(self, request: Request, module: str, version: str) -> Any:
        found = [h for h in self.history(go_unescape(module)) or [] if h.version == go_unescape(version)]
        if not found:
            return Response(404, b"not found: unknown revision", {"Content-Type": "text/plain"})
        return {"Version": found[0].version, "Time": _iso(found[0].released_at)}


def go_unescape(path: str) -> str:
    out, upper = [], False
    for char in path:
        if char == "!":
            upper = True
            continue
        out.append(char.upper() if upper else char)
        upper = False
    return "".join(out)


class RubyGems(RegistryApp):
    ecosystem = "rubygems"

    endpoints = (("/api/v1/versions/{name}.json", "versions"),)

    def versions(self, request: Request, name: str) -> Any:
        history = self.history(name)
        if history is None:
            return Response(404, b"This rubygem could not be found.", {"Content-Type": "text/plain"})
        # Yanked gems vanish from this list on the real registry.
        return [{"number": h.version, "created_at": _iso(h.released_at), "platform": "ruby",
                 "prerelease": not v.is_stable("rubygems", h.version)}
                for h in history[::-1] if not h.yanked]


class Packagist(RegistryApp):
    ecosystem = "packagist"

    endpoints = (("/p2/{vendor}/{package}.json", "metadata"),)

    def metadata(self, request: Request, vendor: str, package: str) -> Any:
        name = f"{vendor}/{package}"
        history = self.history(name)
        if history is None:
            return _not_found()
        full = [{"name": name, "version": h.version, "version_normalized": h.version + ".0",
                 "time": h.released_at.isoformat(), "type": "library"}
                for h in history[::-1] if not h.yanked]
        return {"minified": "composer/2.0", "packages": {name: minify(full)}}


def minify(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """composer/metadata-minifier: each entry keeps only what changed since the previous."""
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] = {}
    for item in items:
        delta = {k: val for k, val in item.items() if previous.get(k) != val}
        delta.update({k: "__unset" for k in previous if k not in item})
        out.append(delta)
        previous = item
    return out


APPS: tuple[type[RegistryApp], ...] = (PyPI, Npm, Crates, GoProxy, RubyGems, Packagist)


def registry_apps(catalog: FakeCatalog | Dataset | None = None) -> dict[str, App]:
    """ecosystem -> app, to mount at f"{PREFIX}/{ecosystem}" (sandbox/__init__.py does).

    The demo dataset's packages all have curated histories, so a Dataset needs no more.
    """
    shared = catalog if isinstance(catalog, FakeCatalog) else FakeCatalog()
    return {app.ecosystem: app(shared) for app in APPS}


def mounted(catalog: FakeCatalog | None = None) -> list[tuple[str, App]]:
    """(prefix, app) pairs for a Sandbox that serves only the registries."""
    return [(f"{PREFIX}/{ecosystem}", app) for ecosystem, app in registry_apps(catalog).items()]


def base_urls(sandbox_url: str) -> dict[str, str]:
    """Config `registries` pointing every ecosystem at the sandbox."""
    return {ecosystem: f"{sandbox_url}{PREFIX}/{ecosystem}" for ecosystem in ECOSYSTEMS}


@contextmanager
def serving_registries(catalog: FakeCatalog | None = None) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    """A started sandbox serving only the registries, and the base URLs that reach it."""
    with serving(mounted(catalog)) as sandbox:
        yield sandbox, base_urls(sandbox.url)
