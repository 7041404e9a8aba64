"""metrics.md §6 rules with worked examples: ranges per ecosystem, current, latest,
libyears and majors behind, computed by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devmetrics.deps import versions as v
from devmetrics.deps.manifests import DeclaredDependency
from devmetrics.deps.registries import PackageReleases, Release, pseudo_version_time
from devmetrics.deps.resolve import evaluate, latest_version


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# One history, written in each ecosystem's spelling: 2.1.0 is yanked (npm: deprecated),
# 3.0.0 exists only as a pre-release. So latest = 2.0.0, released 2023-01-01.
HISTORY = [("1.0.0", "2020-01-01"), ("1.2.0", "2020-07-01"), ("1.2.5", "2021-01-01"),
           ("1.4.0", "2021-07-01"), ("1.4.2", "2022-01-01"), ("1.9.0", "2022-07-01"),
           ("2.0.0", "2023-01-01"), ("2.1.0", "2023-07-01")]
PRE = {"pypi": "3.0.0rc1", "npm": "3.0.0-rc.1", "cargo": "3.0.0-rc.1", "rubygems": "3.0.0.rc1",
       "packagist": "3.0.0-RC1"}


def package(ecosystem: str, latest_tag: str | None = None) -> PackageReleases:
    releases = {version: Release(day(when), yanked=version == "2.1.0") for version, when in HISTORY}
    releases[PRE[ecosystem]] = Release(day("2024-01-01"))
    return PackageReleases(ecosystem, "demo", releases, latest=latest_tag)


def dep(ecosystem: str, spec: str | None, locked: str | None = None, source: str = "registry") -> DeclaredDependency:
    return DeclaredDependency(ecosystem, "demo", spec, locked, source=source)


YEAR = 365.25


@pytest.mark.parametrize(("ecosystem", "spec", "current"), [
    ("pypi", "~=1.2", "1.9.0"),  # >=1.2, ==1.*
    ("pypi", ">=1.0", "2.0.0"),  # 2.1.0 yanked, 3.0.0rc1 a pre-release: neither allowed
    ("pypi", "==1.4.*", "1.4.2"),
    ("pypi", ">=1.2,<2 || >=3", "1.9.0"),  # Poetry "^1.2 || ^3" after translation
    ("npm", "^1.2", "1.9.0"),
    ("npm", "~1.2", "1.2.5"),
    ("npm", "1.x || >=2.5.0", "1.9.0"),
    ("npm", "1.2 - 1.4", "1.4.2"),  # hyphen range: <1.5.0
    ("npm", ">= 1.2.0 < 1.4", "1.2.5"),  # spaces inside comparators, as yarn.lock keys have
    ("cargo", "1.2", "1.9.0"),  # a bare requirement is a caret
    ("cargo", ">=1.2, <1.4", "1.2.5"),
    ("cargo", "~1.4", "1.4.2"),
    ("rubygems", "~> 1.2", "1.9.0"),  # >= 1.2, < 2
    ("rubygems", "~> 1.2.0", "1.2.5"),  # >= 1.2.0, < 1.3
    ("rubygems", ">= 1.0, < 1.4, != 1.2.5", "1.2.0"),
    ("packagist", "^1.2", "1.9.0"),
    ("packagist", "~1.2", "1.9.0"),  # Composer's ~1.2 is >=1.2 <2.0 (unlike npm's)
    ("packagist", "~1.2.0", "1.2.5"),
    ("packagist", "1.4.*", "1.4.2"),
    ("packagist", "^1.0 || ^2.0", "2.0.0"),
    ("packagist", ">=1.0 <1.4", "1.2.5"),
])
def test_range_max(ecosystem: str, spec: str, current: str) -> None:
    found = evaluate(dep(ecosystem, spec), package(ecosystem))
    assert (found.current, found.resolution, found.latest) == (current, "range-max", "2.0.0")


def test_tilde_equals_worked_example() -> None:
    found = evaluate(dep("pypi", "~=1.2"), package("pypi"))
    # current 1.9.0 (2022-07-01), latest 2.0.0 (2023-01-01): 184 days apart.
    assert found.libyears == pytest.approx(184 / YEAR)  # 0.5038
    assert found.majors_behind == 1 and found.outdated
    assert found.status == "ok"


def test_lock_beats_pin_and_range() -> None:
    found = evaluate(dep("pypi", "==1.4.2", locked="1.0.0"), package("pypi"))
    # 1.0.0 (2020-01-01) -> 2.0.0 (2023-01-01): 1096 days (2020 is a leap year).
    assert (found.current, found.resolution) == ("1.0.0", "lock")
    assert found.libyears == pytest.approx(1096 / YEAR)  # 3.0007


def test_exact_pin() -> None:
    found = evaluate(dep("pypi", "==1.2.0"), package("pypi"))
    assert (found.current, found.resolution) == ("1.2.0", "pin")
    assert found.libyears == pytest.approx(914 / YEAR)  # 2020-07-01 -> 2023-01-01


def test_unconstrained_is_latest() -> None:
    found = evaluate(dep("pypi", None), package("pypi"))
    assert (found.current, found.resolution, found.libyears, found.majors_behind) == (
        "2.0.0", "unconstrained", 0.0, 0)
    assert not found.outdated


def test_latest_skips_prereleases_and_yanked() -> None:
    assert latest_version(package("pypi")) == "2.0.0"
    assert latest_version(package("cargo")) == "2.0.0"


def test_npm_latest_is_the_dist_tag() -> None:
    # The maintainers point `latest` at 1.9.0 (say, 2.x is a beta line): npm installs it.
    found = evaluate(dep("npm", "^1.2"), package("npm", latest_tag="1.9.0"))
    assert (found.current, found.latest, found.libyears, found.outdated) == ("1.9.0", "1.9.0", 0.0, False)


def test_libyears_never_negative() -> None:
    # A locked pre-release newer than latest: released 2024-01-01, latest 2023-01-01.
    found = evaluate(dep("pypi", None, locked="3.0.0rc1"), package("pypi"))
    assert found.libyears == 0.0 and found.majors_behind == 0


def test_calendar_versions_have_no_majors_behind() -> None:
    releases = {"2024.2.2": Release(day("2024-02-02")), "2026.6.17": Release(day("2026-06-17"))}
    found = evaluate(dep("pypi", "==2024.2.2"), PackageReleases("pypi", "certifi", releases))
    assert found.majors_behind is None
    assert found.libyears == pytest.approx(866 / YEAR)  # 2024-02-02 -> 2026-06-17
    assert found.outdated


def test_go_pin_with_a_pseudo_version_dates_itself() -> None:
    pseudo = "v0.0.0-20191202100458-e7afc7fbc510"
    go = PackageReleases("go", "github.com/google/shlex", {"v1.0.0": Release(day("2020-12-02"))},
                         latest="v1.0.0", complete=False)
    found = evaluate(DeclaredDependency("go", go.name, pseudo), go)
    assert (found.current, found.resolution, found.majors_behind) == (pseudo, "pin", 1)
    assert found.current_released_at == datetime(2019, 12, 2, 10, 4, 58, tzinfo=UTC)
    assert pseudo_version_time("v1.2.3") is None


def test_unsupported_unknown_and_unmatched() -> None:
    assert evaluate(dep("npm", "github:a/b", source="git"), package("npm")).status == "unsupported"
    assert evaluate(dep("npm", "^1.0"), None).status == "unknown"
    assert evaluate(dep("npm", "^7.0"), package("npm")).status == "unknown"  # nothing matches


def test_version_not_published_is_unknown() -> None:
    found = evaluate(dep("pypi", None, locked="1.3.0"), package("pypi"))
    assert found.status == "unknown" and found.libyears is None


@pytest.mark.parametrize(("ecosystem", "spec", "pin"), [
    ("pypi", "==1.2.3", "1.2.3"), ("pypi", "==1.4.*", None), ("pypi", ">=1.2", None),
    ("npm", "4.17.20", "4.17.20"), ("npm", "=v1.2.3", "1.2.3"), ("npm", "1.2", None),
    ("npm", "^1.2.3", None), ("cargo", "1.2.3", None), ("cargo", "=1.2.3", "1.2.3"),
    ("rubygems", "1.2.3", "1.2.3"), ("rubygems", "~> 1.2", None),
    ("packagist", "v5.4.47", "v5.4.47"), ("packagist", "1.0.*", None), ("go", "v1.6.0", "v1.6.0"),
])
def test_exact_pins(ecosystem: str, spec: str, pin: str | None) -> None:
    assert v.exact_pin(ecosystem, spec) == pin


@pytest.mark.parametrize(("ecosystem", "version", "major"), [
    ("pypi", "2.31.0", 2), ("pypi", "2026.6.17", None), ("npm", "18.3.1", 18),
    ("go", "v2.3.1+incompatible", 2), ("rubygems", "8.1.3", 8), ("packagist", "v5.4.47", 5),
    ("pypi", "not a version", None),
])
def test_major(ecosystem: str, version: str, major: int | None) -> None:
    assert v.major(ecosystem, version) == major


def test_a_pin_matches_the_registry_spelling() -> None:
    # Pinned ==1.2 while PyPI lists 1.2.0: the same version, spelt differently.
    found = evaluate(dep("pypi", "==1.2"), package("pypi"))
    assert (found.current, found.status) == ("1.2.0", "ok")
    assert found.libyears == pytest.approx(914 / YEAR)
