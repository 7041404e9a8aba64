"""PyPI manifests: requirements files, pyproject.toml (PEP 621, PEP 735, Poetry), Pipfile,
and the lock files that pin them (poetry.lock, uv.lock, pdm.lock, Pipfile.lock, pip-tools)."""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pip_requirements_parser as pip_parser
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from devmetrics.deps.manifests import DeclaredDependency, LockedVersions, ReadFile

log = logging.getLogger("devmetrics.deps")

ECOSYSTEM = "pypi"
MAX_INCLUDE_DEPTH = 10  # -r chains deeper than this are a loop or a mistake


def normalise(name: str) -> str:
    """PEP 503: case-insensitive, runs of -, _ and . are one dash (deps/registries.py's
    canonical_name: one rule)."""
    return str(canonicalize_name(name))


def _dep(name: str, spec: str | None, group: str, source: str = "registry") -> DeclaredDependency:
    return DeclaredDependency(ECOSYSTEM, normalise(name), spec or None, source=source, group=group)


# -------------------------------------------------------------------- requirements files

def requirements_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    """A requirements file with its `-r` includes (read through `read`, relative paths).
    Pins in `-c` constraints files are what pip installs: they count as locked versions."""
    constraints = LockedVersions(ECOSYSTEM)
    deps = list(_requirements(path, read, seen=set(), depth=0, constraints=constraints))
    return [replace(dep, locked=constraints.version_of(dep)) if dep.name in constraints.by_name else dep
            for dep in deps]


def _requirements(path: str, read: ReadFile, seen: set[str], depth: int,
                  constraints: LockedVersions) -> Iterator[DeclaredDependency]:
    if path in seen or depth > MAX_INCLUDE_DEPTH:
        return
    seen.add(path)
    try:
        text = read(path).decode("utf-8", "replace")
    except Exception as exc:  # the forge's error for a missing file, whatever its type
        if depth == 0:
            raise
        log.warning("cannot read included requirements file %s: %s", path, exc)
        return
    parsed = _parse_requirements_text(text)
    if parsed.invalid_lines:  # say so, or a garbled file would just look empty
        first = parsed.invalid_lines[0]
        log.warning("%s: %d lines are not requirements (line %s: %s)", path, len(parsed.invalid_lines),
                    first.line_number, " ".join(str(first.error_message).split())[:120])
    for requirement in parsed.requirements:
        dep = _from_pip_requirement(requirement)
        if dep is not None:
            yield dep
    for option in parsed.options:
        for include in option.options.get("constraints", []):
            _add_constraints(_relative(path, include), read, constraints)
        for include in option.options.get("requirements", []):
            yield from _requirements(_relative(path, include), read, seen, depth + 1, constraints)


def _add_constraints(path: str, read: ReadFile, constraints: LockedVersions) -> None:
    try:
        pins = requirements_lock(read(path))
    except Exception as exc:  # a missing constraints file loses its pins, not the manifest
        log.warning("cannot read constraints file %s: %s", path, exc)
        return
    for name, versions in pins.by_name.items():
        constraints.add(name, versions[0])


def _relative(path: str, include: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(path), include))


def _parse_requirements_text(text: str) -> pip_parser.RequirementsFile:
    # pip-requirements-parser reads files only (its from_string is broken in 32.0.1: it
    # forgets to import Path), so hand it a temporary file; includes are resolved by us.
    handle, name = tempfile.mkstemp(suffix=".txt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        return pip_parser.RequirementsFile.from_file(name, include_nested=False)
    finally:
        os.unlink(name)


def _from_pip_requirement(req: Any) -> DeclaredDependency | None:
    link = str(req.link) if req.link else None
    name = req.name or (link.rstrip("/").rsplit("/", 1)[-1] if link else None)
    if not name:
        return None
    if link is None:
        return _dep(name, str(req.specifier) if req.specifier else None, "main")
    return _dep(name, None, "main", _link_source(link, editable=req.is_editable))


def _link_source(link: str, editable: bool = False) -> str:
    if link.startswith(("git+", "hg+", "svn+", "bzr+")) or link.endswith(".git"):
        return "git"
    if re.match(r"^(https?|ftp)://", link) and not editable:
        return "url"
    return "path"


def requirements_lock(data: bytes) -> LockedVersions:
    """A compiled requirements file (pip-compile): its `==` pins are the locked versions."""
    parsed = _parse_requirements_text(data.decode("utf-8", "replace"))
    locked = LockedVersions(ECOSYSTEM)
    for req in parsed.requirements:
        pins = [s.version for s in (req.specifier or []) if s.operator in ("==", "===")]
        if req.name and pins and "*" not in pins[0]:
            locked.add(normalise(req.name), pins[0])
    return locked


# ---------------------------------------------------------------------------- pyproject

def pyproject_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    data = tomllib.loads(read(path).decode("utf-8"))
    project = data.get("project", {})
    deps = [_pep508(text, "main") for text in project.get("dependencies", [])]
    for extra, texts in project.get("optional-dependencies", {}).items():
        deps += [_pep508(text, extra) for text in texts]
    for group, items in data.get("dependency-groups", {}).items():
        # PEP 735 entries are strings or {include-group = "..."} (already listed elsewhere).
        deps += [_pep508(item, group) for item in items if isinstance(item, str)]
    deps += list(_poetry(data.get("tool", {}).get("poetry", {})))
    return [dep for dep in deps if dep is not None]


def _pep508(text: str, group: str) -> DeclaredDependency | None:
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url:
        return _dep(req.name, None, group, _link_source(req.url))
    return _dep(req.name, str(req.specifier), group)


def _poetry(poetry: dict[str, Any]) -> Iterator[DeclaredDependency]:
    tables = [("main", poetry.get("dependencies", {})), ("dev", poetry.get("dev-dependencies", {}))]
    tables += [(name, group.get("dependencies", {}))
               for name, group in poetry.get("group", {}).items()]
    for group, table in tables:
        for name, value in table.items():
            if name.lower() != "python":  # the interpreter constraint, not a package
                yield _poetry_dep(name, value, group)


def _poetry_dep(name: str, value: Any, group: str) -> DeclaredDependency:
    if isinstance(value, list):  # multiple-constraint form: one table per marker set
        value = value[0] if value else {}
    if isinstance(value, str):
        return _dep(name, poetry_to_pep440(value), group)
    for key, source in (("git", "git"), ("path", "path"), ("url", "url")):
        if key in value:
            return _dep(name, None, group, source)
    return _dep(name, poetry_to_pep440(value.get("version", "")), group)


def poetry_to_pep440(spec: str) -> str:
    """Poetry's `^1.2`, `~1.2`, bare `1.2.3` and `||` in PEP 440 (`||` kept for versions.py)."""
    return " || ".join(filter(None, (_poetry_all(part) for part in spec.split("||"))))


def _poetry_all(spec: str) -> str:
    parts = re.split(r"\s*,\s*|\s+(?=[<>=!~^])", spec.strip())
    return ",".join(filter(None, (_poetry_one(part.replace(" ", "")) for part in parts)))


def _poetry_one(part: str) -> str:
    if part in ("", "*"):
        return ""
    if part[0] == "^":
        release = _release(part[1:])
        nonzero = next((i for i, n in enumerate(release) if n), len(release) - 1)
        return f">={part[1:]},<{_bumped(release, nonzero)}"
    if part[0] == "~" and part[1:2] != "=":
        release = _release(part[1:])
        return f">={part[1:]},<{_bumped(release, 1 if len(release) > 1 else 0)}"
    return f"=={part}" if part[0].isdigit() else part


def _release(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text.split("-")[0])[:3]] or [0]


def _bumped(release: list[int], index: int) -> str:
    head = release[:index + 1]
    head[-1] += 1
    return ".".join(map(str, head))


def toml_lock(data: bytes) -> LockedVersions:
    """poetry.lock, uv.lock and pdm.lock: `[[package]]` tables with name and version."""
    locked = LockedVersions(ECOSYSTEM)
    for package in tomllib.loads(data.decode("utf-8")).get("package", []):
        if "name" in package and "version" in package:
            locked.add(normalise(package["name"]), str(package["version"]))
    return locked


# ------------------------------------------------------------------------------ Pipfile

def pipfile_manifest(path: str, read: ReadFile) -> list[DeclaredDependency]:
    data = tomllib.loads(read(path).decode("utf-8"))
    deps = []
    for table, group in (("packages", "main"), ("dev-packages", "dev")):
        deps += [_pipfile_dep(name, value, group) for name, value in data.get(table, {}).items()]
    return deps


def _pipfile_dep(name: str, value: Any, group: str) -> DeclaredDependency:
    if isinstance(value, str):
        return _dep(name, None if value.strip() == "*" else value, group)
    for key, source in (("git", "git"), ("path", "path"), ("file", "url")):
        if key in value:
            return _dep(name, None, group, source)
    version = value.get("version", "*")
    return _dep(name, None if version.strip() == "*" else version, group)


def pipfile_lock(data: bytes) -> LockedVersions:
    locked = LockedVersions(ECOSYSTEM)
    document = json.loads(data)
    for section in ("default", "develop"):
        for name, entry in document.get(section, {}).items():
            version = str(entry.get("version", ""))
            if version.startswith("=="):
                locked.add(normalise(name), version[2:])
    return locked
