"""Every extension point of clusterjob, in one place.

A plugin is a module (usually the top-level module of a ``clusterjob-<name>``
distribution) registered under the entry-point group ``clusterjob``::

    [project.entry-points.clusterjob]
    mysite = "clusterjob_mysite"

and implementing some of the hooks below with ``@clusterjob.hookimpl``.
Scheduler work lives in :class:`~clusterjob.backends.ClusterjobBackend`
methods, not in hooks: a hook call goes to every plugin, a job goes to one
scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.backends import ClusterjobBackend

PROJECT_NAME = "clusterjob"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def clusterjob_backends() -> list[ClusterjobBackend]:  # type: ignore[empty-body]
    """Return the backend instances this plugin provides.

    Called once, when the plugin manager is first used (by
    ``JobScript.backends``, or the first job that names a backend). Each
    backend is available under its ``name``; two plugins offering the same
    name is an error reported with both plugin names, and the first one
    loaded is kept.
    """


@hookspec
def clusterjob_job_submitted(result: AsyncResult) -> None:
    """Called after a job was submitted and its result cached.

    Not called when a cached result is returned instead of submitting. A site
    plugin may use it to log submissions or notify a dashboard. Exceptions are
    logged and do not affect the submission.
    """


@hookspec
def clusterjob_job_finished(result: AsyncResult) -> None:
    """Called once when a job is first seen finished (COMPLETED, CANCELLED or FAILED).

    Runs after the epilogue, at most once per result (the flag is cached).
    ``result.status`` holds the final status. Exceptions are logged and ignored.
    """
