"""The marker folder of a submission, and reading the markers of many jobs in one operation.

The lines and the file format are :mod:`clusterjob.markers`; this module does
the I/O, through the transport: on this machine it reads the files directly,
on a remote host it runs one ``sh`` command for all the jobs asked about.

**Where markers live:** ``<rootdir>/<workdir>/.clusterjob-markers`` unless the
``marker_folder`` attribute says otherwise (relative to the job folder, or
absolute, or ``~/...``). The job folder is where the job script is written
and read, so the submit host and the compute nodes both see it; a folder on a
node-local disk (``/tmp``) would not work, which is why the default is not
there. A folder that cannot be created or written at submission (read-only,
full, ``~user``) costs one warning per folder and process: the job is
submitted all the same and watched by polling the scheduler. Marker files
are small and are not removed (they are the job's record of its exit code).
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clusterjob.errors import SchedulerError, TransientTransportError
from clusterjob.markers import (
    DEFAULT_MARKER_FOLDER,
    MARKER_KINDS,
    Marker,
    marker_lines,
    marker_path,
    parse_marker,
    parse_read_output,
    posix_shell,
    read_markers_command,
    task_and_kind,
)
from clusterjob.transport import Transport, get_transport

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.jobscript import JobScript

__all__ = [
    "MarkerPlan",
    "marker_folder_of",
    "marker_plan",
    "plan_markers",
    "read_markers",
    "usable_markers",
]

logger = logging.getLogger("clusterjob")

#: Jobs whose markers one remote command reads (keeps the command line far below 128 KiB).
READ_BATCH = 500

#: Folders this process warned about (one warning per folder, not one per job).
_warned: set[tuple[str | None, str]] = set()


@dataclass(frozen=True)
class MarkerPlan:
    """The markers of one submission: folder (as the submit host names it), name, script lines."""

    folder: str
    name: str
    lines: tuple[str, ...]


def marker_folder_of(jobscript: JobScript) -> str:
    """The marker folder of ``jobscript`` as the submit host names it (see the module docstring).

    On this machine, an absolute path; on a remote, absolute or relative to the home folder.
    """
    folder = jobscript.marker_folder or DEFAULT_MARKER_FOLDER
    if not folder.startswith(("/", "~")):
        folder = posixpath.join(jobscript.job_folder(), folder)
    if not jobscript.remote:
        return os.path.abspath(os.path.expanduser(folder))
    if folder == "~" or folder.startswith("~/"):
        return posixpath.normpath(folder[2:] or ".")
    return posixpath.normpath(folder)


def plan_markers(jobscript: JobScript, name: str) -> MarkerPlan | None:
    """The markers of ``jobscript`` submitted under ``name``, their folder ready; None: no markers.

    :func:`marker_plan`, with its folder created and proved writable by
    :meth:`~clusterjob.transport.Transport.probe_folders` (remembered per
    process: the folder of a thousand jobs costs one probe); None (with one
    warning per folder) where the folder cannot be created or written.
    Raises TransientTransportError when the remote cannot be reached (the
    submission could not go through either).
    """
    plan = marker_plan(jobscript, name)
    if plan is None:
        return None
    transport = get_transport(jobscript.remote, ssh=jobscript.ssh, scp=jobscript.scp)
    try:
        unwritable = transport.probe_folders([plan.folder])
    except TransientTransportError:
        raise
    except SchedulerError as exc:
        unwritable = {plan.folder: exc.stderr.strip() or str(exc)}
    return usable_markers(plan, jobscript.remote, unwritable)


def marker_plan(jobscript: JobScript, name: str) -> MarkerPlan | None:
    """The markers of ``jobscript`` submitted under ``name``, without touching their folder.

    None with ``exit_markers=False``, for a script that does not run under a
    POSIX shell, and (with one warning per folder) for a folder the job's
    shell cannot name (``~user``). Whoever submits then proves the folder
    writable (:func:`plan_markers`, or a probe in the round trip of the
    submission, see :func:`usable_markers`).
    """
    if not jobscript.exit_markers:
        return None
    first = jobscript.body.partition("\n")[0]
    shebang = first if first.startswith("#!") else f"#!{jobscript.shell}"
    if not posix_shell(shebang, jobscript.shell):
        logger.debug("job %s runs under %s: no exit markers", name, shebang)
        return None
    folder = marker_folder_of(jobscript)
    try:
        lines = marker_lines(folder, name)
    except ValueError as exc:
        _warn_once(jobscript.remote, folder, str(exc))
        return None
    return MarkerPlan(folder, name, tuple(lines))


def usable_markers(
    plan: MarkerPlan | None, remote: str | None, unwritable: Mapping[str, str]
) -> MarkerPlan | None:
    """``plan``, or None (one warning per folder) if its folder is among ``unwritable``
    (folder -> why, as :meth:`~clusterjob.transport.Transport.probe_folders` returns it)."""
    if plan is None or plan.folder not in unwritable:
        return plan
    _warn_once(remote, plan.folder, unwritable[plan.folder])
    return None


def _warn_once(remote: str | None, folder: str, reason: str) -> None:
    where = f"{folder} on {remote}" if remote else folder
    if (remote, folder) in _warned:
        logger.debug("marker folder %s still unusable (%s)", where, reason)
        return
    _warned.add((remote, folder))
    logger.warning(
        "cannot write exit markers into %s (%s): jobs there are watched by polling the scheduler "
        "instead (slower); set JobScript.marker_folder to a writable folder that the compute "
        "nodes see",
        where,
        reason,
    )


def read_markers(transport: Transport, entries: Sequence[tuple[str, str]]) -> list[Marker]:
    """The markers of ``entries`` (folder, name), in order.

    Local files are read directly; a remote costs one command per :data:`READ_BATCH` jobs.

    Raises TransientTransportError when the remote cannot be reached; a
    reader that fails otherwise counts as "no markers seen" this time.
    """
    if not transport.remote:
        listings: dict[str, set[str]] = {}
        return [_read_local(folder, name, listings) for folder, name in entries]
    markers: list[Marker] = []
    for start in range(0, len(entries), READ_BATCH):
        batch = entries[start : start + READ_BATCH]
        answer = transport.run(read_markers_command(batch), check=False)
        if answer.returncode != 0:
            logger.warning(
                "reading exit markers on %s failed (exit %d: %s); trying again next cycle",
                transport.remote,
                answer.returncode,
                answer.stderr.strip()[-300:],
            )
        markers.extend(parse_read_output(answer.stdout, len(batch)))
    return markers


def _read_local(folder: str, name: str, listings: dict[str, set[str]]) -> Marker:
    """The marker ``name`` in ``folder``; the folder is listed once per :func:`read_markers`."""
    if folder not in listings:
        try:
            listings[folder] = set(os.listdir(folder))
        except OSError:
            listings[folder] = set()
    files = listings[folder]
    start, exit_name = (f"{name}.{kind}" for kind in MARKER_KINDS)
    return parse_marker(
        _read(marker_path(folder, name, "start")) if start in files else None,
        _read(marker_path(folder, name, "exit")) if exit_name in files else None,
        _read_tasks(folder, name, files),
    )


def _read_tasks(folder: str, name: str, files: set[str]) -> dict[str, dict[str, str]]:
    """The marker files of the array tasks of ``name`` in the listing ``files``: task -> kind ->
    contents (empty for a job that is not an array)."""
    tasks: dict[str, dict[str, str]] = {}
    for file in files:
        task = task_and_kind(file[len(name) + 1 :]) if file.startswith(name + ".") else None
        text = _read(posixpath.join(folder, file)) if task is not None else None
        if task is not None and text is not None:
            tasks.setdefault(task[0], {})[task[1]] = text
    return tasks


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as marker:
            return marker.read(200)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.debug("cannot read marker %s: %s", path, exc)
        return None
