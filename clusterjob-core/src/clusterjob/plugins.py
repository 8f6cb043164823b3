"""Discovery of backends through pluggy and entry points.

The plugin manager is created on first use (importing clusterjob costs no
entry-point scan) and cached; :func:`create_plugin_manager` gives tests a
fresh one. Each plugin is loaded on its own, so one broken site plugin never
breaks the others: a plugin that fails to import, implements a hook that
clusterjob does not have (``clusterjob_backend``) or with arguments its spec
does not have, raises in ``clusterjob_backends()``, or offers a backend that
fails :func:`check_backend_interface` or whose name is taken, is skipped whole
and recorded as a :class:`PluginFailure`. :func:`get_registry` warns about
each failure once per process; ``clusterjob backends`` lists them. Set
``CLUSTERJOB_DISABLE_PLUGINS=name1,name2`` to skip plugins by entry-point name.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import cast

if sys.version_info >= (3, 10):
    from importlib.metadata import EntryPoint, entry_points
else:  # entry_points(group=...) arrived in the standard library with 3.10
    from importlib_metadata import EntryPoint, entry_points

import pluggy

from clusterjob import hookspecs
from clusterjob.backends import ClusterjobBackend
from clusterjob.errors import BackendNotInstalledError, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_DISTRIBUTIONS",
    "PluginFailure",
    "PluginOrigin",
    "PluginRegistry",
    "backend_names",
    "check_backend_interface",
    "create_plugin_manager",
    "disable_setting",
    "distribution_for",
    "get_backend",
    "get_registry",
    "import_backend_distribution",
    "registered_backends",
    "reset_plugin_manager",
]

logger = logging.getLogger("clusterjob.plugins")

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
DISABLE_VARIABLE = "CLUSTERJOB_DISABLE_PLUGINS"

#: Backends documented by the original clusterjob and the distribution that ships each.
KNOWN_DISTRIBUTIONS = {
    "local": "clusterjob-core",
    "slurm": "clusterjob-slurm",
    "pbs": "clusterjob-pbs",
    "pbspro": "clusterjob-pbs",
    "lpbs": "clusterjob-pbs",
    "lsf": "clusterjob-lsf",
    "sge": "clusterjob-sge",
}


def distribution_for(backend_name: str) -> str:
    """The distribution to ``pip install`` for a backend name (a guess for unknown names)."""
    return KNOWN_DISTRIBUTIONS.get(backend_name, f"clusterjob-{backend_name}")


@dataclass(frozen=True)
class PluginOrigin:
    """The distribution a plugin's entry point belongs to (None for a plugin object handed in)."""

    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return (
            " ".join(part for part in (self.distribution, self.version) if part)
            or "no distribution"
        )


def _concerns(
    backend_name: str, plugin: str, origin: PluginOrigin, offered: tuple[str, ...] = ()
) -> bool:
    """Whether a user asking for ``backend_name`` asks for this plugin's backend.

    The entry-point name is the backend name a user asks for (``mysite =
    "clusterjob_mysite"``); the names a plugin offered count where it got to
    offer them, and a documented backend counts for the distribution that
    ships it (``pbspro`` for a failed ``clusterjob-pbs``).
    """
    known = KNOWN_DISTRIBUTIONS.get(backend_name)
    return (
        backend_name == plugin
        or backend_name in offered
        or (known is not None and known == origin.distribution)
    )


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped: its name, its distribution and why.

    Attributes:
        plugin: the entry-point name (pluggy's name for a plugin object handed in).
        origin: the distribution it came from.
        reason: what went wrong, in one line.
        backends: the backend names it offered, when ``clusterjob_backends()`` got to run.
    """

    plugin: str
    origin: PluginOrigin
    reason: str
    backends: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """``plugin 'broken' from distribution clusterjob-broken 0.1``."""
        if self.origin.distribution is None:
            return f"plugin {self.plugin!r}"
        return f"plugin {self.plugin!r} from distribution {self.origin}"

    def concerns(self, backend_name: str) -> bool:
        """Whether a user asking for ``backend_name`` means this plugin (:func:`_concerns`)."""
        return _concerns(backend_name, self.plugin, self.origin, self.backends)

    def announcement(self) -> str:
        """The warning: what failed and why, that the others work, and how to stop loading it."""
        message = (
            f"clusterjob {self.source} failed and is skipped: {self.reason}. "
            "The other backends keep working"
        )
        if self.origin.distribution is None:  # not an entry point: the variable cannot skip it
            return message
        return f"{message}; to stop loading it, set {disable_setting(self.plugin)}"


@dataclass
class PluginRegistry:
    """The loaded plugin manager and what it yielded."""

    manager: pluggy.PluginManager
    backends: dict[str, ClusterjobBackend] = field(default_factory=dict)
    #: backend name -> plugin name it came from
    providers: dict[str, str] = field(default_factory=dict)
    #: plugin name -> the distribution of its entry point (plugin objects handed in have none)
    origins: dict[str, PluginOrigin] = field(default_factory=dict)
    #: plugins that were skipped, each once, in the order they were loaded
    failures: list[PluginFailure] = field(default_factory=list)
    #: plugin name -> distribution, for entry points that CLUSTERJOB_DISABLE_PLUGINS names
    disabled: dict[str, PluginOrigin] = field(default_factory=dict)

    def origin_of(self, backend_name: str) -> PluginOrigin:
        """The distribution that provides the loaded backend ``backend_name``."""
        return self.origins.get(self.providers[backend_name], PluginOrigin())

    def failure_for(self, backend_name: str) -> PluginFailure | None:
        """The failed plugin that ``backend_name`` would have come from, if any."""
        return next((failure for failure in self.failures if failure.concerns(backend_name)), None)

    def disabled_plugin_for(self, backend_name: str) -> str | None:
        """The disabled plugin that ``backend_name`` would have come from, if any."""
        return next(
            (
                name
                for name, origin in self.disabled.items()
                if _concerns(backend_name, name, origin)
            ),
            None,
        )


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_VARIABLE, "").split(",") if n.strip()}


def disable_setting(*plugins: str) -> str:
    """``CLUSTERJOB_DISABLE_PLUGINS=…`` with ``plugins`` added to what the variable holds now."""
    return f"{DISABLE_VARIABLE}={','.join(sorted(_disabled() | set(plugins)))}"


def _one_line(text: str) -> str:
    """pluggy's validation messages span lines; a failure is reported on one."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _origin(ep: EntryPoint) -> PluginOrigin:
    dist = getattr(ep, "dist", None)
    return PluginOrigin(dist.name, dist.version) if dist is not None else PluginOrigin()


def _skip(
    registry: PluginRegistry,
    plugin: object,
    name: str,
    origin: PluginOrigin,
    reason: str,
    offered: tuple[str, ...] = (),
) -> None:
    """Record ``plugin`` as failed and take it out of the manager, so that none of its hooks run."""
    if plugin is not None and registry.manager.get_plugin(name) is plugin:
        registry.manager.unregister(plugin, name=name)
        registry.origins.pop(name, None)
    registry.failures.append(PluginFailure(name, origin, reason, offered))


def _unknown_hooks_problem(manager: pluggy.PluginManager, plugin: object) -> str | None:
    """What is wrong with the hooks of ``plugin`` that have no spec (a misspelled name), if any.

    pluggy's ``check_pending()`` checks the whole manager and raises for the
    first bad plugin; this checks one plugin, so that only it is skipped.
    """
    known = sorted(
        name
        for name, caller in vars(manager.hook).items()
        if not name.startswith("_") and caller.has_spec()
    )
    problems = []
    for caller in manager.get_hookcallers(plugin) or []:
        if caller.has_spec() or all(
            impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin
        ):
            continue
        close = difflib.get_close_matches(caller.name, known, n=1, cutoff=0.8)
        hint = f"did you mean {close[0]!r}?" if close else f"clusterjob's hooks: {', '.join(known)}"
        problems.append(f"unknown hook {caller.name!r} ({hint})")
    return "; ".join(problems) or None


def _register(registry: PluginRegistry, plugin: object, name: str, origin: PluginOrigin) -> None:
    """Register one plugin and check its hook names and signatures; skip it if they are wrong."""
    try:
        registry.manager.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:  # a wrong signature, a name taken
        _skip(registry, plugin, name, origin, _one_line(str(exc)))
        return
    problem = _unknown_hooks_problem(registry.manager, plugin)
    if problem:
        _skip(registry, plugin, name, origin, problem)
        return
    registry.origins[name] = origin


def _load_entry_points(registry: PluginRegistry) -> None:
    disabled = _disabled()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        origin = _origin(ep)
        if ep.name in disabled:
            logger.info("plugin %r (%s) disabled by %s", ep.name, origin, DISABLE_VARIABLE)
            registry.disabled[ep.name] = origin
            continue
        if registry.manager.has_plugin(ep.name):
            loaded = registry.origins.get(ep.name)
            if loaded != origin:  # the same distribution seen twice on sys.path is no clash
                reason = (
                    "its entry-point name is already taken by the plugin from "
                    f"{loaded or 'no distribution'}"
                )
                _skip(registry, None, ep.name, origin, reason)
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
            _skip(
                registry,
                None,
                ep.name,
                origin,
                f"cannot import {ep.value!r}: {type(exc).__name__}: {exc}",
            )
            continue
        _register(registry, plugin, ep.name, origin)


def _call_backends_hook(impl: pluggy.HookImpl) -> list[object]:
    """What one plugin's ``clusterjob_backends()`` returns, as a list; PluginError if that fails."""
    try:
        offered = impl.function()
    except Exception as exc:  # nor may a plugin whose hook raises: it becomes that plugin's failure
        raise PluginError(f"clusterjob_backends() raised {type(exc).__name__}: {exc}") from exc
    if offered is None:
        return []
    if isinstance(offered, (str, ClusterjobBackend)) or not isinstance(offered, Iterable):
        raise PluginError(
            f"clusterjob_backends() returned {offered!r}; it must return a list of backend "
            "instances"
        )
    return list(offered)


def _backend_problem(
    registry: PluginRegistry, backend: object, offered_names: list[str]
) -> str | None:
    """Why a backend that a plugin offers cannot be used, if it cannot."""
    try:
        check_backend_interface(backend)
    except (TypeError, AttributeError) as exc:
        return f"clusterjob_backends() offered an unusable backend: {exc}"
    name = cast("ClusterjobBackend", backend).name
    if name in registry.backends:
        return (
            f"offers backend {name!r}, already provided by plugin "
            f"{registry.providers[name]!r}; the first one loaded is kept"
        )
    if offered_names.count(name) > 1:
        return f"offers backend {name!r} more than once"
    return None


def _collect_backends(registry: PluginRegistry) -> None:
    """Ask every plugin for its backends; a plugin with any unusable backend is skipped whole."""
    for impl in registry.manager.hook.clusterjob_backends.get_hookimpls():
        origin = registry.origins.get(impl.plugin_name, PluginOrigin())
        try:
            offered = _call_backends_hook(impl)
        except PluginError as exc:
            _skip(registry, impl.plugin, impl.plugin_name, origin, str(exc))
            continue
        names = [
            name
            for name in (getattr(backend, "name", None) for backend in offered)
            if isinstance(name, str) and name
        ]
        problems = list(
            dict.fromkeys(
                filter(None, (_backend_problem(registry, backend, names) for backend in offered))
            )
        )
        if problems:
            _skip(
                registry,
                impl.plugin,
                impl.plugin_name,
                origin,
                "; ".join(problems),
                tuple(dict.fromkeys(names)),
            )
            continue
        for backend in cast("list[ClusterjobBackend]", offered):
            registry.backends[backend.name] = backend
            registry.providers[backend.name] = impl.plugin_name


def create_plugin_manager(
    load_entrypoints: bool = True, plugins: tuple[object, ...] = ()
) -> PluginRegistry:
    """A new plugin manager with hookspecs, the given plugins and (optionally) the entry points.

    Plugins that fail are in the result's ``failures``; nothing is warned here
    (:func:`get_registry` does, once per process).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = PluginRegistry(manager)
    for plugin in plugins:
        _register(registry, plugin, manager.get_canonical_name(plugin), PluginOrigin())
    if load_entrypoints:
        _load_entry_points(registry)
    _collect_backends(registry)
    return registry


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()

#: Backends added with ``JobScript.register_backend``; they win over discovered ones.
registered_backends: dict[str, ClusterjobBackend] = {}

#: Failures already warned about: a registry rebuilt in the same process does not repeat them.
_announced: set[PluginFailure] = set()


def _announce(failures: Iterable[PluginFailure]) -> None:
    """Warn (``RuntimeWarning``) and log (logger ``clusterjob``) once about each new failure."""
    for failure in failures:
        if failure in _announced:
            continue
        _announced.add(failure)
        message = failure.announcement()
        logger.warning("%s", message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def get_registry(*, announce: bool = True) -> PluginRegistry:
    """The process-wide registry, created on first use.

    Args:
        announce: warn about plugins that failed, each once per process;
            ``clusterjob backends`` lists them itself and passes False.
    """
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = create_plugin_manager()
        if announce:
            _announce(_registry.failures)
        return _registry


def reset_plugin_manager(registry: PluginRegistry | None = None) -> None:
    """Forget discovered plugins and registered backends (the next use scans entry points
    again), or install ``registry`` instead."""
    global _registry
    with _registry_lock:
        _registry = registry
        registered_backends.clear()


def backend_names() -> list[str]:
    """Names of all available backends: discovered and registered."""
    return sorted(set(get_registry().backends) | set(registered_backends))


def get_backend(name: str) -> ClusterjobBackend:
    """The backend called ``name``: explicitly registered ones win over discovered ones."""
    if name in registered_backends:
        return registered_backends[name]
    registry = get_registry()
    if name in registry.backends:
        return registry.backends[name]
    raise BackendNotInstalledError(_why_unavailable(registry, name))


def _why_unavailable(registry: PluginRegistry, name: str) -> str:
    """Why there is no backend ``name``: its plugin failed, is disabled, or is not installed."""
    installed = f"installed backends: {', '.join(backend_names()) or 'none'}"
    failure = registry.failure_for(name)
    if failure is not None:
        return (
            f"backend {name!r} is unavailable: {failure.source} failed to load and was skipped: "
            f"{failure.reason} ({installed}; 'clusterjob backends' lists every plugin)"
        )
    disabled = registry.disabled_plugin_for(name)
    if disabled is not None:
        return (
            f"backend {name!r} is disabled: {DISABLE_VARIABLE} names its plugin {disabled!r} "
            f"(distribution {registry.disabled[disabled]}); remove it from that variable "
            f"({installed})"
        )
    message = (
        f"backend {name!r} is not installed: pip install {distribution_for(name)} ({installed})"
    )
    if registry.failures:
        message += "; plugins that failed to load: " + "; ".join(
            f"{f.source}: {f.reason}" for f in registry.failures
        )
    return message


def import_backend_distribution(module: str, distribution: str, backend_name: str) -> ModuleType:
    """Import a backend distribution's module for a documented ``clusterjob.backends.*`` path."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ImportError(
            f"clusterjob.backends.{backend_name} is provided by a separate distribution: "
            f"pip install {distribution}"
        ) from exc


def check_backend_interface(backend: object) -> None:
    """Raise TypeError/AttributeError as documented for ``JobScript.register_backend``.

    Also applied to every backend a plugin offers, when it is loaded.
    """
    if not isinstance(backend, ClusterjobBackend):
        raise TypeError(f"{backend!r} is not an instance of clusterjob.backends.ClusterjobBackend")
    for attr in ("name", "extension"):
        if not getattr(backend, attr, None):
            raise AttributeError(f"backend {backend!r} must have a non-empty {attr!r} attribute")
    missing = backend.missing_methods()
    if missing:
        raise TypeError(f"backend {backend.name!r} does not implement {'; '.join(missing)}")
