"""The SLURM commands clusterjob runs to ask about jobs, and how their output is read.

Each command's output is read as SLURM prints it: parsers get the exit code,
stdout and stderr, so "no such job" is never confused with "could not ask",
and nothing is echoed into the output to tell them apart. Job IDs, tags and
time windows reach a shell only as positional parameters (``sh -c SCRIPT
clusterjob-slurm ARG...``), never by building shell text from data.

* Status, first query: ``squeue`` (the controller's records, finished jobs
  included until ``MinJobAge``).
* Status of the jobs it does not list: ``sacct``; where accounting storage is
  disabled or down (``sacct`` fails), ``sacct -c`` (the job completion log)
  instead. The two print records of different widths (four fields, three),
  which tells them apart.
* Tag lookup: ``squeue`` (``JobID|Comment``), then, for a job that left the
  queue, ``scontrol show config`` (does accounting store job comments?)
  followed by ``sacct`` (``JobID|Comment``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from clusterjob.backends import CommandResult
from clusterjob.backends.output import clean_output
from clusterjob.status import FAILED

from clusterjob_slurm.states import STATUS_MAPPING, Record, aggregate, parse_records

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult

__all__ = [
    "MAX_LISTED_IDS",
    "SACCT_FIELDS",
    "SCRIPT_NAME",
    "SQUEUE_FORMAT",
    "accounting_stores_comments",
    "accounting_tag_command",
    "exit_codes",
    "expand_tasks",
    "finished_statuses",
    "queue_statuses",
    "queue_tag_command",
    "sacct_command",
    "squeue_command",
    "tag_hits",
    "task_status_command",
]

#: ``$0`` of the helper scripts (shows in ``ps`` and in error messages).
SCRIPT_NAME = "clusterjob-slurm"

#: Up to this many job IDs are listed with ``-j``; more are selected by user
#: (squeue) or submission time (sacct), to stay far below the kernel's 128 KiB
#: limit on one argument (and on the whole command line sent over SSH).
MAX_LISTED_IDS = 2000

#: ``squeue`` record: job ID (``123``, ``123_4``, ``123_[5-9]``), long state, reason.
SQUEUE_FORMAT = "%i|%T|%r"
#: ``sacct`` record in the same shape (Reason is ``None`` in sacct; ExitCode for humans).
SACCT_FIELDS = "JobID,State,Reason,ExitCode"
#: ``sacct -c`` understands fewer fields (so its records have three, not four).
JOBCOMP_FIELDS = "JobID,State,ExitCode"

#: Slack added to the sacct time window (clock skew between us and the cluster).
WINDOW_MARGIN = 3600

#: Final states from accounting; the job completion log if accounting storage
#: is disabled or unreachable. ``"$@"``: sacct selection options.
_SACCT_SCRIPT = (
    'sacct -X -n -P -o @SACCT_FIELDS@ "$@" || exec sacct -c -n -P -o @JOBCOMP_FIELDS@ "$@"'
)

#: Every task of array job $1: the controller's records (squeue writes ``queue|``
#: before each, as its format says), then accounting's.
_TASKS_SCRIPT = (
    "squeue --states=all -r -h -o 'queue|@SQUEUE_FORMAT@' -j \"$1\"; "
    'sacct -X -n -P -o @SACCT_FIELDS@ -j "$1"'
)

#: The jobs of this user in the controller, with their comments.
_QUEUE_TAG_SCRIPT = "exec squeue --states=all -h -o '%i|%k' -u \"$(id -u)\""

#: Whether accounting stores job comments, then this user's jobs in accounting, with their comments.
_ACCOUNTING_TAG_SCRIPT = (
    "scontrol show config && "
    'exec sacct -X -n -P -o JobID,Comment -u "$(id -u)" -S 2000-01-01T00:00:00 -E now'
)
#: The lines of ``scontrol show config`` that say accounting keeps job comments.
_STORES_COMMENTS = re.compile(
    r"^\s*(?:AccountingStoreFlags\s*=.*\bjob_comment\b|AccountingStoreJobComment\s*=\s*yes\b)",
    re.IGNORECASE | re.MULTILINE,
)


def _fill(script: str) -> str:
    """The script text with the (constant) formats filled in."""
    return (
        script.strip()
        .replace("@SQUEUE_FORMAT@", SQUEUE_FORMAT)
        .replace("@SACCT_FIELDS@", SACCT_FIELDS)
        .replace("@JOBCOMP_FIELDS@", JOBCOMP_FIELDS)
        + "\n"
    )


def _shell(script: str, *args: str) -> list[str]:
    return ["sh", "-c", _fill(script), SCRIPT_NAME, *args]


def squeue_command(job_ids: Sequence[str]) -> list[str]:
    """The controller's records of ``job_ids`` (all states, so recently finished jobs too).

    ``squeue -j`` fails ("Invalid job id specified") only when *one* ID is
    given and it has been purged; with several IDs, purged ones are left out.
    Either way a job missing from the output is "not in the queue".
    """
    base = ["squeue", "--states=all", "--noheader", f"--format={SQUEUE_FORMAT}"]
    if len(job_ids) > MAX_LISTED_IDS:
        return ["sh", "-c", 'exec "$@" -u "$(id -u)"', SCRIPT_NAME, *base]
    return [*base, "--jobs=" + ",".join(job_ids)]


def sacct_selection(runs: Sequence[AsyncResult], now: float | None = None) -> list[str]:
    """``sacct`` options selecting ``runs``: their IDs, or (many runs) the time since the oldest
    was submitted."""
    job_ids = [str(run.job_id) for run in runs]
    if len(job_ids) <= MAX_LISTED_IDS:
        return ["-j", ",".join(job_ids)]
    submitted = [run.submitted_at for run in runs]
    if any(t is None for t in submitted):
        return [
            "-S",
            "2000-01-01T00:00:00",
            "-E",
            "now",
        ]  # an adopted job without a time: all history
    age = (time.time() if now is None else now) - min(t for t in submitted if t is not None)
    return ["-S", f"now-{int(age) + WINDOW_MARGIN}seconds", "-E", "now"]


def sacct_command(runs: Sequence[AsyncResult]) -> list[str]:
    """Final states of ``runs`` from accounting, falling back to the job completion log."""
    return _shell(_SACCT_SCRIPT, *sacct_selection(runs))


def task_status_command(job_id: str) -> list[str]:
    """Every task of array ``job_id``: the controller's view and accounting's."""
    return _shell(_TASKS_SCRIPT, job_id)


def queue_tag_command() -> list[str]:
    """This user's jobs in the controller, as ``JobID|Comment`` lines."""
    return _shell(_QUEUE_TAG_SCRIPT)


def accounting_tag_command() -> list[str]:
    """``scontrol show config``, then this user's jobs in accounting as ``JobID|Comment`` lines."""
    return _shell(_ACCOUNTING_TAG_SCRIPT)


# -- reading the output ------------------------------------------------------


def _records_by_width(response: str) -> tuple[str, str]:
    """(four-field ``sacct`` records, three-field ``sacct -c`` records) of :func:`sacct_command`."""
    lines = clean_output(response).splitlines()
    accounting = [line for line in lines if line.count("|") == SACCT_FIELDS.count(",")]
    jobcomp = [line for line in lines if line.count("|") == JOBCOMP_FIELDS.count(",")]
    return "\n".join(accounting), "\n".join(jobcomp)


def _is_composite(record: Record) -> bool:
    return record.job_id != record.base_id


def _own_ids(record: Record) -> list[str]:
    """The IDs a composite record speaks for: each task of ``123_[5-7]`` (``123_5`` ...), or
    its own (``123_4``, ``123+1``)."""
    if record.task is not None and record.task.startswith("["):
        return [f"{record.base_id}_{task}" for task in expand_tasks(record.task)]
    return [record.job_id]


def _group(records: Sequence[Record]) -> tuple[dict[str, list[Record]], dict[str, list[Record]]]:
    """(records per submitted job (base ID), records per task or het component ID).

    A folded record of pending tasks counts for each of its tasks, so a task
    asked about by its own ID (``123_4``, as a job packed by ``submit_all``
    is known) is found in ``123_[2-5,7]``.
    """
    by_base: dict[str, list[Record]] = {}
    by_part: dict[str, list[Record]] = {}
    for record in records:
        by_base.setdefault(record.base_id, []).append(record)
        if _is_composite(record):
            for part_id in _own_ids(record):
                by_part.setdefault(part_id, []).append(record)
    return by_base, by_part


def _statuses(
    grouped: Mapping[str, Sequence[Record]], mapping: Mapping[str, int]
) -> dict[str, int | None]:
    return {
        job_id: aggregate(r.status_in(mapping) for r in records)
        for job_id, records in grouped.items()
    }


def queue_statuses(
    response: str, mapping: Mapping[str, int] = STATUS_MAPPING
) -> dict[str, int | None]:
    """Status per job ID from :func:`squeue_command` output, states read by ``mapping``.

    The controller forgets each array task ``MinJobAge`` after it ended,
    while its siblings may still run: a task that failed early can be gone
    when the last one completes. So an array (or het job) whose visible
    records are all finished is FAILED if one of them failed, and otherwise
    unknown here (None): accounting, which keeps every task, decides. A
    task's (or component's) own record is its status, whatever its siblings'.
    """
    by_base, by_part = _group(parse_records(response))
    statuses = _statuses(by_part, mapping)
    for job_id, status in _statuses(by_base, mapping).items():
        composite = any(_is_composite(r) for r in by_base[job_id])
        if composite and status is not None and status >= 0 and status != FAILED:
            status = None
        statuses[job_id] = status
    return statuses


_ARRAY_MARK = re.compile(r"Unknown type ArrayJobId: *(\d+)")


def finished_statuses(
    result: CommandResult, mapping: Mapping[str, int] = STATUS_MAPPING
) -> dict[str, int | None]:
    """Status per job ID from the result of :func:`sacct_command`, states read by ``mapping``.

    Accounting has every task of an array, so its records are complete. The
    job completion log (``sacct -c``) lists array tasks under their raw IDs,
    which cannot be traced back to the array (SLURM 22.05 reports the array
    fields as "Unknown type ArrayJobId: N" on stderr); for an array it can
    only prove FAILED. A job without records is unknown: None, never COMPLETED.
    """
    accounting, jobcomp = _records_by_width(result.stdout)
    by_base, by_part = _group(parse_records(accounting))
    statuses = {**_statuses(by_part, mapping), **_statuses(by_base, mapping)}
    arrays = set(_ARRAY_MARK.findall(clean_output(result.stderr)))
    by_base, by_part = _group(parse_records(jobcomp))
    for job_id, status in {**_statuses(by_part, mapping), **_statuses(by_base, mapping)}.items():
        if job_id in statuses:
            continue
        composite = job_id in arrays or any(_is_composite(r) for r in by_base.get(job_id, ()))
        if composite and status != FAILED:
            status = None
        statuses[job_id] = status
    return statuses


#: A job or one array task, as ``sacct -X`` prints them (not a folded range, not a het component).
_JOB_OR_TASK = re.compile(r"^\d+(?:_\d+)?$")
#: sacct's ExitCode ``status:signal`` of a script that exited by itself (no signal).
_EXITED = re.compile(r"^(\d+):0$")
#: The states in which the script ended by itself, so that ExitCode is its exit status
#: (after a signal, a walltime or a cancel, sacct's ``0:0`` says nothing).
_SCRIPT_ENDED = ("COMPLETED", "FAILED")


def exit_codes(response: str) -> dict[str, int]:
    """Exit status per job and array task ID (``123``, ``123_4``) in :func:`sacct_command` output.

    Only accounting records are read: the job completion log (``sacct -c``)
    lists an array's tasks under raw job IDs, one of which is the array's own.
    """
    accounting, _ = _records_by_width(response)
    codes: dict[str, int] = {}
    for line in accounting.splitlines():
        job_id, state, _reason, exit_code = (field.strip() for field in line.split("|"))
        exited = _EXITED.match(exit_code)
        if _JOB_OR_TASK.match(job_id) and state in _SCRIPT_ENDED and exited:
            codes[job_id] = int(exited.group(1))
    return codes


_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


def expand_tasks(spec: str) -> list[str]:
    """Task IDs in a folded task list: ``[1-3,7,10-20:5%4]`` -> 1 2 3 7 10 15 20.

    A spec that cannot be read is returned as is (one entry), never dropped.
    """
    body = spec.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    body = body.split("%", 1)[0]
    tasks: list[str] = []
    for part in body.split(","):
        match = _RANGE.match(part.strip())
        if match is None:
            return [spec]
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        tasks.extend(str(n) for n in range(first, last + 1, step))
    return tasks


def task_statuses(response: str, mapping: Mapping[str, int] = STATUS_MAPPING) -> dict[str, int]:
    """Status per array task from :func:`task_status_command` output, states read by ``mapping``.

    Accounting lists every task (pending ones folded, ``123_[4-9]``); the
    controller's view (the lines squeue starts with ``queue|``), where it has
    one, is fresher (and knows the reason DependencyNeverSatisfied), so it wins.
    """
    lines = clean_output(response).splitlines()
    queue = "\n".join(line[len("queue|") :] for line in lines if line.startswith("queue|"))
    accounting = "\n".join(line for line in lines if not line.startswith("queue|"))
    result: dict[str, int] = {}
    for text in (accounting, queue):
        for record in parse_records(text):
            status = record.status_in(mapping)
            if record.task is None or status is None:
                continue
            for task in expand_tasks(record.task):
                result[task] = status
    return dict(sorted(result.items(), key=lambda item: (len(item[0]), item[0])))


def tag_hits(response: str, tag: str) -> list[str]:
    """IDs of the ``JobID|Comment`` lines whose comment has ``tag`` as a word (others skipped)."""
    word = re.compile(r"(?:^|[\s,;|])" + re.escape(tag) + r"(?:$|[\s,;|])")
    found: list[str] = []
    for line in clean_output(
        response
    ).splitlines():  # a window title glued to a hit must not hide it
        job_id, sep, comment = line.partition("|")
        match = re.match(r"^(\d+)", job_id.strip())
        if sep and match and word.search(comment) and match.group(1) not in found:
            found.append(match.group(1))
    return found


def accounting_stores_comments(config: str) -> bool:
    """Whether ``scontrol show config`` says accounting keeps job comments (``job_comment``)."""
    return _STORES_COMMENTS.search(clean_output(config)) is not None
