"""Exit markers: lines that make a job record its own start and exit status in files.

Why: asking the scheduler is what HPC sites count against workflow tools
(``squeue``/``sacct`` every few seconds), and the scheduler is slow to tell a
finished job anyway. A job that writes ``<name>.start`` when it starts and
``<name>.exit`` when it ends can be watched by reading two small files; the
scheduler is needed only now and then, and for what a job cannot report
itself (a kill by walltime, ``scancel``/``qdel``, the OOM killer, a node that
died). This module renders those lines and reads the files; it does no I/O.
:mod:`clusterjob.submission` puts the lines into the submitted script and
:mod:`clusterjob.polling` reads the files.

**The lines** (POSIX ``sh``; tested in sh, bash, dash, ksh, ksh93, mksh, zsh and
busybox ash):

* the exit marker is written from an ``EXIT`` trap, so it is written when
  the script ends, when its body calls ``exit``, and when ``set -e`` stops it:
  ``exit N`` (the script's exit status);
* ``HUP INT TERM XCPU USR1 USR2`` are trapped: the marker says ``signal
  TERM`` (the scheduler's word is then asked for: a ``scancel``, a walltime
  kill), and the shell ends as it would have without markers (it dies of the
  same signal; mksh, which never dies of a signal, exits 128 + N either way),
  so the scheduler sees what it would have seen;
* every marker is written to a temporary file and renamed into place, so a
  reader never sees half of one (an incomplete marker, e.g. from a full
  disk, counts as "ask the scheduler");
* the marker path is quoted with :func:`shlex.quote` (``$HOME`` is the only
  thing the shell expands, for a folder given relative to the home folder).

A SIGKILL (``KillWait`` after a walltime, the OOM killer of the whole job, a
node failure) leaves no exit marker: the scheduler's word decides. A body
that ends with ``exec program``, or sets its own ``EXIT`` trap, replaces the
shell or the trap and leaves no exit marker either: such a job is watched
through the scheduler, as without markers (slower, still correct).

**Which jobs get markers:** those whose script runs under a POSIX shell: the
shebang (the body's own, or ``#!{shell}``) and the ``shell`` attribute (which
SGE passes as ``-S``) must both name sh, bash, dash, ksh, mksh, zsh or ash,
directly or through ``env``. A body with its own ``#!/usr/bin/env python`` or
``#!/bin/tcsh`` gets no markers and is watched by polling the scheduler.

**Where the lines go:** right after the leading block of the script (the
shebang, the scheduler's directives, and every comment and blank line before
the first command): SLURM stops reading ``#SBATCH`` lines at the first
command, so a directive the user wrote in the body must stay above them.
``render_script()`` and ``str(job)`` do not show them; only the submitted
file has them.

**Naming:** a marker belongs to one submission: its name is the submission's
tag (a fresh one for every ``submit``, ``retry`` and ``force``), so a
resubmission never reads the marker of an earlier run. :func:`task_marker_name`
is the hook for array jobs: each task writes ``<name>.<task id>.exit``.

**Arrays:** every task writes its own ``<name>.<task id>.start``/``.exit``,
and the reader returns them with the job's (:attr:`Marker.tasks`, still one
operation per host). Where the backend knows the array's task IDs at
submission (``ClusterjobBackend.array_task_ids``, from the resource of the
backend's ``array_option``: SLURM ``--array``, Grid Engine and TORQUE ``-t``,
PBS Pro ``-J``; see :func:`parse_task_ranges`), :func:`array_marker` makes the
tasks' markers one marker of the whole array, read like a single job's: every
task exited -> its exit code is the first non-zero task exit code in task
order (0 if all exited 0: COMPLETED, else FAILED); any task started ->
RUNNING; a task whose marker records a signal or is incomplete -> the
scheduler is asked at once; a task that never leaves a marker -> the
scheduler decides after the same grace as for a single job (but an array of
which a task exited non-zero is never COMPLETED). An array whose
task IDs are unknown (other backends, a spec that cannot be read) is watched
through the scheduler. ``AsyncResult.task_status()`` reads the task markers
first and asks the scheduler only about tasks without an exit code.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MARKER_FOLDER",
    "MARKER_KINDS",
    "MAX_ARRAY_TASKS",
    "READER_NAME",
    "TRAPPED_SIGNALS",
    "Marker",
    "array_marker",
    "insert_marker_lines",
    "marker_lines",
    "marker_path",
    "parse_marker",
    "parse_read_output",
    "parse_task_ranges",
    "posix_shell",
    "read_markers_command",
    "remove_marker_lines",
    "script_path",
    "task_and_kind",
    "task_marker_name",
]

#: The folder, inside the job's ``rootdir/workdir``, where markers go unless
#: ``marker_folder`` says otherwise: the job folder is on a file system the
#: submit host and the compute nodes both see (the job script is read there).
DEFAULT_MARKER_FOLDER = ".clusterjob-markers"

#: The two files of a job: ``<name>.start`` and ``<name>.exit``.
MARKER_KINDS = ("start", "exit")

#: Signals the job's shell traps to record them (their default action ends the
#: job; a body that traps one itself keeps its own handler).
TRAPPED_SIGNALS = ("HUP", "INT", "TERM", "XCPU", "USR1", "USR2")

#: Interpreters whose scripts the marker lines can go into.
POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ksh", "ksh93", "mksh", "zsh", "ash"})

#: The task ID of an array task, from the variables of SLURM (and its TORQUE
#: wrappers), TORQUE, PBS Pro, LSF (0 outside arrays) and Grid Engine
#: (``undefined`` outside arrays): each task writes ``<name>.<task>.*``, so a
#: task never writes the markers of the whole array.
_TASK_ID_LINES = (
    "_cj_task=${SLURM_ARRAY_TASK_ID:-${PBS_ARRAYID:-${PBS_ARRAY_INDEX:-${LSB_JOBINDEX:-}}}}",
    "case ${SGE_TASK_ID:-undefined} in undefined) ;; *) _cj_task=$SGE_TASK_ID ;; esac",
    'if [ "$_cj_task" = 0 ]; then _cj_task=; fi',
)

#: The first and the last of the marker lines.
MARKER_COMMENT = "# clusterjob: the job records its start and exit status (see clusterjob.markers)"
START_LINE = "_cj_mark start start"

#: ``$0`` of the remote marker reader (shows in ``ps`` and in error messages).
READER_NAME = "clusterjob-markers"

#: Prints ``<index> <kind> <content>`` for every marker file that exists;
#: arguments are ``-d FOLDER`` (the folder of the names that follow) and names.
_READER_SCRIPT = """\
d=. i=0 next=
for a do
  if [ -n "$next" ]; then d=$a next=; continue; fi
  if [ "$a" = -d ]; then next=1; continue; fi
  i=$((i + 1))
  for k in start exit; do
    [ -f "$d/$a.$k" ] || continue
    printf '%s %s ' "$i" "$k"; head -c 200 "$d/$a.$k" | tr '\\n' ' '; echo
  done
  for t in "$d/$a".*.start "$d/$a".*.exit; do
    [ -f "$t" ] || continue
    l=; { IFS= read -r l; } 2>/dev/null < "$t"
    printf '%s task %s %s\n' "$i" "${t#"$d/$a".}" "$l"
  done
done
"""

#: More task IDs than this are not recorded (the array is watched through the scheduler).
MAX_ARRAY_TASKS = 100_000

_EXIT = re.compile(r"^exit (\d{1,3})$")
_TASK_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")
_SIGNAL = re.compile(r"^signal ([A-Z0-9]+)$")


@dataclass(frozen=True)
class Marker:
    """What a job's marker files say.

    Attributes:
        started: the start marker exists.
        exit_code: the exit status the job's shell recorded (None: no exit marker, or one
            that records a signal or cannot be read).
        signal: the trapped signal the job died of (``"TERM"``), if its marker says so.
        incomplete: an exit marker exists but says neither (the scheduler decides).
        array: tasks of an array job wrote markers of their own (``<name>.<task>.start``):
            their aggregate (:func:`array_marker`) says how the array is doing.
        tasks: the markers of those tasks, (task ID, marker) in task order.
        task_failure: in an array's aggregate, the first non-zero exit code of the tasks
            that exited (None: none did): the array failed, whatever else is unknown.
    """

    started: bool = False
    exit_code: int | None = None
    signal: str | None = None
    incomplete: bool = False
    array: bool = False
    tasks: tuple[tuple[str, Marker], ...] = ()
    task_failure: int | None = None

    @property
    def needs_scheduler(self) -> bool:
        """Whether only the scheduler can name how the job ended (a signal, a broken marker)."""
        return self.signal is not None or self.incomplete


def posix_shell(shebang: str, shell: str) -> bool:
    """Whether a script with first line ``shebang`` and ``shell`` runs under a POSIX shell."""
    return shebang.startswith("#!") and all(
        _interpreter(words) in POSIX_SHELLS for words in (shebang[2:].split(), shell.split())
    )


def _interpreter(words: Sequence[str]) -> str:
    """The interpreter's name in a shebang's words (``/usr/bin/env -S bash -l`` -> ``bash``)."""
    if not words:
        return ""
    name = posixpath.basename(words[0])
    if name == "env":
        rest = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
        return posixpath.basename(rest[0]) if rest else ""
    return name


def task_marker_name(name: str, task_id: str | None = None) -> str:
    """The marker name of task ``task_id`` of an array job (a hook for ``submit_all``)."""
    return name if task_id is None else f"{name}.{task_id}"


def marker_path(folder: str, name: str, kind: str) -> str:
    """The file of marker ``kind`` (``start``/``exit``) of ``name`` in ``folder``."""
    return posixpath.join(folder, f"{name}.{kind}")


def script_path(folder: str) -> str:
    """``folder`` as the job's shell writes it: quoted; a relative or ``~/`` one under ``$HOME``.

    The job does not start in the submit folder everywhere (PBS and SGE
    start it in the home folder), so a relative path is taken from the home
    folder, as an SSH command's is. Raises ValueError for ``~user`` (the
    job's shell would have to expand it).
    """
    if folder.startswith("~") and not folder.startswith("~/") and folder != "~":
        raise ValueError(f"marker folder {folder!r}: '~user' paths are not supported")
    if folder.startswith("/"):
        return shlex.quote(folder)
    relative = folder[1:].lstrip("/") if folder.startswith("~") else folder
    return '"$HOME"/' + shlex.quote(relative or ".")


def marker_lines(folder: str, name: str) -> list[str]:
    """The lines that make the job write markers ``name``.start/.exit into ``folder``."""
    prefix = script_path(folder) + "/" + shlex.quote(name)
    lines = [
        MARKER_COMMENT,
        *_TASK_ID_LINES,
        f"_cj_marker={prefix}" + "${_cj_task:+.$_cj_task}",
        (
            '_cj_mark() { { printf \'%s\\n\' "$2" > "$_cj_marker.$1.$$" && '
            'mv -f "$_cj_marker.$1.$$" "$_cj_marker.$1"; } 2>/dev/null || :; }'
        ),
        "trap '_cj_rc=$?; _cj_mark exit \"exit $_cj_rc\"; exit $_cj_rc' EXIT",
    ]
    for signal in TRAPPED_SIGNALS:
        lines.append(
            f'trap \'trap - EXIT {signal}; _cj_mark exit "signal {signal}"; '
            f"kill -{signal} $$; exit 1' {signal}"
        )
    lines.append(START_LINE)
    return lines


def remove_marker_lines(script: str) -> str:
    """``script`` without the lines of :func:`marker_lines`: what ``render_script()`` shows."""
    lines = script.split("\n")
    if MARKER_COMMENT not in lines:
        return script
    first = lines.index(MARKER_COMMENT)
    last = lines.index(START_LINE, first)
    return "\n".join(lines[:first] + lines[last + 1 :])


def insert_marker_lines(script: str, lines: Sequence[str]) -> str:
    """``script`` with ``lines`` after its leading shebang, directives, comments and blank lines."""
    script_lines = script.split("\n")
    position = 1
    while position < len(script_lines) and (
        not script_lines[position].strip() or script_lines[position].lstrip().startswith("#")
    ):
        position += 1
    return "\n".join([*script_lines[:position], *lines, *script_lines[position:]])


def parse_task_ranges(spec: object) -> list[str] | None:
    """The task IDs of an array spec (``1-10``, ``0-15:4``, ``1,3,5-7``; a ``%N`` throttle is
    ignored), sorted by number; None for a spec it cannot read or of more than
    :data:`MAX_ARRAY_TASKS` tasks (judging the spec is the scheduler's business).
    """
    ids: set[int] = set()
    for part in str(spec).partition("%")[0].split(","):
        match = _TASK_RANGE.match(part.strip())
        if match is None:
            return None
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if last < first or step < 1 or len(ids) + (last - first) // step >= MAX_ARRAY_TASKS:
            return None
        ids.update(range(first, last + 1, step))
    return [str(task) for task in sorted(ids)] or None


def task_and_kind(suffix: str) -> tuple[str, str] | None:
    """``("7", "exit")`` for the file name suffix ``7.exit`` of a task's marker; None otherwise."""
    task, _, kind = suffix.rpartition(".")
    return (task, kind) if task.isdigit() and kind in MARKER_KINDS else None


def array_marker(task_ids: Sequence[str], tasks: Sequence[tuple[str, Marker]]) -> Marker:
    """The marker of a whole array of tasks ``task_ids``, from the markers of its ``tasks``.

    Every task exited: the exit code is the first non-zero one in the order of
    ``task_ids`` (0: all exited 0). A task's signal or incomplete marker is the
    array's (the scheduler is asked); a task without a marker leaves the exit
    code unknown (the scheduler decides after the grace, as for a single job; a
    COMPLETED there still fails the array if a task exited non-zero:
    :attr:`Marker.task_failure`).
    """
    by_task = dict(tasks)
    known = [by_task.get(task, Marker()) for task in task_ids]
    codes = [marker.exit_code for marker in known]
    exit_code = None
    if known and all(code is not None for code in codes):
        exit_code = next((code for code in codes if code != 0), 0)
    return Marker(
        started=any(marker.started for marker in known),
        exit_code=exit_code,
        signal=next((marker.signal for marker in known if marker.signal), None),
        incomplete=any(marker.incomplete for marker in known),
        task_failure=next((code for code in codes if code), None),
    )


def _task_markers(files: dict[str, dict[str, str]]) -> tuple[tuple[str, Marker], ...]:
    """(task ID, marker) in task order, from task ID -> kind -> file contents."""
    return tuple(
        (task, parse_marker(kinds.get("start"), kinds.get("exit")))
        for task, kinds in sorted(files.items(), key=lambda item: int(item[0]))
    )


def parse_marker(
    start: str | None,
    exit_text: str | None,
    tasks: dict[str, dict[str, str]] | None = None,
) -> Marker:
    """A :class:`Marker` from the contents of the start and exit files (None: no such file).

    ``tasks``: the files of array tasks, task ID -> kind -> contents (see :attr:`Marker.tasks`).
    """
    if tasks:
        return Marker(array=True, tasks=_task_markers(tasks))
    if exit_text is None:
        return Marker(started=start is not None)
    text = exit_text.strip()
    code = _EXIT.match(text)
    if code is not None and int(code.group(1)) <= 255:
        return Marker(started=True, exit_code=int(code.group(1)))
    signal = _SIGNAL.match(text)
    if signal is not None:
        return Marker(started=True, signal=signal.group(1))
    return Marker(started=True, incomplete=True)


def read_markers_command(entries: Sequence[tuple[str, str]]) -> list[str]:
    """One ``sh`` command that prints the markers of ``entries`` (folder, name), for a remote host.

    Folders and names are positional arguments, never shell text. Read its
    output with :func:`parse_read_output`.
    """
    argv = ["sh", "-c", _READER_SCRIPT, READER_NAME]
    folder = None
    for entry_folder, name in entries:
        if entry_folder != folder:
            argv += ["-d", entry_folder]
            folder = entry_folder
        argv.append(name)
    return argv


def parse_read_output(stdout: str, count: int) -> list[Marker]:
    """The markers of the ``count`` entries given to :func:`read_markers_command`, from its stdout.

    Lines that are not the reader's (a login banner) are skipped.
    """
    found: dict[int, dict[str, str]] = {}
    tasks: dict[int, dict[str, dict[str, str]]] = {}
    for line in stdout.splitlines():
        words = line.split(" ", 2)
        if len(words) < 2 or not words[0].isdigit():
            continue
        text = words[2] if len(words) > 2 else ""
        if words[1] in MARKER_KINDS:
            found.setdefault(int(words[0]), {})[words[1]] = text
        elif words[1] == "task":
            suffix, _, content = text.partition(" ")
            task = task_and_kind(suffix)
            if task is not None:
                tasks.setdefault(int(words[0]), {}).setdefault(task[0], {})[task[1]] = content
    markers = []
    for i in range(1, count + 1):
        files = found.get(i, {})
        markers.append(parse_marker(files.get("start"), files.get("exit"), tasks.get(i)))
    return markers
