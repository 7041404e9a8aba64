"""Go modules: go.mod. Its require lines are exact minimum versions (MVS builds with them),
so go.sum adds nothing for direct dependencies and is not read. A small own parser: no
maintained Python library reads go.mod."""

from __future__ import annotations

import re
from collections.abc import Iterator

from devmetrics.deps.manifests import DeclaredDependency, ReadFile

ECOSYSTEM = "go"
REQUIRE = re.compile(r"^(\S+)\s+(\S+)(.*)$")
REPLACE = re.compile(r"^(\S+)(?:\s+\S+)?\s*=>\s*(\S+)(?:\s+(\S+))?")


def go_mod_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    lines = list(_directive_lines(read(path).decode("utf-8")))
    replaced = _replacements(lines)
    deps = []
    for verb, rest in lines:
        found = REQUIRE.match(rest) if verb == "require" else None
        if found:
            module, version, tail = found.groups()
            deps.append(_declared(module, version, "// indirect" not in tail, replaced))
    return deps


def _declared(module: str, version: str, direct: bool,
              replaced: dict[str, tuple[str, str | None]]) -> DeclaredDependency:
    if module in replaced:
        new, new_version = replaced[module]
        if new.startswith((".", "/")):  # replaced by a directory in the repo
            return DeclaredDependency(ECOSYSTEM, module, version, direct=direct, source="path")
        # Replaced by another module: that one is what builds, so that one is evaluated.
        module, version = new, new_version or version
    return DeclaredDependency(ECOSYSTEM, module, version, direct=direct)


def _directive_lines(text: str) -> Iterator[tuple[str, str]]:
    """(verb, rest) for every directive, single-line or inside a `verb ( ... )` block."""
    block: str | None = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip() if "// indirect" not in raw else raw.strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                yield block, line
            continue
        verb, _, rest = line.partition(" ")
        if rest.strip() == "(":
            block = verb
        else:
            yield verb, rest.strip()
    if block is not None:
        raise ValueError(f"unterminated `{block} (` block")


def _replacements(lines: list[tuple[str, str]]) -> dict[str, tuple[str, str | None]]:
    """module -> (replacement module or directory, its version) from `replace` directives."""
    found: dict[str, tuple[str, str | None]] = {}
    for verb, rest in lines:
        match = REPLACE.match(rest) if verb == "replace" else None
        if match:
            found[match[1]] = (match[2], match[3])
    return found
