"""Asking schedulers for the status of many jobs at once, and waiting for them.

Results are grouped by backend and submit host. A backend with the batch form
of the status query (``status_command``/``parse_status``) costs one scheduler
command per group and poll cycle, whatever the number of jobs, plus one for
the jobs that left the queue (``finished=True``: ``sacct`` after ``squeue``).
A backend with only the original's single-job form (``cmd_status``/
``get_status``) is asked about one job per command. An unreachable remote is
logged and retried on the next cycle; it never becomes a job status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clusterjob.errors import TransientTransportError
from clusterjob.marker_files import read_markers
from clusterjob.markers import Marker, array_marker
from clusterjob.progress import StatusCounts, progress_display
from clusterjob.status import COMPLETED, FAILED, PENDING, RUNNING, is_finished

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.backends import ClusterjobBackend

    #: Status and detail (the scheduler's stderr, for the log) of each job asked about, by job ID.
    Answers = dict[str, tuple[int | None, str]]

__all__ = [
    "WatchState",
    "as_completed",
    "next_pause",
    "poll",
    "poll_cycle",
    "task_statuses_from_markers",
    "wait_all",
    "wait_deadline",
]

logger = logging.getLogger("clusterjob")

#: Growth factor of the pause between poll cycles.
BACKOFF = 1.5


def _group(
    results: Iterable[AsyncResult],
) -> dict[tuple[int, str | None, str, str], list[AsyncResult]]:
    groups: dict[tuple[int, str | None, str, str], list[AsyncResult]] = {}
    for result in results:
        groups.setdefault((id(result.backend), result.remote, result.ssh, result.scp), []).append(
            result
        )
    return groups


def _ask_one_at_a_time(
    backend: ClusterjobBackend, runs: Sequence[AsyncResult], finished: bool
) -> Answers:
    """The single-job form: ``cmd_status``/``get_status`` per run."""
    answers: Answers = {}
    for run in runs:
        answer = run.transport.run(backend.cmd_status(run, finished=finished), check=False)
        answers[str(run.job_id)] = (
            backend.get_status(answer.stdout, finished=finished),
            answer.stderr.strip(),
        )
    return answers


def _ask_in_batches(
    backend: ClusterjobBackend, runs: Sequence[AsyncResult], finished: bool
) -> Answers:
    """The batch form: one ``status_command`` per ``backend.status_batch_size`` runs."""
    size = backend.status_batch_size or len(runs)
    answers: Answers = {}
    for start in range(0, len(runs), size):
        batch = runs[start : start + size]
        command = backend.status_command(batch, finished=finished)
        if command is None:
            continue  # no such query: these jobs stay unknown for this cycle
        result = batch[0].transport.run(command, check=False)
        job_ids = [str(run.job_id) for run in batch]
        statuses = backend.parse_status(result, job_ids, finished=finished)
        exit_codes = backend.parse_exit_codes(result, job_ids, finished=finished)
        for run in batch:  # before update_status, which caches it with the status
            run.exit_code = exit_codes.get(str(run.job_id), run.exit_code)
        answers.update(
            (job_id, (statuses.get(job_id), result.stderr.strip())) for job_id in job_ids
        )
    return answers


@dataclass
class WatchState:
    """What polling knows about a job beyond its status (in memory, never cached).

    Attributes:
        marker: what the job's markers said at the last read.
        next_check: when (``time.monotonic()``) the scheduler is to be asked next.
        unlisted_since: since when the scheduler no longer lists the job (no exit marker showed).
        completed_since: since when the scheduler says COMPLETED while no exit marker showed.
        running_since: since when the scheduler says RUNNING while no start marker showed.
        start_overdue: the job ran for ``marker_grace`` without its start marker: the
            scheduler decides, and the markers are read only every ``scheduler_interval``
            (a late marker, as after a long prologue or a lagging network file system,
            makes them decide again).
        plain: tasks of an array of unknown task IDs write the markers: the job is watched
            through the scheduler alone.
    """

    marker: Marker = field(default_factory=Marker)
    next_check: float = 0.0
    unlisted_since: float | None = None
    completed_since: float | None = None
    running_since: float | None = None
    start_overdue: bool = False
    plain: bool = False


def _watch(result: AsyncResult) -> WatchState:
    if result._watch is None:
        result._watch = WatchState()
    return result._watch


def _has_markers(result: AsyncResult) -> bool:
    """Whether the job's markers decide (with the scheduler's word weighed against them)."""
    return _writes_markers(result) and not _watch(result).start_overdue


def _writes_markers(result: AsyncResult) -> bool:
    """Whether the job's markers are read (an array of unknown task IDs' are not)."""
    return bool(result.marker_name and result.marker_folder) and not _watch(result).plain


def _marker_read_due(result: AsyncResult, now: float, overdue_too: bool) -> bool:
    watch = _watch(result)
    if is_finished(result._status) or not _writes_markers(result):
        return False
    return not watch.start_overdue or overdue_too or now >= watch.next_check


def _read_markers(results: Sequence[AsyncResult], overdue_too: bool = False) -> None:
    """Read the markers of ``results`` (one operation); record what they say: an exit, a start.

    Jobs whose start marker is overdue are read only every ``scheduler_interval``
    (or with ``overdue_too``), so that a folder the compute nodes do not see
    costs a read a minute, not one per cycle.
    """
    now = time.monotonic()
    marked = [r for r in results if _marker_read_due(r, now, overdue_too)]
    if not marked:
        return
    entries = [(str(r.marker_folder), str(r.marker_name)) for r in marked]
    for result, marker in zip(marked, read_markers(marked[0].transport, entries)):
        watch = _watch(result)
        if watch.start_overdue:
            watch.next_check = now + result.scheduler_interval
            if not (marker.started or marker.exit_code is not None or marker.tasks):
                continue
            watch.start_overdue = False
            logger.info(
                "job %s (%s): its markers appeared after all; watching it through them again",
                result.job_id,
                result.jobname,
            )
        if result.task_ids:
            marker = array_marker(result.task_ids, marker.tasks)
        elif marker.array:
            # Tasks write markers of their own, but which tasks there are is unknown.
            logger.debug(
                "job %s is an array of unknown tasks: watched by the scheduler", result.job_id
            )
            watch.plain = True
            continue
        watch.marker = marker
        if marker.exit_code is not None:
            result.exit_code = marker.exit_code  # before update_status, which caches it
            result.update_status(COMPLETED if marker.exit_code == 0 else FAILED)
        elif marker.started and result._status == PENDING:
            result.update_status(RUNNING)


def task_statuses_from_markers(result: AsyncResult) -> dict[str, int]:
    """Task ID -> status of the tasks of array ``result`` whose exit markers give an exit code.

    One marker read; empty for a job without markers or without known task IDs.
    """
    if not (result.task_ids and result.marker_folder and result.marker_name):
        return {}
    entry = (result.marker_folder, result.marker_name)
    tasks = dict(read_markers(result.transport, [entry])[0].tasks)
    return {
        task: COMPLETED if tasks[task].exit_code == 0 else FAILED
        for task in result.task_ids
        if task in tasks and tasks[task].exit_code is not None
    }


def _scheduler_due(result: AsyncResult, now: float) -> bool:
    """Whether this cycle asks the scheduler about ``result`` (always, without markers)."""
    watch = _watch(result)
    return not _has_markers(result) or watch.marker.needs_scheduler or now >= watch.next_check


def _accounting_due(result: AsyncResult, now: float) -> bool:
    """Whether to ask accounting about a job the queue did not list (markers: after the grace)."""
    watch = _watch(result)
    if not _has_markers(result) or watch.marker.needs_scheduler:
        return True
    return watch.unlisted_since is not None and now - watch.unlisted_since >= result.marker_grace


def _ask_scheduler(results: Sequence[AsyncResult], now: float) -> None:
    """Ask about the jobs of one backend and host; the unreported ones again, ``finished=True``."""
    backend = results[0].backend
    assert backend is not None
    ask = _ask_one_at_a_time if backend.asks_one_job_at_a_time() else _ask_in_batches
    answers = ask(backend, results, False)
    unknown = [
        r
        for r in results
        if answers.get(str(r.job_id), (None, ""))[0] is None and _accounting_due(r, now)
    ]
    if unknown:
        for job_id, (status, detail) in ask(backend, unknown, True).items():
            answers[job_id] = (status, detail or answers.get(job_id, (None, ""))[1])
    # A job may have ended between the marker read and the answer: its marker has the exit code.
    _read_markers(
        [r for r in results if is_finished(answers.get(str(r.job_id), (None, ""))[0] or PENDING)],
        overdue_too=True,
    )
    for result in results:
        status, detail = answers.get(str(result.job_id), (None, ""))
        if is_finished(result._status):
            continue
        if _has_markers(result):
            settled = _with_markers(result, status, now)
            if settled is None and (status is not None or result not in unknown):
                continue  # waiting for the marker on purpose: no warning
            status = settled
        result.update_status(status, detail)


def _with_markers(result: AsyncResult, status: int | None, now: float) -> int | None:
    """The scheduler's ``status`` of a job with markers, weighed against them (None: wait).

    The scheduler decides for a job whose marker records a signal or is
    incomplete (killed: a COMPLETED there is FAILED, and so is a job that
    neither the queue nor accounting knows after ``marker_grace``), and for a job it
    reports FAILED/CANCELLED without an exit marker (walltime, cancel, OOM,
    node failure). A COMPLETED without an exit marker is taken after
    ``marker_grace`` (the marker brings the exit code, if it shows up), unless
    a task of the array exited non-zero (FAILED with that exit code).
    """
    watch = _watch(result)
    grace = result.marker_grace
    watch.next_check = now + result.scheduler_interval
    if status is None:
        watch.unlisted_since = watch.unlisted_since or now
        if watch.marker.needs_scheduler and now - watch.unlisted_since >= grace:
            return FAILED  # it recorded a kill, and neither the queue nor accounting knows better
        watch.next_check = min(watch.next_check, watch.unlisted_since + grace)
        return None
    from_accounting = watch.unlisted_since is not None  # asked only after the grace
    watch.unlisted_since = None
    if watch.marker.needs_scheduler:
        return FAILED if status == COMPLETED else status
    if status == COMPLETED and not from_accounting:
        watch.completed_since = watch.completed_since or now
        if now - watch.completed_since < grace:
            watch.next_check = watch.completed_since + grace
            return None
    if status == COMPLETED and watch.marker.task_failure is not None:
        result.exit_code = watch.marker.task_failure  # a task failed: so did the array
        return FAILED
    if status == RUNNING and not watch.marker.started:
        _check_start_marker(result, watch, now)
    return status


def _check_start_marker(result: AsyncResult, watch: WatchState, now: float) -> None:
    """A job running for ``marker_grace`` without its start marker is watched by the scheduler."""
    watch.running_since = watch.running_since or now
    if now - watch.running_since < result.marker_grace:
        watch.next_check = min(watch.next_check, watch.running_since + result.marker_grace)
        return
    watch.start_overdue = True
    logger.warning(
        "job %s (%s) runs, but its start marker did not appear in %s%s within %.0f s: the compute "
        "nodes may not see that folder (set JobScript.marker_folder); watching it through the "
        "scheduler instead (and its markers once a scheduler_interval, in case they are late)",
        result.job_id,
        result.jobname,
        result.marker_folder,
        f" on {result.remote}" if result.remote else "",
        result.marker_grace,
    )


def _poll_group(results: Sequence[AsyncResult]) -> None:
    """One cycle for the jobs of one backend and host: their markers, then the scheduler where due.

    Jobs with markers are asked about every ``scheduler_interval``, at once
    when a marker records a signal; the jobs due within half an interval are
    asked along, so that jobs submitted together stay in one command.
    """
    _read_markers(results)
    now = time.monotonic()
    pending = [r for r in results if not is_finished(r._status)]
    if not any(_scheduler_due(r, now) for r in pending):
        return
    _ask_scheduler(
        [r for r in pending if _scheduler_due(r, now + r.scheduler_interval / 2)],
        now,
    )


def poll(results: Iterable[AsyncResult]) -> None:
    """Ask the schedulers once about every unfinished result and record the answers.

    Raises TransientTransportError only when a single group was polled and
    its remote was unreachable; with several groups, an unreachable one is
    logged and the others are still polled.
    """
    groups = _group(r for r in results if not is_finished(r._status))
    for results_of_group in groups.values():
        try:
            _poll_group(results_of_group)
        except TransientTransportError as exc:
            if len(groups) == 1:
                raise
            logger.warning(
                "cannot reach %s to poll %d jobs (%s); will retry",
                results_of_group[0].remote,
                len(results_of_group),
                exc,
            )


def poll_cycle(pending: Sequence[AsyncResult]) -> None:
    """One cycle of a wait: :func:`poll`, where an unreachable remote means "still waiting"."""
    try:
        poll(pending)
    except TransientTransportError as exc:
        logger.warning("cannot reach %s (%s); still waiting", pending[0].remote, exc)


def next_pause(pause: float, max_pause: float, pending: Sequence[AsyncResult]) -> float:
    """The pause after ``pause``: grown by :data:`BACKOFF` up to ``max_pause``.

    Recorded as the ``sleep_interval`` of each pending result, as the original does.
    """
    pause = min(pause * BACKOFF, max_pause)
    for result in pending:
        result.sleep_interval = pause
    return pause


def wait_deadline(timeout: float | None, now: float) -> float | None:
    """The time (on the clock of ``now``) a wait of ``timeout`` seconds ends; None: never.

    Raises ValueError for a timeout that is not a number of seconds >= 0: a NaN
    would never be reached (the wait would go on for ever) and a negative one is
    a mistake, not a wish.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, or None, not {timeout!r}")
    return now + timeout


def unfinished_error(unfinished: int, total: int, timeout: float | None) -> TimeoutError:
    """The error of a wait that ran out of time (the same for the sync and asyncio waits)."""
    return TimeoutError(f"{unfinished} of {total} jobs still unfinished after {timeout} s")


def as_completed(
    results: Iterable[AsyncResult], timeout: float | None = None, progress: bool | None = None
) -> Iterator[AsyncResult]:
    """Yield each result as soon as it is seen finished (those already finished first).

    One poll cycle queries all pending jobs, batched per backend and host.
    The pause between cycles grows from 1 s up to the smallest
    ``max_sleep_interval`` of the results. While a remote is unreachable,
    waiting goes on (with a warning). Stops after ``timeout`` seconds
    (TimeoutError), after at least one poll. ``progress`` shows the counts
    of pending/running/completed/failed jobs, updated in place
    (:mod:`clusterjob.progress`; default: only on a terminal or in Jupyter).
    """
    deadline = wait_deadline(timeout, time.monotonic())
    pending = list(results)
    everything = list(pending)
    display = progress_display(len(everything), progress)
    max_pause = min([r.max_sleep_interval for r in pending] or [1])
    pause = min([r.sleep_interval for r in pending] or [1.0]) if pending else 1.0
    pause = min(pause, max_pause)

    def collect() -> Iterator[AsyncResult]:
        nonlocal pending
        finished = [r for r in pending if is_finished(r._status)]
        pending = [r for r in pending if not is_finished(r._status)]
        display.update(StatusCounts.of(r._status for r in everything))
        yield from finished

    try:
        yield from collect()
        while pending:
            poll_cycle(pending)
            yield from collect()
            if not pending:
                return
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise unfinished_error(len(pending), len(everything), timeout)
                time.sleep(min(pause, remaining))
            else:
                time.sleep(pause)
            pause = next_pause(pause, max_pause, pending)
    finally:
        display.close()


def wait_all(
    results: Iterable[AsyncResult], timeout: float | None = None, progress: bool | None = None
) -> list[int]:
    """Wait until all results finished or ``timeout`` passed; return their statuses in order.

    Unlike :func:`as_completed`, a timeout is not an error (as in ``AsyncResult.wait``).
    """
    results = list(results)
    try:
        for _ in as_completed(results, timeout=timeout, progress=progress):
            pass
    except TimeoutError:
        pass
    return [r._status for r in results]
