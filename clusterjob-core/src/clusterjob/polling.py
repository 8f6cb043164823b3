"""Asking schedulers for the status of many jobs at once, and waiting for them.

Results are grouped by backend and submit host; a backend with a batched
query (``cmd_status_many``) costs one scheduler command per group and poll
cycle, whatever the number of jobs. An unreachable remote is logged and
retried on the next cycle; it never becomes a job status.
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

__all__ = ["as_completed", "poll", "wait_all"]

logger = logging.getLogger("clusterjob")

#: Growth factor of the pause between poll cycles.
BACKOFF = 1.5


def _group(results: Iterable[AsyncResult]) -> dict[tuple[int, str | None, str, str], list[AsyncResult]]:
    groups: dict[tuple[int, str | None, str, str], list[AsyncResult]] = {}
    for result in results:
        groups.setdefault((id(result.backend), result.remote, result.ssh, result.scp), []).append(result)
    return groups


def _ask_finished(result: AsyncResult) -> tuple[int | None, str]:
    """The status from the backend's query for jobs that left the queue."""
    backend = result.backend
    assert backend is not None
    answer = result.transport.run(backend.cmd_status(result, finished=True), check=False)
    return backend.get_status(answer.stdout, finished=True), answer.stderr.strip()


def _poll_one(result: AsyncResult) -> None:
    backend = result.backend
    assert backend is not None
    answer = result.transport.run(backend.cmd_status(result), check=False)
    status, detail = backend.get_status(answer.stdout), answer.stderr.strip()
    if status is None:
        status, finished_detail = _ask_finished(result)
        detail = finished_detail or detail
    result.update_status(status, detail)


def _poll_group(results: Sequence[AsyncResult]) -> None:
    backend = results[0].backend
    assert backend is not None
    command = backend.cmd_status_many(results) if len(results) > 1 else None
    if command is None:
        for result in results:
            _poll_one(result)
        return
    transport = results[0].transport
    answer = transport.run(command, check=False)
    statuses: dict[str, int | None] = dict(backend.get_status_many(answer.stdout, results))
    details = dict.fromkeys(statuses, answer.stderr.strip())
    unknown = [r for r in results if statuses.get(str(r.job_id)) is None]
    if unknown:
        command = backend.cmd_status_many(unknown, finished=True)
        if command is not None:
            answer = transport.run(command, check=False)
            statuses.update(backend.get_status_many(answer.stdout, unknown, finished=True))
            details.update(dict.fromkeys((str(r.job_id) for r in unknown), answer.stderr.strip()))
        else:  # no batched form for finished jobs: ask about each one
            for result in unknown:
                statuses[str(result.job_id)], details[str(result.job_id)] = _ask_finished(result)
    for result in results:
        result.update_status(statuses.get(str(result.job_id)), details.get(str(result.job_id), ""))


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
            logger.warning("cannot reach %s to poll %d jobs (%s); will retry", results_of_group[0].remote, len(results_of_group), exc)


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
        line = f"[clusterjob] {done}/{self.total} finished ({ok} completed, {failed} failed/cancelled)"
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
                raise TimeoutError(f"{len(pending)} of {len(everything)} jobs still unfinished after {timeout} s")
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
