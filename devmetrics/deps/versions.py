"""Version ordering, stability and range semantics per ecosystem (metrics.md §6).

Three families cover the six registries:
- PEP 440 (PyPI) through `packaging`, the reference implementation pip itself uses;
- SemVer (npm, Cargo, Go) through `nodesemver`, a line-by-line port of npm's own
  node-semver, so `^`, `~`, x-ranges, `||` and hyphen ranges mean exactly what npm means
  (semantic_version's NpmSpec covers less: no loose parsing of `v1.2` or `>= 1.2 < 3`);
- RubyGems and Composer: their operators (`~>`, `^`, `~`, `.*`) translated into plain
  comparators over `packaging` versions, which order `1.0.0.rc1` and `v1.2.3-beta1` right.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

import nodesemver
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

SEMVER = frozenset({"npm", "cargo", "go"})
CALENDAR_MAJOR = 1000  # a "major" this large is a year: calendar versioning, not counted

Comparator = tuple[str, Version]  # (operator, version), operator in < <= > >= == !=


# ----------------------------------------------------------------------------- versions

def _semver(text: str) -> nodesemver.SemVer | None:
    try:
        return nodesemver.make_semver(text, loose=True)
    except ValueError:
        return None


def _pep440(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def is_valid(ecosystem: str, version: str) -> bool:
    parse = _semver if ecosystem in SEMVER else _pep440
    return parse(version) is not None


def sort_key(ecosystem: str) -> Callable[[str], Any]:
    """A key that orders valid versions of `ecosystem` oldest to newest."""
    if ecosystem in SEMVER:
        return functools.cmp_to_key(lambda a, b: nodesemver.compare(a, b, loose=True))
    return Version


def is_stable(ecosystem: str, version: str) -> bool:
    """Not a pre-release (Go pseudo-versions count as pre-releases, as `go get` treats them)."""
    if ecosystem in SEMVER:
        parsed = _semver(version)
        return parsed is not None and not parsed.prerelease
    parsed_pep = _pep440(version)
    return parsed_pep is not None and not parsed_pep.is_prerelease


def highest(ecosystem: str, versions: Iterable[str]) -> str | None:
    valid = [v for v in versions if is_valid(ecosystem, v)]
    return max(valid, key=sort_key(ecosystem)) if valid else None


def same_version(ecosystem: str, a: str, b: str) -> bool:
    """Equal as versions though spelt differently (2.0 and 2.0.0, v1.2.3 and 1.2.3)."""
    if not (is_valid(ecosystem, a) and is_valid(ecosystem, b)):
        return False
    key = sort_key(ecosystem)
    return bool(key(a) == key(b))


def is_older(ecosystem: str, a: str, b: str) -> bool:
    key = sort_key(ecosystem)
    return bool(key(a) < key(b))


def release_numbers(ecosystem: str, version: str) -> tuple[int, ...]:
    """(major, minor, patch, ...) of a valid version; () for an invalid one."""
    if ecosystem in SEMVER:
        parsed = _semver(version)
        return (parsed.major, parsed.minor, parsed.patch) if parsed is not None else ()
    parsed_pep = _pep440(version)
    return parsed_pep.release if parsed_pep is not None else ()


def major(ecosystem: str, version: str) -> int | None:
    """The major number, or None for calendar versions and schemes without one."""
    numbers = release_numbers(ecosystem, version)
    return numbers[0] if numbers and numbers[0] < CALENDAR_MAJOR else None


# ------------------------------------------------------------------------------- ranges

def exact_pin(ecosystem: str, spec: str | None) -> str | None:
    """The version `spec` pins exactly, if it is an exact pin."""
    spec = (spec or "").strip()
    if ecosystem == "go":
        return spec or None  # go.mod requires are exact minimum versions: MVS picks them
    if ecosystem == "pypi":
        found = re.fullmatch(r"===?\s*([^,;*\s]+)", spec)
    elif ecosystem == "cargo":
        found = re.fullmatch(r"=\s*(\S+)", spec)
    else:  # npm, RubyGems and Composer read a bare version as exact
        found = re.fullmatch(r"=?=?\s*(v?\d[^\s,|<>=~^*]*)", spec)
        if found and ecosystem == "npm":  # "1.2" is a range (1.2.x); the registry has no "v"
            parsed = _semver(found.group(1)) if found.group(1).count(".") >= 2 else None
            return parsed.version if parsed is not None else None
    return found.group(1) if found else None


def is_unconstrained(spec: str | None) -> bool:
    return (spec or "").strip() in ("", "*", "latest", "x", ">=0", ">= 0", ">=0.0.0")


def allows(ecosystem: str, spec: str) -> Callable[[str], bool]:
    """A predicate: does `spec` allow this version? Raises ValueError for an unreadable spec."""
    if ecosystem == "pypi":
        return _pep440_allows(spec)
    if ecosystem in ("npm", "cargo"):
        return _semver_allows(spec if ecosystem == "npm" else cargo_to_npm(spec))
    if ecosystem == "rubygems":
        return _comparators_allow([rubygems_comparators(spec)])
    if ecosystem == "packagist":
        return _comparators_allow(composer_alternatives(spec))
    raise ValueError(f"no range semantics for {ecosystem}")


def max_allowed(ecosystem: str, spec: str, versions: Iterable[str]) -> str | None:
    """The highest of `versions` that `spec` allows (callers pass stable versions only)."""
    allowed = allows(ecosystem, spec)
    return highest(ecosystem, [v for v in versions if is_valid(ecosystem, v) and allowed(v)])


def _pep440_allows(spec: str) -> Callable[[str], bool]:
    # Poetry's "||" alternatives survive translation (formats/python.py) as separate sets.
    try:
        sets = [SpecifierSet(part.strip()) for part in spec.split("||")]
    except InvalidSpecifier as exc:
        raise ValueError(str(exc)) from None
    return lambda v: any(s.contains(v, prereleases=True) for s in sets)


def _semver_allows(spec: str) -> Callable[[str], bool]:
    try:
        nodesemver.make_range(spec, loose=True)
    except ValueError as exc:
        raise ValueError(f"invalid range {spec!r}: {exc}") from None
    return lambda v: bool(nodesemver.satisfies(v, spec, loose=True))


def cargo_to_npm(spec: str) -> str:
    """Cargo requirements in npm syntax: a bare version is a caret, commas are AND."""
    parts = []
    for part in spec.split(","):
        part = part.strip()
        if part and (part[0].isdigit() or part[0] == "v"):
            part = "^" + part
        parts.append(part.replace("= ", "=") if part.startswith("=") else part)
    return " ".join(p for p in parts if p)


def _comparators_allow(alternatives: list[list[Comparator]]) -> Callable[[str], bool]:
    def check(version: str) -> bool:
        parsed = _pep440(version)
        return parsed is not None and any(
            all(_compare(parsed, op, bound) for op, bound in group) for group in alternatives)

    return check


def _compare(version: Version, op: str, bound: Version) -> bool:
    return {"<": version < bound, "<=": version <= bound, ">": version > bound,
            ">=": version >= bound, "==": version == bound, "!=": version != bound}[op]


def _bump(release: tuple[int, ...], index: int) -> Version:
    """The first version past the prefix release[:index+1]: bump(1.2.3, 1) -> 1.3."""
    head = list(release[:index + 1]) or [0]
    head[-1] += 1
    return Version(".".join(map(str, head)))


def _version(text: str) -> Version:
    parsed = _pep440(text.strip().lstrip("vV"))
    if parsed is None:
        raise ValueError(f"invalid version {text!r}")
    return parsed


def _pessimistic(text: str) -> list[Comparator]:
    """`~> 1.2.3` is >= 1.2.3, < 1.3; `~> 1.2` is >= 1.2, < 2 (RubyGems, Composer's ~)."""
    low = _version(text)
    index = max(len(low.release) - 2, 0)
    return [(">=", low), ("<", _bump(low.release, index))]


def rubygems_comparators(spec: str) -> list[Comparator]:
    """A Gem::Requirement ("~> 8.1.0", ">= 1, < 2", "!= 7.0.0") as comparators (AND)."""
    comparators: list[Comparator] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        op, text = re.fullmatch(r"(~>|>=|<=|!=|>|<|=)?\s*(.+)", part).groups()  # type: ignore[union-attr]
        if op == "~>":
            comparators += _pessimistic(text)
        else:
            comparators.append(("==" if op in (None, "=") else op, _version(text)))
    return comparators


def composer_alternatives(spec: str) -> list[list[Comparator]]:
    """A Composer constraint: `||` (or `|`) alternatives of space/comma-separated ANDs."""
    spec = re.sub(r"@\w+", "", spec)  # stability flags (@stable, @dev) do not bound versions
    groups = []
    for alternative in re.split(r"\s*\|\|?\s*", spec.strip()):
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alternative)
        if hyphen:
            groups.append([(">=", _version(hyphen[1])), ("<=", _version(hyphen[2]))])
            continue
        parts = re.split(r"\s*,\s*|\s+", re.sub(r"([<>=!~^]+)\s+", r"\1", alternative))
        groups.append([c for part in parts if part for c in _composer_part(part)])
    return groups


def _composer_part(part: str) -> list[Comparator]:
    if part in ("*", "x"):
        return []
    if part.startswith("^"):
        low = _version(part[1:])
        # ^1.2.3 -> <2; ^0.3 -> <0.4; ^0.0.3 -> <0.0.4: the first non-zero part is the major.
        nonzero = next((i for i, n in enumerate(low.release) if n), len(low.release) - 1)
        return [(">=", low), ("<", _bump(low.release, nonzero))]
    if part.startswith("~"):
        return _pessimistic(part[1:])
    if part.endswith((".*", ".x")):
        low = _version(part[:-2])
        return [(">=", low), ("<", _bump(low.release, len(low.release) - 1))]
    op, text = re.fullmatch(r"(>=|<=|!=|<>|>|<|==?)?(.+)", part).groups()  # type: ignore[union-attr]
    op = {"<>": "!=", "=": "==", None: "=="}.get(op, op)
    return [(op, _version(text))]
