"""The SLURM commands clusterjob runs to ask about jobs, and how their output is read.

Where one question needs several SLURM commands (``sacct``, and ``sacct -c``
if accounting storage is disabled), they run in one small POSIX ``sh``
script, so that a poll cycle is still one command, one SSH round trip. The
scripts are constants; job IDs, tags and time windows reach them only as
positional parameters (``sh -c SCRIPT clusterjob-slurm ARG...``), never by
building shell text from data. Each output line starts with its source::

    accounting|123_4|FAILED|NonZeroExitCode|2:0    (sacct, full accounting)
    jobcomp|123|COMPLETED|0:0                      (sacct -c, job completion log)
    jobcomp|sacct: error: Unknown type ArrayJobId: 123
    queue|123|cj-1a2b3c4d5e-9f8e7d                 (squeue, tag search)
    error|squeue: slurm_load_jobs error: ...
    done|

A query that found nothing prints only ``done|``; a query that could not
ask prints an ``error|`` line, so "no such job" is never confused with
"could not tell".
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

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
    "expand_tasks",
    "find_tag_command",
    "finished_statuses",
    "queue_statuses",
    "sacct_command",
    "squeue_command",
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
#: ``sacct -c`` understands fewer fields.
JOBCOMP_FIELDS = "JobID,State,ExitCode"

#: Slack added to the sacct time window (clock skew between us and the cluster).
WINDOW_MARGIN = 3600

_SACCT_SCRIPT = r"""
# clusterjob-slurm: final states from accounting; the job completion log if
# accounting storage is disabled or unreachable. "$@": sacct selection options.
if out=$(sacct -X -n -P -o @SACCT_FIELDS@ "$@" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/accounting|/'
    echo 'done|'
    exit 0
fi
printf 'sacct failed: %s\n' "$out" >&2
out=$(sacct -c -n -P -o @JOBCOMP_FIELDS@ "$@" 2>&1)
printf '%s\n' "$out" | sed 's/^/jobcomp|/'
echo 'done|'
"""

_TASKS_SCRIPT = r"""
# clusterjob-slurm: every task of array job $1, from the controller and from accounting.
if out=$(squeue --states=all -r -h -o '@SQUEUE_FORMAT@' -j "$1" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/queue|/'
fi
if out=$(sacct -X -n -P -o @SACCT_FIELDS@ -j "$1" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/accounting|/'
fi
echo 'done|'
"""

_FIND_TAG_SCRIPT = r"""
# clusterjob-slurm: jobs of this user whose comment carries tag $1. Looks in the
# controller first, then in accounting (last 2 days, then everything), and says
# "error|" when it cannot rule out that such a job exists.
tag=$1
uid=$(id -u)
failed=
if out=$(squeue --states=all -h -o '%i|%k' -u "$uid" 2>&1); then
    hits=$(printf '%s\n' "$out" | grep -F -e "$tag")
    if [ -n "$hits" ]; then
        printf '%s\n' "$hits" | sed 's/^/queue|/'
        echo 'done|'
        exit 0
    fi
else
    failed="squeue: $out"
fi
if ! config=$(scontrol show config 2>&1); then
    failed="${failed:+$failed; }scontrol show config: $config"
elif printf '%s\n' "$config" | grep -q -i -E \
    '^AccountingStoreFlags *=.*job_comment|^AccountingStoreJobComment *= *yes'; then
    for start in now-2days 2000-01-01T00:00:00; do
        if out=$(sacct -X -n -P -o JobID,Comment -u "$uid" -S "$start" -E now 2>&1); then
            hits=$(printf '%s\n' "$out" | grep -F -e "$tag")
            if [ -n "$hits" ]; then
                printf '%s\n' "$hits" | sed 's/^/accounting|/'
                echo 'done|'
                exit 0
            fi
        else
            failed="${failed:+$failed; }sacct: $out"
            break
        fi
    done
else
    failed="${failed:+$failed; }accounting does not store job comments (needs AccountingStoreFlags=job_comment), so a job that left the queue cannot be found by its tag"
fi
if [ -n "$failed" ]; then
    printf 'error|%s\n' "$failed" | tr '\n' ' '
    echo
fi
echo 'done|'
"""


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
    """``sacct`` options selecting ``runs``: their IDs, or (many runs) the time since the oldest was submitted."""
    job_ids = [str(run.job_id) for run in runs]
    if len(job_ids) <= MAX_LISTED_IDS:
        return ["-j", ",".join(job_ids)]
    submitted = [run.submitted_at for run in runs]
    if any(t is None for t in submitted):
        return ["-S", "2000-01-01T00:00:00", "-E", "now"]  # an adopted job without a time: all history
    age = (time.time() if now is None else now) - min(t for t in submitted if t is not None)
    return ["-S", f"now-{int(age) + WINDOW_MARGIN}seconds", "-E", "now"]


def sacct_command(runs: Sequence[AsyncResult]) -> list[str]:
    """Final states of ``runs`` from accounting, falling back to the job completion log."""
    return _shell(_SACCT_SCRIPT, *sacct_selection(runs))


def task_status_command(job_id: str) -> list[str]:
    """Every task of array ``job_id``: the controller's view and accounting's."""
    return _shell(_TASKS_SCRIPT, job_id)


def find_tag_command(tag: str) -> list[str]:
    """The jobs whose comment carries ``tag`` (see :data:`_FIND_TAG_SCRIPT`)."""
    return _shell(_FIND_TAG_SCRIPT, tag)


# -- reading the output ------------------------------------------------------


def _lines_of(response: str, source: str) -> str:
    """The lines of ``source`` without their prefix; other lines (a login banner) are dropped."""
    prefix = source + "|"
    lines = clean_output(response).splitlines()
    return "\n".join(line[len(prefix):] for line in lines if line.startswith(prefix))


def _is_composite(record: Record) -> bool:
    return record.job_id != record.base_id


def _group(records: Sequence[Record]) -> dict[str, list[Record]]:
    """Records per submitted job (base ID) and per full ID of composite records."""
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(record.base_id, []).append(record)
        if _is_composite(record):
            grouped.setdefault(record.job_id, []).append(record)
    return grouped


def queue_statuses(response: str, mapping: Mapping[str, int] = STATUS_MAPPING) -> dict[str, int | None]:
    """Status per job ID from :func:`squeue_command` output, states read by ``mapping``.

    The controller forgets each array task ``MinJobAge`` after it ended,
    while its siblings may still run: a task that failed early can be gone
    when the last one completes. So an array (or het job) whose visible
    records are all finished is FAILED if one of them failed, and otherwise
    unknown here (None): accounting, which keeps every task, decides.
    """
    statuses: dict[str, int | None] = {}
    for job_id, records in _group(parse_records(response)).items():
        status = aggregate(r.status_in(mapping) for r in records)
        if any(_is_composite(r) for r in records) and status is not None and status >= 0 and status != FAILED:
            status = None
        statuses[job_id] = status
    return statuses


_ARRAY_MARK = re.compile(r"Unknown type ArrayJobId: *(\d+)")


def finished_statuses(response: str, mapping: Mapping[str, int] = STATUS_MAPPING) -> dict[str, int | None]:
    """Status per job ID from :func:`sacct_command` output, states read by ``mapping``.

    Accounting has every task of an array, so its records are complete. The
    job completion log (``sacct -c``) lists array tasks under their raw IDs,
    which cannot be traced back to the array (SLURM 22.05 reports the array
    fields as "Unknown type ArrayJobId: N" on stderr); for an array it can
    only prove FAILED. A job without records is unknown: None, never COMPLETED.
    """
    statuses: dict[str, int | None] = {}
    for job_id, records in _group(parse_records(_lines_of(response, "accounting"))).items():
        statuses[job_id] = aggregate(r.status_in(mapping) for r in records)
    jobcomp = _lines_of(response, "jobcomp")
    arrays = set(_ARRAY_MARK.findall(jobcomp))
    for job_id, records in _group(parse_records(jobcomp)).items():
        if job_id in statuses:
            continue
        status = aggregate(r.status_in(mapping) for r in records)
        composite = job_id in arrays or any(_is_composite(r) for r in records)
        if composite and status != FAILED:
            status = None
        statuses[job_id] = status
    return statuses


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
    controller's view, where it has one, is fresher (and knows the reason
    DependencyNeverSatisfied), so it wins.
    """
    result: dict[str, int] = {}
    for source in ("accounting", "queue"):
        for record in parse_records(_lines_of(response, source)):
            status = record.status_in(mapping)
            if record.task is None or status is None:
                continue
            for task in expand_tasks(record.task):
                result[task] = status
    return dict(sorted(result.items(), key=lambda item: (len(item[0]), item[0])))


def tag_lookup(response: str, tag: str) -> tuple[list[str], str | None, bool]:
    """(job IDs whose comment carries ``tag``, error text or None, whether the script finished)."""
    word = re.compile(r"(?:^|[\s,;|])" + re.escape(tag) + r"(?:$|[\s,;|])")
    found: list[str] = []
    error = None
    complete = False
    for line in clean_output(response).splitlines():  # a window title glued to a hit must not hide it
        source, _, rest = line.partition("|")
        if source == "done":
            complete = True
        elif source == "error":
            error = rest.strip() or "unknown error"
        elif source in ("queue", "accounting"):
            job_id, _, comment = rest.partition("|")
            match = re.match(r"^(\d+)", job_id.strip())
            if match and word.search(comment) and match.group(1) not in found:
                found.append(match.group(1))
    return found, error, complete
