"""Every manifest and lock format read from the real files in shared/fixtures/manifests."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devmetrics.deps.freshness import evaluate_repo, registries_for
from devmetrics.deps.manifests import DeclaredDependency, ManifestSet, discover, read_all, read_dependencies
from devmetrics.deps.registries import pseudo_version_time
from devmetrics.sandbox.registries import FakeCatalog, serving_registries

FIXTURES = Path(__file__).parents[2] / "shared" / "fixtures" / "manifests"

# A repository tree laid out as the real projects have it, each path served by a fixture.
TREE = {
    "python/rich/pyproject.toml": "pypi/rich-pyproject.toml",
    "python/rich/poetry.lock": "pypi/rich-poetry.lock",
    "python/click/pyproject.toml": "pypi/click-pyproject.toml",
    "python/click/uv.lock": "pypi/click-uv.lock",
    "python/pipenv/Pipfile": "pypi/pipenv-Pipfile",
    "python/pipenv/Pipfile.lock": "pypi/pipenv-Pipfile.lock",
    "python/warehouse/requirements/main.in": "pypi/warehouse-requirements-main.in",
    "python/warehouse/requirements/tests.in": "pypi/warehouse-requirements-tests.in",
    "python/warehouse/requirements/tests.txt": "pypi/warehouse-requirements-tests.txt",
    "web/jquery/package.json": "npm/jquery-package.json",
    "web/jquery/package-lock.json": "npm/jquery-package-lock.json",
    "web/prop-types/package.json": "npm/prop-types-package.json",
    "web/prop-types/yarn.lock": "npm/prop-types-yarn.lock",
    "web/ni/package.json": "npm/ni-package.json",
    "web/ni/pnpm-lock.yaml": "npm/ni-pnpm-lock.yaml",
    "go/cli/go.mod": "go/cli-go.mod",
    "go/cobra/go.mod": "go/cobra-go.mod",
    "rust/Cargo.toml": "cargo/ripgrep-Cargo.toml",
    "rust/Cargo.lock": "cargo/ripgrep-Cargo.lock",
    "ruby/Gemfile": "rubygems/devise-Gemfile",
    "ruby/Gemfile.lock": "rubygems/devise-Gemfile.lock",
    "ruby/devise.gemspec": "rubygems/devise-devise.gemspec",
    "php/composer.json": "packagist/composer-composer.json",
    "php/composer.lock": "packagist/composer-composer.lock",
    "java/pom.xml": "maven/commons-lang-pom.xml",
    # Vendored copies are someone else's manifests: never read.
    "web/ni/node_modules/left-pad/package.json": "npm/ni-package.json",
    "vendor/github.com/x/y/go.mod": "go/cobra-go.mod",
    "third_party/lib/requirements.txt": "pypi/warehouse-requirements-tests.txt",
}


def read(path: str) -> bytes:
    return (FIXTURES / TREE[path]).read_bytes()


def deps_of(manifest: str) -> dict[str, DeclaredDependency]:
    found = {ms.manifest: ms for ms in discover(TREE)}
    return {dep.name: dep for dep in read_dependencies(found[manifest], read)}


def test_discovery_pairs_manifests_with_locks_and_skips_vendored_folders() -> None:
    found = {ms.manifest: ms.lock for ms in discover(TREE)}
    assert found == {
        "go/cli/go.mod": None, "go/cobra/go.mod": None,
        "php/composer.json": "php/composer.lock",
        "python/click/pyproject.toml": "python/click/uv.lock",
        "python/pipenv/Pipfile": "python/pipenv/Pipfile.lock",
        "python/rich/pyproject.toml": "python/rich/poetry.lock",
        "python/warehouse/requirements/main.in": None,  # pip-tools: no main.txt here
        "python/warehouse/requirements/tests.in": "python/warehouse/requirements/tests.txt",
        "ruby/Gemfile": "ruby/Gemfile.lock",
        "rust/Cargo.toml": "rust/Cargo.lock",
        "web/jquery/package.json": "web/jquery/package-lock.json",
        "web/ni/package.json": "web/ni/pnpm-lock.yaml",
        "web/prop-types/package.json": "web/prop-types/yarn.lock",
    }


def test_cargo_workspace_member_finds_the_root_lock() -> None:
    tree = ["Cargo.toml", "Cargo.lock", "crates/cli/Cargo.toml"]
    assert {ms.manifest: ms.lock for ms in discover(tree)} == {
        "Cargo.toml": "Cargo.lock", "crates/cli/Cargo.toml": "Cargo.lock"}


def test_requirements_txt_alone_is_a_manifest_of_pins() -> None:
    tree = ["requirements.txt", "requirements-dev.txt", "docs/requirements.txt"]
    assert [ms.kind for ms in discover(tree)] == ["requirements.txt"] * 3


# ------------------------------------------------------------------------------- PyPI

def test_requirements_in_with_compiled_lock() -> None:
    deps = deps_of("python/warehouse/requirements/tests.in")
    assert len(deps) == 16  # tests.in lists 16 packages; tests.txt pins them and 32 more
    assert all(dep.locked for dep in deps.values())
    assert deps["coverage"].locked == "7.14.1"
    assert deps["pytz"].locked == "2026.2"
    assert "certifi" not in deps  # pinned in tests.txt, but only as a transitive dependency


def test_requirements_in_names_extras_and_ranges() -> None:
    deps = deps_of("python/warehouse/requirements/main.in")
    assert len(deps) == 79
    assert deps["celery"].spec == "<5.7,>=5.6.2"  # celery[redis]>=5.6.2,<5.7: extras dropped
    assert deps["pyjwt"].spec == ">=2.13.0"  # PyJWT[crypto]: PEP 503 name
    assert deps["pytz"].spec is None and deps["pytz"].locked is None


def test_requirements_includes_are_read_through_the_callback() -> None:
    files = {
        "reqs/prod.txt": b"-r base.txt\nrequests==2.31.0\n",
        "reqs/base.txt": b"--requirement ../common/core.txt\nDjango_Rest>=3,<4\n-r prod.txt\n",
        "common/core.txt": b"click~=8.1\ngit+https://github.com/a/b.git#egg=b-lib\n-e ./local\n",
    }
    ms = ManifestSet("requirements.txt", "reqs/prod.txt")
    deps = {d.name: d for d in read_dependencies(ms, lambda p: files[p])}
    assert deps["requests"].spec == "==2.31.0"
    assert deps["django-rest"].spec == "<4,>=3"
    assert deps["click"].spec == "~=8.1"
    assert deps["b-lib"].source == "git"
    assert deps["local"].source == "path"


def test_a_missing_include_loses_only_its_own_lines(caplog: pytest.LogCaptureFixture) -> None:
    files = {"requirements.txt": b"-r gone.txt\n-c also-gone.txt\nclick==8.1.7\n"}
    ms = ManifestSet("requirements.txt", "requirements.txt")
    deps = read_dependencies(ms, lambda p: files[p])
    assert [(d.name, d.spec) for d in deps] == [("click", "==8.1.7")]
    assert "gone.txt" in caplog.text and "also-gone.txt" in caplog.text


def test_constraints_file_pins_count_as_locked() -> None:
    files = {"requirements.txt": b"-c constraints.txt\nrequests>=2\nclick\n",
             "constraints.txt": b"requests==2.31.0\nurllib3==2.2.1\n"}
    deps = {d.name: d for d in read_dependencies(ManifestSet("requirements.txt", "requirements.txt"),
                                                 lambda p: files[p])}
    assert (deps["requests"].spec, deps["requests"].locked) == (">=2", "2.31.0")
    assert deps["click"].locked is None and "urllib3" not in deps


def test_poetry_pyproject_with_poetry_lock() -> None:
    deps = deps_of("python/rich/pyproject.toml")
    assert "python" not in deps
    assert len(deps) == 10  # 3 dependencies + 7 dev-dependencies
    assert deps["pygments"].spec == ">=2.13.0,<3"  # Poetry ^2.13.0
    assert deps["pygments"].locked == "2.19.2"
    assert deps["ipywidgets"].spec == ">=7.5.1,<9"  # table form {version=..., optional=true}
    assert deps["pytest"].group == "dev"
    assert all(dep.locked for dep in deps.values())


def test_pep621_dependency_groups_with_uv_lock() -> None:
    deps = deps_of("python/click/pyproject.toml")
    assert len(deps) == 17  # no runtime deps; 17 distinct names across 8 PEP 735 groups
    assert "click" not in deps
    # uv forked sphinx (8.1.3 / 9.0.4 / 9.1.0 by python marker): the highest is reported.
    assert deps["sphinx"].locked == "9.1.0"
    assert deps["gha-update"].locked == "0.2.0"  # "gha-update ; python_full_version >= '3.12'"


def test_pipfile_with_pipfile_lock() -> None:
    deps = deps_of("python/pipenv/Pipfile")
    assert len(deps) == 27  # 1 package + 26 dev-packages
    assert deps["pytz"].spec is None and deps["pytz"].locked == "2026.1.post1"
    assert deps["sphinx-click"].spec == "==4.*"
    assert deps["gunicorn"].spec == "26.1.*"
    assert deps["myst-parser"].group == "dev"


# -------------------------------------------------------------------------------- npm

def test_package_json_with_package_lock_v3() -> None:
    deps = deps_of("web/jquery/package.json")
    assert len(deps) == 33
    assert all(dep.group == "dev" for dep in deps.values())
    # "promises-aplus-tests": "npm:@mgol/promises-aplus-tests@2.1.2-mgol.2" is an alias.
    alias = deps["@mgol/promises-aplus-tests"]
    assert (alias.spec, alias.locked) == ("2.1.2-mgol.2", "2.1.2-mgol.2")
    assert all(dep.locked == dep.spec for dep in deps.values())  # exact versions, locked as such


def test_package_json_with_yarn_classic_lock() -> None:
    deps = deps_of("web/prop-types/package.json")
    assert len(deps) == 13
    assert deps["react-is"].spec == "^16.13.1"
    assert deps["react-is"].locked == "16.13.1"
    assert deps["loose-envify"].group == "main"


def test_package_json_with_pnpm_lock_strips_peer_suffixes() -> None:
    deps = deps_of("web/ni/package.json")
    assert len(deps) == 22
    # pnpm writes 2.1.1(eslint@8.54.0)(typescript@5.3.2)(vitest@0.34.6)
    assert deps["@antfu/eslint-config"].locked == "2.1.1"
    assert all(dep.locked for dep in deps.values())


def test_yarn_berry_and_pnpm_v9_and_package_lock_v1() -> None:
    from devmetrics.deps.formats import javascript

    berry = (b'__metadata:\n  version: 6\n\n"left-pad@npm:^1.1.0, left-pad@npm:^1.3.0":\n'
             b'  version: 1.3.0\n  resolution: "left-pad@npm:1.3.0"\n')
    assert javascript.yarn_lock(berry).by_key["left-pad@^1.3.0"] == "1.3.0"
    v9 = (b"lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      react:\n"
          b"        specifier: ^18.2.0\n        version: 18.3.1\n")
    assert javascript.pnpm_lock(v9).by_name == {"react": ["18.3.1"]}
    v1 = b'{"lockfileVersion": 1, "dependencies": {"lodash": {"version": "4.17.21"}}}'
    assert javascript.package_lock(v1).by_name == {"lodash": ["4.17.21"]}


@pytest.mark.parametrize(("spec", "source"), [
    ("^1.2.3", "registry"), ("workspace:*", "workspace"), ("file:../lib", "path"),
    ("link:../lib", "path"), ("github:user/repo", "git"), ("user/repo#v1", "git"),
    ("git+https://x.org/r.git", "git"), ("https://x.org/a.tgz", "url"), ("latest", "registry"),
])
def test_npm_source_kinds(spec: str, source: str) -> None:
    from devmetrics.deps.formats.javascript import source_of

    assert source_of(spec) == source


# ------------------------------------------------------------------ Go, Cargo, Ruby, PHP

def test_go_mod_direct_requires_are_pins() -> None:
    deps = deps_of("go/cli/go.mod")
    direct = {name: dep for name, dep in deps.items() if dep.direct}
    assert len(deps) == 158 and len(direct) == 47  # 111 are marked // indirect
    shlex = direct["github.com/google/shlex"]
    assert shlex.spec == "v0.0.0-20191202100458-e7afc7fbc510" and shlex.locked is None
    # replace github.com/rogpeppe/go-internal => github.com/cli/go-internal v0.0.0-2024...
    assert "github.com/rogpeppe/go-internal" not in deps
    assert deps["github.com/cli/go-internal"].spec.startswith("v0.0.0-20241024130215")


def test_minimal_go_mod() -> None:
    deps = deps_of("go/cobra/go.mod")
    assert {name: dep.spec for name, dep in deps.items()} == {
        "github.com/cpuguy83/go-md2man/v2": "v2.0.6", "github.com/inconshreveable/mousetrap": "v1.1.0",
        "github.com/spf13/pflag": "v1.0.9", "go.yaml.in/yaml/v3": "v3.0.4"}


def test_cargo_toml_with_cargo_lock() -> None:
    deps = deps_of("rust/Cargo.toml")
    assert len(deps) == 14  # 10 dependencies + 1 target-specific + 3 dev-dependencies
    assert (deps["anyhow"].spec, deps["anyhow"].locked) == ("1.0.75", "1.0.104")
    assert deps["tikv-jemallocator"].locked == "0.7.0"  # [target.'cfg(...)'.dependencies.x]
    assert {n for n, d in deps.items() if d.source == "path"} == {"grep", "grep-index", "ignore"}
    assert deps["walkdir"].group == "dev"


def test_gemfile_with_gemfile_lock() -> None:
    deps = deps_of("ruby/Gemfile")
    assert len(deps) == 16
    assert (deps["rails"].spec, deps["rails"].locked) == ("~> 8.1.0", "8.1.3")
    assert deps["minitest"].spec == "< 6"
    assert deps["mocha"].spec == "~> 2.1"  # followed by `require: false`
    assert deps["mongoid"].source == "git"  # github: "mongodb/mongoid": not a registry gem
    assert deps["mongoid"].locked is None


def test_composer_json_with_composer_lock() -> None:
    deps = deps_of("php/composer.json")
    assert len(deps) == 27
    assert not any(name == "php" or name.startswith("ext-") for name in deps)
    console = deps["symfony/console"]
    assert console.spec == "^5.4.47 || ^6.4.25 || ^7.1.10 || ^8.0"
    assert console.locked == "v5.4.47"


def test_read_all_warns_and_goes_on_when_a_manifest_is_broken(caplog: pytest.LogCaptureFixture) -> None:
    files = {"a/package.json": b"{not json", "b/package.json": b'{"dependencies": {"x": "1.0.0"}}'}
    deps = read_all(list(files), lambda p: files[p])
    assert [d.name for d in deps] == ["x"]
    assert "a/package.json" in caplog.text


def test_the_whole_fixture_tree_evaluates_against_the_fake_registries() -> None:
    declared = [dep for dep in read_all(list(TREE), read) if dep.direct]
    with serving_registries(FakeCatalog().add_in_use(declared)) as (sandbox, urls):
        lookups = registries_for(None, urls)
        result = evaluate_repo(list(TREE), read, lookups, datetime(2026, 11, 23, tzinfo=UTC))
        requests = sandbox.requests()
    assert len(result.dependencies) == len(declared) == 325
    # unsupported: 3 Cargo path crates and the git gem. unknown: five unlocked warehouse
    # ranges (celery>=5.6.2,<5.7, cryptography>=48.0.1, github-reserved-names>=2026.6.1,
    # packaging>=26.2, readme-renderer>=45.0) that no generated history reaches: every
    # lock and pin is published, ranges are not.
    assert Counter(dep.status for dep in result.dependencies) == {"ok": 316, "unknown": 5, "unsupported": 4}
    packages = {(d.ecosystem, d.name) for d in declared if d.source == "registry"}
    go_infos = sum(1 for d in result.dependencies if d.ecosystem == "go" and d.current_version != d.latest_version
                   and pseudo_version_time(d.current_version or "") is None)
    assert requests == len(packages) + go_infos  # one per package; Go: + .info when behind
