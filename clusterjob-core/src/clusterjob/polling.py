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
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from clusterjob.errors import TransientTransportError
from clusterjob.status import CANCELLED, COMPLETED, FAILED, is_finished

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.backends import ClusterjobBackend

    #: Status and detail (the scheduler's stderr, for the log) of each job asked about, by job ID.
    Answers = dict[str, tuple[int | None, str]]

__all__ = ["as_completed", "poll", "wait_all"]

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
    """The batch form: one ``status_command`` per :attr:`~clusterjob.backends.ClusterjobBackend.status_batch_size` runs."""
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
        answers.update(
            (job_id, (statuses.get(job_id), result.stderr.strip())) for job_id in job_ids
        )
    return answers


def _poll_group(results: Sequence[AsyncResult]) -> None:
    """Ask about the jobs of one backend and host; those it does not report, again with ``finished=True``."""
    backend = results[0].backend
    assert backend is not None
    ask = _ask_one_at_a_time if backend.asks_one_job_at_a_time() else _ask_in_batches
    answers = ask(backend, results, False)
    unknown = [r for r in results if answers.get(str(r.job_id), (None, ""))[0] is None]
    if unknown:
        for job_id, (status, detail) in ask(backend, unknown, True).items():
            answers[job_id] = (status, detail or answers.get(job_id, (None, ""))[1])
    for result in results:
        result.update_status(*answers.get(str(result.job_id), (None, "")))


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


class _Progress:
    """A status line: redrawn in place on a terminal, one line per change elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.interactive = stream.isatty()
        self.last = ""

    def show(self, results: Sequence[AsyncResult], final: bool = False) -> None:
        statuses = [r._status for r in results]
        done = sum(is_finished(s) for s in statuses)
        failed = sum(s in (FAILED, CANCELLED) for s in statuses)
        ok = sum(s == COMPLETED for s in statuses)
        line = (
            f"[clusterjob] {done}/{self.total} finished ({ok} completed, {failed} failed/cancelled)"
        )
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if final else ""))
        elif line != self.last:
            self.stream.write(line + "\n")
        self.last = line
        self.stream.flush()


def as_completed(
    results: Iterable[AsyncResult], timeout: float | None = None, progress: bool | None = None
) -> Iterator[AsyncResult]:
    """Yield each result as soon as it is seen finished (those already finished first).

    One poll cycle queries all pending jobs, batched per backend and host.
    The pause between cycles grows from 1 s up to the smallest
    ``max_sleep_interval`` of the results. While a remote is unreachable,
    waiting goes on (with a warning). Stops after ``timeout`` seconds
    (TimeoutError); ``progress`` (default: stderr is a terminal) shows a
    status line.
    """
    pending = list(results)
    everything = list(pending)
    if progress is None:
        progress = sys.stderr.isatty()
    display = _Progress(sys.stderr, len(everything)) if progress and everything else None
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = min([r.sleep_interval for r in pending] or [1.0])
    max_pause = min([r.max_sleep_interval for r in pending] or [1])

    def collect() -> Iterator[AsyncResult]:
        nonlocal pending
        finished = [r for r in pending if is_finished(r._status)]
        pending = [r for r in pending if not is_finished(r._status)]
        yield from finished
        if display:
            display.show(everything, final=not pending)

    yield from collect()
    while pending:
        try:
            poll(pending)
        except TransientTransportError as exc:
            logger.warning("cannot reach %s (%s); still waiting", pending[0].remote, exc)
        yield from collect()
        if not pending:
            return
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{len(pending)} of {len(everything)} jobs still unfinished after {timeout} s"
                )
            time.sleep(min(pause, remaining))
        else:
            time.sleep(pause)
        pause = min(pause * BACKOFF, max_pause)
        for result in pending:
            result.sleep_interval = pause


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
