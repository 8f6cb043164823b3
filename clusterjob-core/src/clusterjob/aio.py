"""Waiting for jobs from asyncio: ``await result.wait_async()`` and ``as_completed_async``.

One poller per event loop asks about every result that any coroutine of that loop
awaits, all in the same cycle: the batched poll of :mod:`clusterjob.polling` (one
scheduler command per backend and host, whatever the number of jobs and of waiting
coroutines), with no thread per job. Between cycles it sleeps on the event loop, the
pause growing as in :func:`~clusterjob.polling.as_completed` (from the results'
``sleep_interval`` up to their smallest ``max_sleep_interval``); a newly awaited job
is polled at once.

Why a worker thread and not asyncio subprocesses: a cycle's commands go through the
transport (a local process, or ``ssh`` with its shared connection, retries and the
clean-up of login-shell output), and a job seen finished runs its epilogue and the
``clusterjob_job_finished`` hook; all of that is the blocking code that ``wait_all``
uses. Each cycle runs it as one call in the loop's default executor, so the asyncio
waits send exactly the commands the blocking ones do, and the event loop stays free
while the scheduler answers. At most one such call per loop is in flight; epilogues
and hooks therefore run in that worker thread. An error of a cycle (a backend that
answers nonsense, an unreadable cache file) is raised in every coroutine whose jobs
that cycle polled, as ``wait_all`` raises it; an unreachable remote only means
"still waiting", with a warning.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Union

from clusterjob.polling import next_pause, poll_cycle, unfinished_error, wait_deadline
from clusterjob.progress import StatusCounts, progress_display
from clusterjob.status import is_finished

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult

    #: What a cycle tells a waiting coroutine: the results it saw finish, or its error.
    News = Union[list[AsyncResult], Exception]

__all__ = ["as_completed_async", "wait_async"]


class _Waiter:
    """The results one coroutine waits for, and the news of each cycle that polled them."""

    def __init__(self, results: Sequence[AsyncResult]) -> None:
        self.unfinished = list(results)
        self.news: asyncio.Queue[News] = asyncio.Queue()

    def after_cycle(self) -> None:
        finished, self.unfinished = _partition(self.unfinished)
        self.news.put_nowait(finished)


def _partition(results: Iterable[AsyncResult]) -> tuple[list[AsyncResult], list[AsyncResult]]:
    """The finished and the unfinished results, each status read once (a cycle may be running)."""
    finished: list[AsyncResult] = []
    unfinished: list[AsyncResult] = []
    for result in results:
        (finished if is_finished(result._status) else unfinished).append(result)
    return finished, unfinished


class _Poller:
    """Polls the unfinished results of all waiters of one event loop, one cycle at a time."""

    def __init__(self) -> None:
        self.waiters: list[_Waiter] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Future[None] | None = None
        self.pause = math.inf

    def add(self, waiter: _Waiter) -> None:
        """Poll ``waiter``'s results from the next cycle on; a sleeping poller starts it now."""
        self.waiters.append(waiter)
        self.pause = min(
            [self.pause, *(min(r.sleep_interval, r.max_sleep_interval) for r in waiter.unfinished)]
        )
        self.wake.set()
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())

    def poll_now(self) -> None:
        """Cut the current pause short (a waiter's deadline passed: it wants a last look)."""
        self.wake.set()

    def remove(self, waiter: _Waiter) -> None:
        if waiter in self.waiters:
            self.waiters.remove(waiter)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiters:
                waiters = list(self.waiters)  # a waiter added during the cycle waits for the next
                self.wake.clear()
                try:
                    await loop.run_in_executor(None, poll_cycle, _unfinished(waiters))
                except Exception as exc:  # noqa: BLE001 - handed to the waiters, who raise it
                    for waiter in waiters:
                        waiter.news.put_nowait(exc)
                        self.remove(waiter)
                    continue
                for waiter in waiters:
                    waiter.after_cycle()
                self.waiters = [w for w in self.waiters if w.unfinished]
                if self.waiters:
                    await self._sleep()
        finally:
            self.task = None
            if _POLLERS.get(loop) is self:
                del _POLLERS[loop]  # the next wait in this loop starts afresh

    async def _sleep(self) -> None:
        """Sleep for the pause, or until a new waiter arrives; then grow the pause."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=self.pause)
        except asyncio.TimeoutError:
            pass
        pending = _unfinished(self.waiters)
        if pending:
            max_pause = min(r.max_sleep_interval for r in pending)
            self.pause = next_pause(self.pause, max_pause, pending)


def _unfinished(waiters: Iterable[_Waiter]) -> list[AsyncResult]:
    """The unfinished results of ``waiters``, each once (several coroutines may await one job)."""
    return list({id(r): r for waiter in waiters for r in waiter.unfinished}.values())


#: The poller of each event loop that has jobs to poll. A poller holds its loop (through
#: its task, event and queues), so it is dropped as soon as it has nothing left to poll:
#: a weak mapping would never let the loop go.
_POLLERS: dict[asyncio.AbstractEventLoop, _Poller] = {}


def _poller() -> _Poller:
    """The poller of the running event loop (created when there are jobs to poll)."""
    loop = asyncio.get_running_loop()
    poller = _POLLERS.get(loop)
    if poller is None:
        poller = _POLLERS[loop] = _Poller()
    return poller


async def _next_news(waiter: _Waiter, deadline: float | None) -> News | None:
    """The next cycle's news, or None once ``deadline`` (event-loop time) has passed."""
    if deadline is None or not waiter.news.empty():
        return await waiter.news.get()
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return None
    try:
        return await asyncio.wait_for(waiter.news.get(), timeout=remaining)
    except asyncio.TimeoutError:  # on Python < 3.11 not the built-in TimeoutError
        return None


async def as_completed_async(
    results: Iterable[AsyncResult], timeout: float | None = None, progress: bool | None = None
) -> AsyncIterator[AsyncResult]:
    """Yield each result as soon as it is seen finished (those already finished first).

    The asyncio form of :func:`~clusterjob.polling.as_completed`, with the same
    arguments, the same batched poll cycles (shared with every other coroutine of
    this event loop that waits for jobs) and the same ``TimeoutError`` after
    ``timeout`` seconds, checked after each poll (the deadline cuts the pause
    short for one last poll).
    Leaving the loop early stops polling for these jobs when the generator is
    closed (``contextlib.aclosing`` closes it at once).
    """
    loop = asyncio.get_running_loop()
    deadline = wait_deadline(timeout, loop.time())
    everything = list(results)
    display = progress_display(len(everything), progress)
    finished_before, unfinished = _partition(everything)
    waiter = _Waiter(unfinished)
    remaining = len(unfinished)
    poller = _poller() if remaining else None
    if poller is not None:
        poller.add(waiter)
    try:
        display.update(StatusCounts.of(r._status for r in everything))
        for result in finished_before:
            yield result
        while remaining:
            news = await _next_news(waiter, deadline)
            if news is None:  # the deadline passed between cycles: poll now, as wait_all does
                assert poller is not None
                poller.poll_now()
                news = await waiter.news.get()
            if isinstance(news, Exception):
                raise news
            remaining -= len(news)
            display.update(StatusCounts.of(r._status for r in everything))
            for result in news:
                yield result
            if remaining and deadline is not None and loop.time() >= deadline:
                raise unfinished_error(remaining, len(everything), timeout)
    finally:
        if poller is not None:
            poller.remove(waiter)
        display.close()


async def wait_async(result: AsyncResult, timeout: float | None = None) -> None:
    """Wait until ``result`` finished or roughly ``timeout`` seconds passed (no error then).

    The asyncio form of :meth:`AsyncResult.wait <clusterjob.async_result.AsyncResult.wait>`.
    """
    try:
        async for _ in as_completed_async([result], timeout=timeout, progress=False):
            pass
    except TimeoutError:
        pass
