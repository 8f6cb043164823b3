"""Plugin discovery: entry points, broken plugins, duplicates, and real pip-installed distributions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clusterjob import JobScript, hookimpl
from clusterjob.backends import ClusterjobBackend
from clusterjob.backends.local import LocalBackend
from clusterjob.plugins import create_plugin_manager, get_backend, reset_plugin_manager


class SitePlugin:
    @hookimpl
    def clusterjob_backends(self):
        class Site(LocalBackend):
            name = "mysite"

        return [Site()]


class BadPlugin:
    @hookimpl
    def clusterjob_backends(self):
        return [object()]


class ClashingPlugin:
    @hookimpl
    def clusterjob_backends(self):
        return [LocalBackend()]


class RaisingPlugin:
    @hookimpl
    def clusterjob_backends(self):
        raise RuntimeError("site config missing")


def test_fresh_manager_without_entry_points() -> None:
    registry = create_plugin_manager(load_entrypoints=False, plugins=(SitePlugin(),))
    assert list(registry.backends) == ["mysite"]
    assert registry.failures == {}


def test_bad_and_clashing_and_raising_plugins_are_reported_not_fatal() -> None:
    with pytest.warns(RuntimeWarning) as warned:
        registry = create_plugin_manager(
            load_entrypoints=True, plugins=(BadPlugin(), ClashingPlugin(), RaisingPlugin(), SitePlugin())
        )
    messages = " | ".join(str(w.message) for w in warned)
    assert "which is not a ClusterjobBackend instance" in messages
    assert "offers backend 'local', already provided by plugin" in messages
    assert "clusterjob_backends() raised RuntimeError: site config missing" in messages
    assert {"local", "mysite"} <= set(registry.backends)


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def clusterjob_backend(self):  # missing "s"
            return []

    with pytest.raises(Exception, match="unknown hook 'clusterjob_backend'"):
        create_plugin_manager(load_entrypoints=False, plugins=(Typo(),))


def test_disable_plugins_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERJOB_DISABLE_PLUGINS", "local")
    reset_plugin_manager()
    assert "local" not in JobScript.backends
    with pytest.raises(KeyError, match="backend 'local' is not installed: pip install clusterjob-core"):
        get_backend("local")


def test_events_reach_site_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    class Listener:
        @hookimpl
        def clusterjob_job_submitted(self, result):
            seen.append(("submitted", result.job_id))

        @hookimpl
        def clusterjob_job_finished(self, result):
            seen.append(("finished", result.job_id))

    registry = create_plugin_manager(plugins=(Listener(),))
    reset_plugin_manager(registry)
    JobScript.cache_folder = str(tmp_path / "cache")
    result = JobScript("true", jobname="ev", backend="local", rootdir=str(tmp_path), max_sleep_interval=1).submit(cache_id="ev")
    result.wait(30)
    JobScript("true", jobname="ev", backend="local", rootdir=str(tmp_path)).submit(cache_id="ev").wait(30)
    assert seen == [("submitted", result.job_id), ("finished", result.job_id)]


def test_documented_module_path_names_the_distribution() -> None:
    from clusterjob.plugins import import_backend_distribution

    with pytest.raises(ImportError, match=r"clusterjob.backends.nosuch is provided by a separate distribution: pip install clusterjob-nosuch"):
        import_backend_distribution("clusterjob_nosuch", "clusterjob-nosuch", "nosuch")


def _make_distribution(root: Path, name: str, module_body: str) -> Path:
    folder = root / name
    package = folder / name.replace("-", "_")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(module_body))
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{name}"
            version = "0.1"
            [project.entry-points.clusterjob]
            {name.split('-')[-1]} = "{name.replace('-', '_')}"
            """
        )
    )
    return folder


@pytest.mark.slow
def test_pip_installed_plugin_is_discovered_and_a_broken_one_is_not_fatal(tmp_path: Path) -> None:
    """Build two throwaway distributions, pip install them, and ask for the backends.

    They are installed with this interpreter's own pip into a folder on
    PYTHONPATH: entry points are found there like in site-packages, and the
    build needs nothing that the test environment does not hold (a venv with
    system site packages would lean on the base interpreter's packages, which
    a fresh machine does not have).
    """
    good = _make_distribution(
        tmp_path,
        "clusterjob-mysite",
        """
        from clusterjob import hookimpl
        from clusterjob.backends.local import LocalBackend

        class MySiteBackend(LocalBackend):
            name = "mysite"

        @hookimpl
        def clusterjob_backends():
            return [MySiteBackend()]
        """,
    )
    broken = _make_distribution(tmp_path, "clusterjob-broken", "raise ImportError('needs libfoo')\n")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(good), str(broken)],
        check=True, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = "import warnings; warnings.simplefilter('always')\nfrom clusterjob import JobScript; print(JobScript.backends)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, env=env)
    assert "'mysite'" in out.stdout and "'local'" in out.stdout
    assert "plugin 'broken' from distribution 'clusterjob-broken' failed to load" in out.stderr
    assert "needs libfoo" in out.stderr
    cli = subprocess.run(
        [sys.executable, "-m", "clusterjob.cli", "backends"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert cli.returncode == 1
    assert "mysite\tmysite" in cli.stdout
    assert "plugin broken (clusterjob-broken) failed: ImportError: needs libfoo" in cli.stderr


def test_backend_base_class_methods_raise_until_implemented() -> None:
    backend = ClusterjobBackend()
    with pytest.raises(NotImplementedError):
        backend.cmd_submit(None)  # type: ignore[arg-type]
    assert backend.cmd_status_many([]) is None
    assert backend.cmd_find_tag("t") is None
