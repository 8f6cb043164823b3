"""Plugin discovery: entry points, broken plugins, duplicates, and real pip-installed distributions."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from clusterjob import JobScript, hookimpl, plugins
from clusterjob.backends import ClusterjobBackend
from clusterjob.backends import local as local_plugin
from clusterjob.backends.local import LocalBackend
from clusterjob.cli import main
from clusterjob.errors import BackendNotInstalledError
from clusterjob.plugins import (
    PluginFailure,
    PluginOrigin,
    create_plugin_manager,
    get_backend,
    get_registry,
    reset_plugin_manager,
)


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


class Incomplete(ClusterjobBackend):
    """A backend that forgot cmd_cancel."""

    name = "incomplete"
    extension = "sh"

    def cmd_submit(self, jobscript):
        return ["true"]

    def get_job_id(self, response):
        return "1"

    def cmd_status(self, run, finished=False):
        return ["true"]

    def get_status(self, response, finished=False):
        return None


def _plugin(name: str, **hooks: object) -> ModuleType:
    """A plugin module, as an entry point loads one, with the given hook functions."""
    module = ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def _site_backends() -> list[ClusterjobBackend]:
    class Site(LocalBackend):
        name = "mysite"

    return [Site()]


@dataclass
class FakeEntryPoint:
    """Stands in for an importlib.metadata entry point: name, value, dist and load()."""

    name: str
    plugin: object  # what load() returns, or the exception it raises
    distribution: str
    version: str = "1.0"

    @property
    def value(self) -> str:
        return f"clusterjob_{self.name}"

    @property
    def dist(self) -> SimpleNamespace:
        return SimpleNamespace(name=self.distribution, version=self.version)

    def load(self) -> object:
        if isinstance(self.plugin, Exception):
            raise self.plugin
        return self.plugin


#: One good plugin and one of every way a plugin can be broken, as entry points.
INSTALLED = (
    FakeEntryPoint("local", local_plugin, "clusterjob-core", "3.0"),
    FakeEntryPoint("broken", ImportError("needs libfoo"), "clusterjob-broken"),
    FakeEntryPoint(
        "typo", _plugin("clusterjob_typo", clusterjob_backend=_site_backends), "clusterjob-typo"
    ),
    FakeEntryPoint(
        "badsig",
        _plugin("clusterjob_badsig", clusterjob_backends=lambda config: []),
        "clusterjob-badsig",
    ),
    FakeEntryPoint(
        "incomplete",
        _plugin("clusterjob_incomplete", clusterjob_backends=lambda: [Incomplete()]),
        "clusterjob-incomplete",
    ),
    FakeEntryPoint(
        "clash",
        _plugin("clusterjob_clash", clusterjob_backends=lambda: [LocalBackend()]),
        "clusterjob-clash",
    ),
    FakeEntryPoint(
        "mysite",
        _plugin("clusterjob_mysite", clusterjob_backends=_site_backends),
        "clusterjob-mysite",
        "0.1",
    ),
)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeEntryPoint, ...]:
    """The entry points of :data:`INSTALLED` are what is installed; nothing was warned about yet."""
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: list(INSTALLED) if group == "clusterjob" else []
    )
    monkeypatch.setattr(plugins, "_announced", set())
    reset_plugin_manager()
    return INSTALLED


def _failures(registry: plugins.PluginRegistry) -> dict[str, str]:
    return {failure.plugin: failure.reason for failure in registry.failures}


def test_fresh_manager_without_entry_points() -> None:
    registry = create_plugin_manager(load_entrypoints=False, plugins=(SitePlugin(),))
    assert list(registry.backends) == ["mysite"]
    assert registry.failures == []


def test_each_broken_plugin_is_skipped_alone_and_reported_once(
    installed: tuple[FakeEntryPoint, ...],
) -> None:
    registry = create_plugin_manager()
    assert sorted(registry.backends) == ["local", "mysite"]
    assert [f.plugin for f in registry.failures] == [
        "broken",
        "typo",
        "badsig",
        "incomplete",
        "clash",
    ]
    reasons = _failures(registry)
    assert reasons["broken"] == "cannot import 'clusterjob_broken': ImportError: needs libfoo"
    assert (
        reasons["typo"] == "unknown hook 'clusterjob_backend' (did you mean 'clusterjob_backends'?)"
    )
    assert (
        "hook 'clusterjob_backends'" in reasons["badsig"]
        and "Argument(s) {'config'}" in reasons["badsig"]
    )
    assert "\n" not in reasons["badsig"]
    assert reasons["incomplete"].startswith(
        "clusterjob_backends() offered an unusable backend: backend 'incomplete' "
    )
    assert "cmd_cancel()" in reasons["incomplete"]
    assert (
        reasons["clash"]
        == "offers backend 'local', already provided by plugin 'local'; the first one loaded is kept"
    )
    assert registry.failures[0].origin == PluginOrigin("clusterjob-broken", "1.0")
    assert registry.origin_of("mysite") == PluginOrigin("clusterjob-mysite", "0.1")


def test_plugin_objects_that_are_bad_clash_or_raise_are_skipped() -> None:
    bad, clashing, raising, site = BadPlugin(), ClashingPlugin(), RaisingPlugin(), SitePlugin()
    registry = create_plugin_manager(
        load_entrypoints=False, plugins=(local_plugin, bad, clashing, raising, site)
    )
    assert sorted(registry.backends) == ["local", "mysite"]
    reasons = [failure.reason for failure in registry.failures]
    assert len(reasons) == 3
    assert reasons[0].startswith(
        "clusterjob_backends() offered an unusable backend: <object object at "
    )
    assert reasons[0].endswith("is not an instance of clusterjob.backends.ClusterjobBackend")
    assert (
        reasons[1]
        == "offers backend 'local', already provided by plugin 'clusterjob.backends.local'; the first one loaded is kept"
    )
    assert reasons[2] == "clusterjob_backends() raised RuntimeError: site config missing"
    for plugin in (bad, clashing, raising):  # skipped whole: none of their hooks stays registered
        assert not registry.manager.is_registered(plugin)


def test_misspelled_hook_skips_that_plugin_and_the_others_work() -> None:
    class Typo:
        @hookimpl
        def clusterjob_backend(self):  # missing "s"
            return []

    class Unprefixed:
        @hookimpl
        def site_setup(self):
            return None

    typo, unprefixed = Typo(), Unprefixed()
    registry = create_plugin_manager(
        load_entrypoints=False, plugins=(typo, SitePlugin(), unprefixed)
    )
    assert list(registry.backends) == ["mysite"]
    assert [failure.reason for failure in registry.failures] == [
        "unknown hook 'clusterjob_backend' (did you mean 'clusterjob_backends'?)",
        "unknown hook 'site_setup' (clusterjob's hooks: clusterjob_backends, clusterjob_job_finished, clusterjob_job_submitted)",
    ]
    assert not registry.manager.is_registered(typo) and not registry.manager.is_registered(
        unprefixed
    )
    registry.manager.check_pending()  # what is left is valid


def test_optional_hook_of_another_version_is_no_failure() -> None:
    plugin = ModuleType("clusterjob_future")
    plugin.clusterjob_something_new = hookimpl(optionalhook=True)(lambda: None)  # type: ignore[attr-defined]
    registry = create_plugin_manager(load_entrypoints=False, plugins=(plugin,))
    assert registry.failures == []


def test_a_plugin_with_one_bad_backend_is_skipped_whole_and_names_what_it_offered() -> None:
    class Site(LocalBackend):
        name = "mysite"

    plugin = _plugin("clusterjob_two", clusterjob_backends=lambda: [Site(), Incomplete()])
    registry = create_plugin_manager(load_entrypoints=False, plugins=(plugin,))
    assert registry.backends == {}
    [failure] = registry.failures
    assert failure.backends == ("mysite", "incomplete")
    assert registry.failure_for("mysite") is failure


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (lambda: LocalBackend(), "clusterjob_backends() returned <LocalBackend"),
        (lambda: [LocalBackend(), LocalBackend()], "offers backend 'local' more than once"),
    ],
    ids=["one-instance-not-a-list", "same-name-twice"],
)
def test_backends_hook_must_return_a_list_of_distinct_backends(returned, reason: str) -> None:
    registry = create_plugin_manager(
        load_entrypoints=False, plugins=(_plugin("clusterjob_x", clusterjob_backends=returned),)
    )
    assert registry.backends == {}
    [failure] = registry.failures
    assert failure.reason.startswith(reason)


def test_entry_point_name_taken_by_another_distribution_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = FakeEntryPoint(
        "mysite",
        _plugin("clusterjob_mysite", clusterjob_backends=_site_backends),
        "clusterjob-mysite",
    )
    second = FakeEntryPoint(
        "mysite", _plugin("mysite_fork", clusterjob_backends=_site_backends), "mysite-fork", "2.0"
    )
    monkeypatch.setattr(plugins, "entry_points", lambda group: [first, second, first])
    registry = create_plugin_manager()
    assert list(registry.backends) == ["mysite"]
    assert registry.origin_of("mysite").distribution == "clusterjob-mysite"
    [failure] = registry.failures  # the same distribution seen twice is not a clash
    assert failure.origin == PluginOrigin("mysite-fork", "2.0")
    assert (
        failure.reason
        == "its entry-point name is already taken by the plugin from clusterjob-mysite 1.0"
    )


@pytest.mark.filterwarnings("ignore:clusterjob plugin:RuntimeWarning")
def test_asking_for_a_failed_plugins_backend_says_it_failed_and_why(
    installed: tuple[FakeEntryPoint, ...],
) -> None:
    for name, why in (
        (
            "broken",
            "plugin 'broken' from distribution clusterjob-broken 1.0 failed to load and was skipped: cannot import",
        ),
        (
            "typo",
            "plugin 'typo' from distribution clusterjob-typo 1.0 failed to load and was skipped: unknown hook 'clusterjob_backend'",
        ),
        ("incomplete", "offered an unusable backend: backend 'incomplete' "),
    ):
        with pytest.raises(BackendNotInstalledError) as info:
            str(JobScript("true", jobname="j", backend=name))
        message = str(info.value)
        assert message.startswith(f"backend {name!r} is unavailable: ")
        assert why in message
        assert (
            "installed backends: local, mysite; 'clusterjob backends' lists every plugin" in message
        )
        assert "pip install" not in message


@pytest.mark.filterwarnings("ignore:clusterjob plugin:RuntimeWarning")
def test_a_documented_backend_of_a_failed_distribution_says_it_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pbs = FakeEntryPoint(
        "pbs", ImportError("cannot import name 'x' from 'clusterjob.backends'"), "clusterjob-pbs"
    )
    monkeypatch.setattr(plugins, "entry_points", lambda group: [pbs])
    reset_plugin_manager(create_plugin_manager())
    with pytest.raises(
        BackendNotInstalledError,
        match=r"^backend 'pbspro' is unavailable: plugin 'pbs' from distribution clusterjob-pbs 1.0 failed",
    ):
        get_backend("pbspro")


def test_failures_are_warned_and_logged_once_per_process(
    installed: tuple[FakeEntryPoint, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clusterjob")
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")  # clusterjob itself keeps them to one per failure
        assert JobScript.backends == ["local", "mysite"]
        assert JobScript.backends == ["local", "mysite"]
        reset_plugin_manager()  # a rebuilt registry finds the same failures: not warned again
        assert "mysite" in JobScript.backends
    assert {w.category for w in warned} == {RuntimeWarning}
    messages = [str(w.message) for w in warned]
    assert len(messages) == 5
    assert messages[0] == (
        "clusterjob plugin 'broken' from distribution clusterjob-broken 1.0 failed and is skipped: cannot import "
        "'clusterjob_broken': ImportError: needs libfoo. The other backends keep working; to stop loading it, "
        "set CLUSTERJOB_DISABLE_PLUGINS=broken"
    )
    assert [r.getMessage() for r in caplog.records if r.name == "clusterjob.plugins"] == messages


def test_disable_hint_keeps_what_the_variable_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERJOB_DISABLE_PLUGINS", "lsf, sge")
    failure = PluginFailure("broken", PluginOrigin("clusterjob-broken", "1.0"), "ImportError: x")
    assert failure.announcement().endswith("set CLUSTERJOB_DISABLE_PLUGINS=broken,lsf,sge")
    handed_in = PluginFailure("1234", PluginOrigin(), "ImportError: x")
    assert (
        handed_in.announcement()
        == "clusterjob plugin '1234' failed and is skipped: ImportError: x. The other backends keep working"
    )


def test_disable_plugins_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERJOB_DISABLE_PLUGINS", "local")
    reset_plugin_manager()
    assert "local" not in JobScript.backends
    assert get_registry().disabled["local"].distribution == "clusterjob-core"
    with pytest.raises(
        KeyError,
        match=r"backend 'local' is disabled: CLUSTERJOB_DISABLE_PLUGINS names its plugin 'local' \(distribution clusterjob-core .*\); remove it from that variable",
    ):
        get_backend("local")


@pytest.mark.filterwarnings("ignore:clusterjob plugin:RuntimeWarning")
def test_a_name_nobody_offers_is_not_installed_and_lists_the_failures(
    installed: tuple[FakeEntryPoint, ...],
) -> None:
    reset_plugin_manager(create_plugin_manager())
    with pytest.raises(BackendNotInstalledError) as info:
        get_backend("slrum")
    message = str(info.value)
    assert message.startswith(
        "backend 'slrum' is not installed: pip install clusterjob-slrum (installed backends: local, mysite)"
    )
    assert (
        "; plugins that failed to load: plugin 'broken' from distribution clusterjob-broken 1.0: cannot import"
        in message
    )


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
    result = JobScript(
        "true", jobname="ev", backend="local", rootdir=str(tmp_path), max_sleep_interval=1
    ).submit(cache_id="ev")
    result.wait(30)
    JobScript("true", jobname="ev", backend="local", rootdir=str(tmp_path)).submit(
        cache_id="ev"
    ).wait(30)
    assert seen == [("submitted", result.job_id), ("finished", result.job_id)]


def test_documented_module_path_names_the_distribution() -> None:
    from clusterjob.plugins import import_backend_distribution

    with pytest.raises(
        ImportError,
        match=r"clusterjob.backends.nosuch is provided by a separate distribution: pip install clusterjob-nosuch",
    ):
        import_backend_distribution("clusterjob_nosuch", "clusterjob-nosuch", "nosuch")


def test_every_backend_names_its_scheduler_commands() -> None:
    for name in JobScript.backends:
        commands = get_backend(name).commands
        assert commands and all(isinstance(command, str) and command for command in commands), name
    assert get_backend("slurm").commands == ("sbatch", "squeue", "sacct", "scancel")
    assert get_backend("lpbs").commands == ("lqsub", "lqstat", "lqdel")


def test_cli_backends_lists_distribution_version_and_commands_then_each_failure_once(
    installed: tuple[FakeEntryPoint, ...],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="clusterjob")
    assert main(["backends"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "backend  distribution       version  scheduler commands",
        "-------  -----------------  -------  ----------------------------",
        "local    clusterjob-core    3.0      python -I -S local_runner.py",
        "mysite   clusterjob-mysite  0.1      python -I -S local_runner.py",
        "",
        "plugins that failed to load and were skipped (5; the backends above work):",
        "  broken (clusterjob-broken 1.0): cannot import 'clusterjob_broken': ImportError: needs libfoo",
        "  typo (clusterjob-typo 1.0): unknown hook 'clusterjob_backend' (did you mean 'clusterjob_backends'?)",
        "  badsig (clusterjob-badsig 1.0): " + _failures(get_registry(announce=False))["badsig"],
        "  incomplete (clusterjob-incomplete 1.0): "
        + _failures(get_registry(announce=False))["incomplete"],
        "  clash (clusterjob-clash 1.0): offers backend 'local', already provided by plugin 'local'; the first one loaded is kept",
        "to stop loading them, set CLUSTERJOB_DISABLE_PLUGINS=badsig,broken,clash,incomplete,typo",
    ]
    assert captured.err == "" and caplog.records == []  # listed, not warned about as well


def test_cli_backends_json(
    installed: tuple[FakeEntryPoint, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backends", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["backends"][1] == {
        "name": "mysite",
        "plugin": "mysite",
        "distribution": "clusterjob-mysite",
        "version": "0.1",
        "commands": ["python -I -S local_runner.py"],
    }
    assert [b["name"] for b in report["backends"]] == ["local", "mysite"]
    assert [(f["plugin"], f["distribution"], f["version"]) for f in report["failures"]] == [
        (name, f"clusterjob-{name}", "1.0")
        for name in ("broken", "typo", "badsig", "incomplete", "clash")
    ]
    assert (
        report["failures"][0]["reason"]
        == "cannot import 'clusterjob_broken': ImportError: needs libfoo"
    )
    assert report["failures"][4]["backends"] == ["local"]
    assert report["disabled"] == []


def test_cli_backends_shows_disabled_plugins_and_exits_0_without_failures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plugins, "entry_points", lambda group: [INSTALLED[0], INSTALLED[1]])
    monkeypatch.setenv("CLUSTERJOB_DISABLE_PLUGINS", "broken")
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\ndisabled by CLUSTERJOB_DISABLE_PLUGINS: broken (clusterjob-broken)\n")
    assert "failed" not in out
    assert main(["backends", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["disabled"] == [
        {"plugin": "broken", "distribution": "clusterjob-broken", "version": "1.0"}
    ]


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
            {name.split("-")[-1]} = "{name.replace("-", "_")}"
            """
        )
    )
    return folder


#: Run with the pip-installed plugins on PYTHONPATH: the backends (three times, the
#: registry rebuilt once), then what asking for each failed plugin's backend says.
PROBE = """
import json, warnings
warnings.simplefilter("always")
from clusterjob import JobScript
from clusterjob.plugins import get_backend, reset_plugin_manager
print(json.dumps(JobScript.backends))
JobScript.backends
reset_plugin_manager()
JobScript.backends
try:
    str(JobScript("true", jobname="j", backend="typo"))
except KeyError as exc:
    print(exc)
try:
    get_backend("broken")
except KeyError as exc:
    print(exc)
"""


@pytest.mark.slow
def test_pip_installed_plugins_beside_an_import_failing_and_a_misspelled_one(
    tmp_path: Path,
) -> None:
    """Build three throwaway distributions, pip install them, and ask for the backends.

    ``clusterjob-broken`` fails to import and ``clusterjob-typo`` misspells its
    hook (``clusterjob_backend``); ``clusterjob-mysite`` and every backend of
    this repository keep working, and each failure is reported once. They are
    installed with this interpreter's own pip into a folder on PYTHONPATH:
    entry points are found there like in site-packages, and the build needs
    nothing that the test environment does not hold (a venv with system site
    packages would lean on the base interpreter's packages, which a fresh
    machine does not have).
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
    broken = _make_distribution(
        tmp_path, "clusterjob-broken", "raise ImportError('needs libfoo')\n"
    )
    typo = _make_distribution(
        tmp_path,
        "clusterjob-typo",
        """
        from clusterjob import hookimpl
        from clusterjob.backends.local import LocalBackend

        class TypoBackend(LocalBackend):
            name = "typo"

        @hookimpl
        def clusterjob_backend():  # the "s" is missing
            return [TypoBackend()]
        """,
    )
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(good), str(broken), str(typo)],
        check=True, timeout=300,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    broken_why = "plugin 'broken' from distribution clusterjob-broken 0.1 failed"
    typo_why = "plugin 'typo' from distribution clusterjob-typo 0.1 failed"

    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    backends_line, typo_message, broken_message = out.stdout.splitlines()
    assert json.loads(backends_line) == [
        "local",
        "lpbs",
        "lsf",
        "mysite",
        "pbs",
        "pbspro",
        "sge",
        "slurm",
    ]
    assert (
        out.stderr.count(broken_why) == 1 and out.stderr.count(typo_why) == 1
    )  # warned once per process
    assert (
        "cannot import 'clusterjob_broken': ImportError: needs libfoo. The other backends keep working; "
        in out.stderr
    )
    assert "to stop loading it, set CLUSTERJOB_DISABLE_PLUGINS=broken" in out.stderr
    assert typo_message.startswith(
        f"backend 'typo' is unavailable: {typo_why} to load and was skipped: unknown hook 'clusterjob_backend'"
    )
    assert broken_message.startswith(
        f"backend 'broken' is unavailable: {broken_why} to load and was skipped: cannot import"
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "clusterjob.cli", "backends", *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, env=env, check=False
        )

    text = cli()
    assert text.returncode == 1
    assert "clusterjob plugin" not in text.stderr  # listed below, not warned about as well
    rows = [line.split(None, 3) for line in text.stdout.splitlines()]
    assert [
        "mysite",
        "clusterjob-mysite",
        "0.1",
        "python -I -S local_runner.py",
    ] in rows
    assert [
        "slurm",
        "clusterjob-slurm",
        version("clusterjob-slurm"),
        "sbatch, squeue, sacct, scancel",
    ] in rows
    assert (
        text.stdout.count(
            "broken (clusterjob-broken 0.1): cannot import 'clusterjob_broken': ImportError: needs libfoo"
        )
        == 1
    )
    assert text.stdout.count("typo (clusterjob-typo 0.1): unknown hook 'clusterjob_backend'") == 1
    assert "to stop loading them, set CLUSTERJOB_DISABLE_PLUGINS=broken,typo" in text.stdout

    as_json = cli("--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    mysite = next(b for b in report["backends"] if b["name"] == "mysite")
    assert mysite == {
        "name": "mysite",
        "plugin": "mysite",
        "distribution": "clusterjob-mysite",
        "version": "0.1",
        "commands": ["python -I -S local_runner.py"],
    }
    failures = sorted(report["failures"], key=lambda f: f["plugin"])
    assert [(f["plugin"], f["distribution"]) for f in failures] == [
        ("broken", "clusterjob-broken"),
        ("typo", "clusterjob-typo"),
    ]
    assert failures[0]["reason"] == "cannot import 'clusterjob_broken': ImportError: needs libfoo"
    assert (
        failures[1]["reason"]
        == "unknown hook 'clusterjob_backend' (did you mean 'clusterjob_backends'?)"
    )


def test_backend_base_class_methods_raise_until_implemented() -> None:
    backend = ClusterjobBackend()
    with pytest.raises(NotImplementedError):
        backend.cmd_submit(None)  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="implement status_command.*or cmd_status"):
        backend.status_command([])
    assert backend.tag_lookup_command("t") is None
