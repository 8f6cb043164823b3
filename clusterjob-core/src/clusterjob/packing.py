"""Packing jobs into scheduler arrays: which jobs may share one, and the array's own script.

Why: sites cap the number of queued jobs and ask for arrays, while a parameter
sweep is naturally written as many jobs with their own names. ``submit_all``
keeps the jobs as they are and submits them as one array per group of jobs
the scheduler would treat alike.

**Which jobs go together** (:func:`pack_key`): the same backend, submit host,
job folder, shell and marker settings, and the same header lines once the
job name and the stdout/stderr paths are set aside (whether those paths are
set must agree too). A job is never packed when its backend cannot pack
(:meth:`~clusterjob.backends.ClusterjobBackend.can_pack`, e.g. ``local``),
when it is an array already, when its shell is not a POSIX shell (the
array's script is one), or when its stdout/stderr paths hold ``%`` or ``$``:
those are the scheduler's patterns (``%j``, ``$JOB_ID``), which the array's
script could not expand as the scheduler would.

**The array's script** (:func:`dispatcher_body`): the group's header lines
with the backend's array option for tasks ``1..N`` and a common name
(:func:`array_name`), then a ``case`` on the task's index that, for task
``k``, sends stdout/stderr to job ``k``'s own files and ``exec``\\ s job
``k``'s own script, which was written as ``submit()`` writes it (its headers
are comments there), with the scheduler's job-name variable set to job
``k``'s name, so that ``$CLUSTERJOB_NAME`` is the job's own, as without
packing (``$CLUSTERJOB_ID`` is the scheduler's ID of the task). Job ``k``'s
exit markers are named ``<tag>.<k>``: the marker lines append the task index
by themselves (:mod:`clusterjob.markers`).
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import shlex
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clusterjob.markers import posix_shell, script_path
from clusterjob.rendering import SubmissionContext

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.backends import ClusterjobBackend
    from clusterjob.jobscript import JobScript

__all__ = [
    "ARRAY_FOLDER",
    "array_job",
    "array_name",
    "chunks",
    "dispatcher_body",
    "pack_key",
]

#: Where, inside the group's job folder, the array's own script is written.
ARRAY_FOLDER = ".clusterjob-arrays"

#: The resources a packed job keeps for itself; every other one the array shares.
OWN_RESOURCES = ("jobname", "stdout", "stderr")

#: Characters of the schedulers' file name patterns (``%j``, ``%A``, ``$JOB_ID``, ``$PBS_JOBID``).
_SCHEDULER_PATTERN = re.compile(r"[%$]")

#: The name an array gets when its jobs' names share no prefix.
DEFAULT_ARRAY_NAME = "clusterjob-array"


def pack_key(job: JobScript, backend: ClusterjobBackend) -> tuple[Any, ...] | None:
    """What ``job`` must share with the other jobs of its array; None: it is submitted alone."""
    if not backend.can_pack() or backend.array_task_ids(job) is not None:
        return None
    if not posix_shell(f"#!{job.shell}", job.shell):
        return None
    outputs = tuple(job.resources.get(key) for key in ("stdout", "stderr"))
    if any(value and _SCHEDULER_PATTERN.search(str(value)) for value in outputs):
        return None
    return (
        backend.name,
        id(backend),
        job.remote,
        job.ssh,
        job.scp,
        job.job_folder(),
        job.shell,
        job.exit_markers,
        job.marker_folder,
        tuple(bool(value) for value in outputs),
        _shared_headers(job, backend, outputs),
    )


def _shared_headers(
    job: JobScript, backend: ClusterjobBackend, outputs: tuple[Any, ...]
) -> tuple[Any, ...] | str:
    """What decides the header lines of ``job`` but for its own resources.

    Header lines are made from the resources alone (and the shell, in the
    key already), so equal resources give equal lines: those are the key,
    without rendering 1,000 headers. A resource with a ``{placeholder}``
    depends on the job's other values: then the rendered lines are the key.
    """
    shared = tuple(
        sorted(
            (key, repr(value)) for key, value in job.resources.items() if key not in OWN_RESOURCES
        )
    )
    if not any("{" in key or "{" in value for key, value in shared):
        return shared
    stand_in = _with_own_resources(job, "cj", *("cj" if value else None for value in outputs))
    return stand_in.render_script("", jobscript=True, context=_context_for(backend))


def _context_for(backend: ClusterjobBackend) -> SubmissionContext | None:
    """An empty submission context, or None for a backend whose headers take none."""
    return SubmissionContext() if backend.headers_take_context() else None


def _with_own_resources(
    job: JobScript, name: str, stdout: str | None, stderr: str | None
) -> JobScript:
    """A copy of ``job`` with its name and stdout/stderr replaced (None: not set)."""
    stand_in = copy.copy(job)
    resources: OrderedDict[str, Any] = OrderedDict(job.resources)
    resources["jobname"] = name
    for key, value in (("stdout", stdout), ("stderr", stderr)):
        if value is None:
            resources.pop(key, None)
        else:
            resources[key] = value
    object.__setattr__(stand_in, "resources", resources)
    return stand_in


def chunks(members: Sequence[int], size: int) -> list[list[int]]:
    """``members`` in arrays of at most ``size``; a last chunk of one job is submitted alone."""
    return [list(members[start : start + size]) for start in range(0, len(members), size)]


def array_name(names: Sequence[str]) -> str:
    """A name for the array of jobs ``names``: their common prefix without a trailing ``-_.``."""
    prefix = os.path.commonprefix(list(names)).rstrip("-_. ")
    return prefix or DEFAULT_ARRAY_NAME


def array_job(
    first: JobScript, backend: ClusterjobBackend, tasks: int, name: str, tag: str
) -> JobScript:
    """The array's own job: ``first``'s settings and shared resources, for tasks ``1..tasks``.

    Its output goes to ``/dev/null`` where the jobs set their own (the
    ``case`` redirects each task before anything is written), else to the
    scheduler's default file of an array task.
    """
    outputs = ("/dev/null" if first.resources.get(key) else None for key in ("stdout", "stderr"))
    job = _with_own_resources(first, name, *outputs)
    resources = backend.array_resources(dict(job.resources), 1, tasks)
    object.__setattr__(job, "resources", OrderedDict(resources))
    object.__setattr__(job, "body", "")
    object.__setattr__(job, "aux_scripts", {})
    job.filename = posixpath.join(ARRAY_FOLDER, f"{name}.{tag}.{backend.extension}")
    return job


def dispatcher_body(members: Sequence[JobScript], backend: ClusterjobBackend) -> str:
    """The body of the array's script: task ``k`` runs ``members[k-1]``'s own script."""
    variable = backend.array_task_variable
    workdir = backend.job_vars.get("CLUSTERJOB_WORKDIR")
    lines = [
        f"# clusterjob: {len(members)} jobs packed by submit_all; task k runs job k's own script",
        f'case "${{{variable}:-}}" in',
    ]
    name_variable = backend.job_vars.get("CLUSTERJOB_NAME")
    for task, job in enumerate(members, start=1):
        own_name = (
            f"{name_variable}={shlex.quote(str(job.resources['jobname']))} "
            if name_variable
            else ""
        )
        lines.append(
            f"{task}) {_redirections(job, backend, workdir)}{own_name}exec {_script(job)} ;;"
        )
    lines += [
        f'*) echo "clusterjob: array task ${{{variable}:-}} has no job" >&2; exit 1 ;;',
        "esac",
        "",
    ]
    return "\n".join(lines)


def _script(job: JobScript) -> str:
    """The job's own script, as the array task's shell names it (quoted, absolute or ``$HOME``)."""
    folder = job.job_folder() or "."
    if not job.remote:
        folder = os.path.abspath(os.path.expanduser(folder))
    return script_path(folder) + "/" + shlex.quote(job.script_filename())


def _redirections(job: JobScript, backend: ClusterjobBackend, workdir: str | None) -> str:
    """``exec >out 2>err;`` for the stdout/stderr the job sets ('' if neither)."""
    stdout, stderr = (job.resources.get(key) for key in ("stdout", "stderr"))
    words = []
    if stdout:
        words.append(">" + _output_path(str(stdout), workdir))
    if stderr:
        words.append("2>" + _output_path(str(stderr), workdir))
    elif stdout and backend.stderr_follows_stdout:
        words.append("2>&1")
    return f"exec {' '.join(words)}; " if words else ""


def _output_path(path: str, workdir: str | None) -> str:
    """``path`` as the scheduler reads an output path: a relative one from the submit folder."""
    if path.startswith("/"):
        return shlex.quote(path)
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    folder = f'"${{{workdir}:-.}}"' if workdir else "."
    return folder + "/" + shlex.quote(path)
