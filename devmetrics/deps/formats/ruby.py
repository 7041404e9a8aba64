"""RubyGems manifests: Gemfile and Gemfile.lock. Small own parsers: no maintained Python
library reads either; the Gemfile is Ruby, so only its plain `gem` lines are read."""

from __future__ import annotations

import re
from collections.abc import Iterator

from devmetrics.deps.manifests import DeclaredDependency, LockedVersions, ReadFile

ECOSYSTEM = "rubygems"
GEM_LINE = re.compile(r"""^\s*gem\s+["']([^"']+)["']\s*(.*)$""")
QUOTED = re.compile(r"""["']([^"']+)["']""")
SPEC = re.compile(r"^    (\S+) \(([^)]+)\)$")  # 4 spaces: a locked gem; 6: its own needs


def gemfile_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    """`gem "name", "~> 1.2", ">= 1.2.3", git: ...` lines; groups are all counted."""
    deps = []
    for line in read(path).decode("utf-8").splitlines():
        found = GEM_LINE.match(line.split("#", 1)[0])
        if found:
            deps.append(_gem(found[1], found[2]))
    return deps


def _gem(name: str, rest: str) -> DeclaredDependency:
    constraints = []
    for item in filter(None, (i.strip() for i in rest.split(","))):
        quoted = QUOTED.fullmatch(item)
        if quoted is None:  # the first `key: value` option ends the version requirements
            break
        constraints.append(quoted[1])
    source = "git" if re.search(r"\b(git|github|gitlab|bitbucket):", rest) else (
        "path" if re.search(r"\bpath:", rest) else "registry")
    return DeclaredDependency(ECOSYSTEM, name, ", ".join(constraints) or None, source=source)


def gemfile_lock(data: bytes) -> LockedVersions:
    """Versions from the GEM section (GIT and PATH gems have no registry release)."""
    locked = LockedVersions(ECOSYSTEM)
    for section, line in _sections(data.decode("utf-8")):
        found = SPEC.match(line) if section == "GEM" else None
        if found:
            locked.add(found[1], _strip_platform(found[2]))
    return locked


def _strip_platform(version: str) -> str:
    # "1.16.0-x86_64-linux" is version 1.16.0 built for a platform.
    return re.split(r"-(?=[a-z])", version, maxsplit=1)[0]


def _sections(text: str) -> Iterator[tuple[str, str]]:
    section = ""
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.strip()
        elif line.strip():
            yield section, line

