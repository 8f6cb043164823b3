"""Discovery of backends through pluggy and entry points.

The plugin manager is created on first use (importing clusterjob costs no
entry-point scan) and cached; :func:`create_plugin_manager` gives tests a
fresh one. A plugin that fails to import is reported with its distribution
name and skipped, so one broken site plugin never breaks the others. Set
``CLUSTERJOB_DISABLE_PLUGINS=name1,name2`` to skip plugins by entry-point name.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, cast

if sys.version_info >= (3, 10):
    from importlib.metadata import entry_points
else:  # entry_points(group=...) arrived in the standard library with 3.10
    from importlib_metadata import entry_points

import pluggy

from clusterjob import hookspecs
from clusterjob.errors import BackendNotInstalledError

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.backends import ClusterjobBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "KNOWN_DISTRIBUTIONS",
    "PluginRegistry",
    "backend_names",
    "check_backend_interface",
    "create_plugin_manager",
    "distribution_for",
    "get_backend",
    "get_registry",
    "import_backend_distribution",
    "registered_backends",
    "reset_plugin_manager",
]

logger = logging.getLogger("clusterjob.plugins")

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME

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


@dataclass
class PluginRegistry:
    """The loaded plugin manager and what it yielded."""

    manager: pluggy.PluginManager
    backends: dict[str, ClusterjobBackend] = field(default_factory=dict)
    #: backend name -> plugin name it came from
    providers: dict[str, str] = field(default_factory=dict)
    #: plugin/distribution -> error text, for plugins that could not be used
    failures: dict[str, str] = field(default_factory=dict)


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("CLUSTERJOB_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _load_entry_points(manager: pluggy.PluginManager, failures: dict[str, str]) -> None:
    disabled = _disabled()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist is not None else "?"
        if ep.name in disabled:
            logger.info("plugin %r (%s) disabled by CLUSTERJOB_DISABLE_PLUGINS", ep.name, dist_name)
            continue
        if manager.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
            manager.register(plugin, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
            message = f"{type(exc).__name__}: {exc}"
            failures[f"{ep.name} ({dist_name})"] = message
            warnings.warn(
                f"clusterjob plugin {ep.name!r} from distribution {dist_name!r} failed to load "
                f"and is skipped: {message}",
                RuntimeWarning,
                stacklevel=3,
            )


def create_plugin_manager(load_entrypoints: bool = True, plugins: tuple[object, ...] = ()) -> PluginRegistry:
    """A new plugin manager with hookspecs, the given plugins and (optionally) the entry points."""
    from clusterjob.backends import ClusterjobBackend

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = PluginRegistry(manager)
    for plugin in plugins:
        manager.register(plugin)
    if load_entrypoints:
        _load_entry_points(manager, registry.failures)
    manager.check_pending()
    for impl in manager.hook.clusterjob_backends.get_hookimpls():
        plugin_name = impl.plugin_name
        try:
            offered: list[object] = list(cast("Iterable[object]", impl.function() or []))
        except Exception as exc:  # noqa: BLE001 - nor may a plugin whose hook raises
            registry.failures[plugin_name] = f"clusterjob_backends() raised {type(exc).__name__}: {exc}"
            warnings.warn(f"clusterjob plugin {plugin_name!r}: {registry.failures[plugin_name]}", RuntimeWarning, stacklevel=2)
            continue
        for backend in offered:
            problem = None
            if not isinstance(backend, ClusterjobBackend):
                problem = f"returned {backend!r}, which is not a ClusterjobBackend instance"
            elif not backend.name:
                problem = f"returned {backend!r}, which has no name"
            elif backend.name in registry.backends:
                problem = (
                    f"offers backend {backend.name!r}, already provided by plugin "
                    f"{registry.providers[backend.name]!r}; keeping the first"
                )
            if problem:
                registry.failures[plugin_name] = problem
                warnings.warn(f"clusterjob plugin {plugin_name!r} {problem}", RuntimeWarning, stacklevel=2)
                continue
            assert isinstance(backend, ClusterjobBackend)
            registry.backends[backend.name] = backend
            registry.providers[backend.name] = plugin_name
    return registry


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()

#: Backends added with ``JobScript.register_backend``; they win over discovered ones.
registered_backends: dict[str, ClusterjobBackend] = {}


def get_registry() -> PluginRegistry:
    """The process-wide registry, created on first use."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = create_plugin_manager()
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
    installed = backend_names()
    message = (
        f"backend {name!r} is not installed: pip install {distribution_for(name)} "
        f"(installed backends: {', '.join(installed) or 'none'})"
    )
    if registry.failures:
        message += "; plugins that failed to load: " + "; ".join(f"{k}: {v}" for k, v in registry.failures.items())
    raise BackendNotInstalledError(message)


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
    """Raise TypeError/AttributeError as documented for ``JobScript.register_backend``."""
    from clusterjob.backends import ClusterjobBackend

    if not isinstance(backend, ClusterjobBackend):
        raise TypeError(f"{backend!r} is not an instance of clusterjob.backends.ClusterjobBackend")
    for attr in ("name", "extension"):
        if not getattr(backend, attr, None):
            raise AttributeError(f"backend {backend!r} must have a non-empty {attr!r} attribute")
    for method in ClusterjobBackend.required_methods:
        if getattr(type(backend), method) is getattr(ClusterjobBackend, method):
            raise TypeError(f"backend {backend.name!r} does not implement {method}()")

