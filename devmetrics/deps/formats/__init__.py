"""The manifest formats devmetrics reads, declared as data: names, lock files, parsers."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from devmetrics.deps.formats import cargo, golang, javascript, php, python, ruby
from devmetrics.deps.manifests import DeclaredDependency, LockedVersions, ReadFile

ManifestParser = Callable[[str, ReadFile], list[DeclaredDependency]]
LockParser = Callable[[bytes], LockedVersions]


@dataclass(frozen=True)
class Format:
    names: tuple[str, ...]  # basename globs of the manifest
    parse_manifest: ManifestParser
    locks: Mapping[str, LockParser] = field(default_factory=dict)  # lock basename -> parser
    lock_in_parents: bool = False  # Cargo workspaces keep one Cargo.lock at the root
    lock_of: Callable[[str], str | None] | None = None  # a lock named after the manifest
    superseded_by: Callable[[str], str | None] | None = None  # a file that replaces this one
    # pip-tools layouts name files freely inside requirements/: base.txt, dev.in.
    folder: str | None = None

    def matches(self, basename: str, path: str) -> bool:
        if any(fnmatch.fnmatch(basename, pattern) for pattern in self.names):
            return True
        in_folder = posixpath.basename(posixpath.dirname(path)) == self.folder
        return in_folder and posixpath.splitext(basename)[1] == posixpath.splitext(self.names[0])[1]

    def superseded(self, path: str, present: set[str]) -> bool:
        other = self.superseded_by(path) if self.superseded_by else None
        return other is not None and other in present

    def find_lock(self, path: str, present: set[str]) -> str | None:
        if self.lock_of is not None:
            candidate = self.lock_of(path)
            return candidate if candidate in present else None
        directory = posixpath.dirname(path)
        while True:
            for name in self.locks:
                candidate = posixpath.join(directory, name)
                if candidate in present:
                    return candidate
            if not self.lock_in_parents or not directory:
                return None
            directory = posixpath.dirname(directory)

    def parse_lock(self, lock_path: str, data: bytes) -> LockedVersions:
        if self.lock_of is not None:
            return python.requirements_lock(data)
        return self.locks[posixpath.basename(lock_path)](data)


def _compiled_txt(path: str) -> str | None:
    # pip-tools: requirements/X.in is the manifest, requirements/X.txt its compiled lock.
    return path[:-3] + ".txt" if path.endswith(".in") else None


def _source_in(path: str) -> str | None:
    return path[:-4] + ".in" if path.endswith(".txt") else None


FORMATS: dict[str, Format] = {
    "requirements.in": Format(("requirements*.in", "*requirements.in"),
                              python.requirements_manifest, lock_of=_compiled_txt,
                              folder="requirements"),
    "requirements.txt": Format(("requirements*.txt", "*requirements.txt", "*-requirements.txt"),
                               python.requirements_manifest, superseded_by=_source_in,
                               folder="requirements"),
    "pyproject.toml": Format(("pyproject.toml",), python.pyproject_manifest,
                             {"poetry.lock": python.toml_lock, "uv.lock": python.toml_lock,
                              "pdm.lock": python.toml_lock}),
    "Pipfile": Format(("Pipfile",), python.pipfile_manifest, {"Pipfile.lock": python.pipfile_lock}),
    "package.json": Format(("package.json",), javascript.package_json_manifest,
                           {"package-lock.json": javascript.package_lock,
                            "npm-shrinkwrap.json": javascript.package_lock,
                            "pnpm-lock.yaml": javascript.pnpm_lock,
                            "yarn.lock": javascript.yarn_lock}),
    "Cargo.toml": Format(("Cargo.toml",), cargo.cargo_manifest, {"Cargo.lock": cargo.cargo_lock},
                         lock_in_parents=True),
    "go.mod": Format(("go.mod",), golang.go_mod_manifest),
    "Gemfile": Format(("Gemfile", "gems.rb"), ruby.gemfile_manifest,
                      {"Gemfile.lock": ruby.gemfile_lock, "gems.locked": ruby.gemfile_lock}),
    "composer.json": Format(("composer.json",), php.composer_manifest,
                            {"composer.lock": php.composer_lock}),
}

