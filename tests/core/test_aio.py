"""The asyncio waits on the local backend: the loop stays free, one status command per cycle, timeouts."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from clusterjob import AsyncResult, JobScript, aio, as_completed_async, polling, progress
from clusterjob.backends.local import LocalBackend
from clusterjob.errors import TransientTransportError
from clusterjob.status import COMPLETED, FAILED, RUNNING

T = TypeVar("T")


class CountingLocal(LocalBackend):
    """The local backend, counting the status commands it hands out (and how many jobs each asks about)."""

    name = "counting"

    def __init__(self) -> None:
        self.batched: list[int] = []

    def status_command(self, runs, finished=False):  # type: ignore[no-untyped-def]
        command = super().status_command(runs, finished)
        if command is not None:
            self.batched.append(len(runs))
        return command


class SlowLocal(CountingLocal):
    """Its status command takes a second, as a busy scheduler's does: long enough to see a stall."""

    name = "slow"

    def status_command(self, runs, finished=False):  # type: ignore[no-untyped-def]
        command = super().status_command(runs, finished)
        return None if command is None else ["sh", "-c", 'sleep 1; exec "$@"', "sh", *command]


@pytest.fixture(autouse=True)
def local_defaults(tmp_path: Path) -> None:
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1


@pytest.fixture
def counting() -> CountingLocal:
    backend = CountingLocal()
    JobScript.register_backend(backend)
    return backend


@pytest.fixture
def cycles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many jobs each poll cycle asked about (polling.poll wrapped, as the SLURM test does)."""
    asked: list[int] = []
    real_poll = polling.poll

    def poll_counting_cycles(results):  # type: ignore[no-untyped-def]
        asked.append(len(results))
        return real_poll(results)

    monkeypatch.setattr(polling, "poll", poll_counting_cycles)
    return asked


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


async def collect(results: list[AsyncResult], **kwargs: Any) -> list[AsyncResult]:
    return [r async for r in as_completed_async(results, **kwargs)]


class Ticker:
    """A coroutine that ticks every 20 ms: if the loop were blocked, a gap would show."""

    def __init__(self) -> None:
        self.ticks = 0
        self.longest_gap = 0.0
        self.most_threads = threading.active_count()

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            self.ticks += 1
            self.longest_gap = max(self.longest_gap, now - last)
            self.most_threads = max(self.most_threads, threading.active_count())
            last = now


async def while_ticking(awaitable: Awaitable[T], ticker: Ticker) -> T:
    ticking = asyncio.ensure_future(ticker.run())
    try:
        return await awaitable
    finally:
        ticking.cancel()


def test_wait_async_leaves_the_event_loop_free() -> None:
    slow = SlowLocal()
    JobScript.register_backend(slow)
    result = JobScript("sleep 2", jobname="slow", backend="slow").submit()
    ticker = Ticker()
    threads_before = threading.active_count()
    started = time.monotonic()
    assert run(while_ticking(result.wait_async(), ticker)) is None
    waited = time.monotonic() - started
    assert result.status == COMPLETED
    assert 1.5 < waited < 30
    assert slow.batched  # the scheduler was asked (1 s each time) while the loop ticked on
    assert ticker.longest_gap < 0.5, f"the loop was blocked for {ticker.longest_gap:.2f} s"
    assert ticker.ticks > waited / 0.02 / 3
    assert ticker.most_threads <= threads_before + 1  # at most the one executor thread


def test_as_completed_async_yields_in_finishing_order_already_finished_first() -> None:
    done = JobScript("true", jobname="done").submit()
    done.wait(timeout=60)
    slow = JobScript("sleep 3", jobname="slow").submit()
    fast = JobScript("sleep 1", jobname="fast").submit()
    order = run(collect([slow, fast, done], timeout=60))
    assert [r.job_id for r in order] == [done.job_id, fast.job_id, slow.job_id]


def test_concurrent_waits_share_one_status_command_per_cycle(
    counting: CountingLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    cycles: list[tuple[int, int]] = []  # (jobs polled, status commands sent) per cycle
    real_poll = polling.poll

    def poll_counting_commands(results):  # type: ignore[no-untyped-def]
        sent_before = len(counting.batched)
        real_poll(results)
        cycles.append((len(results), len(counting.batched) - sent_before))

    monkeypatch.setattr(polling, "poll", poll_counting_commands)
    results = [
        JobScript(f"sleep {1 + i % 3}", jobname=f"j{i}", backend="counting").submit()
        for i in range(12)
    ]

    async def everybody_waits() -> list[AsyncResult]:
        # Twelve coroutines on one job each, and one on all of them: still one poll per cycle.
        each = asyncio.gather(*(r.wait_async(timeout=60) for r in results))
        seen = await collect(results, timeout=60)
        await each
        return seen

    seen = run(everybody_waits())
    assert sorted(r.job_id for r in seen) == sorted(r.job_id for r in results)
    assert [r.status for r in results] == [COMPLETED] * 12
    # Each cycle polls the unfinished jobs of all thirteen waiters together (each job once),
    # with at most one local status command (the exit markers may answer without one).
    assert cycles[0][0] == 12
    assert [jobs for jobs, _ in cycles] == sorted((jobs for jobs, _ in cycles), reverse=True)
    assert all(commands <= 1 for _, commands in cycles), cycles
    assert 2 <= len(cycles) <= 10


def test_the_pause_grows_up_to_max_sleep_interval(cycles: list[int]) -> None:
    result = JobScript("sleep 6", jobname="long", max_sleep_interval=2).submit()
    assert result.sleep_interval == 1.0
    run(result.wait_async(timeout=60))
    assert result.status == COMPLETED
    assert result.sleep_interval == 2  # 1 s, 1.5 s, then 2 s: the maximum
    assert 3 <= len(cycles) <= 6  # polled at 0, 1, 2.5, 4.5, 6.5 s


def test_no_pause_is_longer_than_max_sleep_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the first pause was sleep_interval (1 s) even with max_sleep_interval 0.25,
    where the blocking wait caps it."""
    pauses: list[float] = []
    real_sleep = aio._Poller._sleep

    async def recorded_sleep(self: Any) -> None:
        pauses.append(self.pause)
        await real_sleep(self)

    monkeypatch.setattr(aio._Poller, "_sleep", recorded_sleep)
    result = JobScript("sleep 1", jobname="short", max_sleep_interval=0.25).submit()
    run(result.wait_async(timeout=60))
    assert result.status == COMPLETED
    assert pauses and max(pauses) == 0.25, pauses


def test_as_completed_async_times_out_like_as_completed() -> None:
    hanging = JobScript("sleep 60", jobname="hang").submit()
    quick = JobScript("true", jobname="quick").submit()
    seen: list[AsyncResult] = []

    async def until_timeout() -> None:
        async for result in as_completed_async([hanging, quick], timeout=1.5):
            seen.append(result)

    started = time.monotonic()
    # The built-in TimeoutError, not asyncio's (a different class before Python 3.11).
    with pytest.raises(TimeoutError, match=r"^1 of 2 jobs still unfinished after 1\.5 s$") as error:
        run(until_timeout())
    assert type(error.value) is TimeoutError
    assert 1.4 < time.monotonic() - started < 10
    assert seen == [quick]
    with pytest.raises(TimeoutError, match="1 of 1 jobs still unfinished after 1 s") as sync_error:
        list(polling.as_completed([hanging], timeout=1))
    assert type(sync_error.value) is TimeoutError
    hanging.cancel()


def test_wait_async_with_a_timeout_returns_unfinished_like_wait() -> None:
    hanging = JobScript("sleep 60", jobname="hang").submit()
    started = time.monotonic()
    assert run(hanging.wait_async(timeout=0.5)) is None
    assert time.monotonic() - started < 10
    assert hanging.status == RUNNING
    hanging.cancel()


def test_a_timeout_of_zero_still_polls_once(cycles: list[int]) -> None:
    """As in the blocking wait: the deadline is checked only after the jobs were polled."""
    result = JobScript("true", jobname="quick").submit()
    time.sleep(1)  # the job has finished; only a poll can tell
    assert run(collect([result], timeout=0)) == [result]
    assert cycles == [1]
    assert result.status == COMPLETED


@pytest.mark.parametrize("timeout", [-1, float("nan"), True, "10"])
def test_a_timeout_that_is_no_number_of_seconds_is_refused_by_every_wait(timeout: Any) -> None:
    """A NaN deadline is never reached: the wait would have gone on for ever."""
    result = JobScript("sleep 60", jobname="hang").submit()
    message = f"^timeout must be a number of seconds >= 0, or None, not {re.escape(repr(timeout))}$"
    try:
        for wait in (
            lambda: result.wait(timeout=timeout),
            lambda: polling.wait_all([result], timeout=timeout),
            lambda: list(polling.as_completed([result], timeout=timeout)),
            lambda: run(result.wait_async(timeout=timeout)),
            lambda: run(collect([result], timeout=timeout)),
        ):
            with pytest.raises(ValueError, match=message):
                wait()
    finally:
        result.cancel()


def test_a_cancelled_wait_stops_polling_its_jobs(cycles: list[int]) -> None:
    hanging = JobScript("sleep 60", jobname="hang").submit()

    async def cancel_then_idle() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(hanging.wait_async(), timeout=0.5)
        polled = len(cycles)
        await asyncio.sleep(2.5)  # the poller would have run two more cycles
        assert len(cycles) == polled

    run(cancel_then_idle())
    assert cycles == [1]
    hanging.cancel()


def test_an_error_in_a_cycle_reaches_the_waiter_as_in_wait() -> None:
    """A backend that answers nonsense: the first cycle asks it (the job is still running)."""

    class Broken(LocalBackend):
        name = "broken"

        def parse_status(self, result, job_ids, finished=False):  # type: ignore[no-untyped-def]
            return dict.fromkeys(job_ids, 42)

    JobScript.register_backend(Broken())
    message = r"^backend .* returned invalid status 42$"
    with pytest.raises(ValueError, match=message):
        JobScript("sleep 3", jobname="b", backend="broken").submit().wait(timeout=10)
    result = JobScript("sleep 3", jobname="c", backend="broken").submit()
    with pytest.raises(ValueError, match=message):
        run(result.wait_async(timeout=10))


def test_an_unreachable_remote_is_logged_and_the_wait_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky(LocalBackend):
        """The first status command fails as a cut link does."""

        name = "flaky"
        failures = 1

        def status_command(self, runs, finished=False):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise TransientTransportError(
                    255, ["ssh", "login", "status"], stderr="Connection refused", remote="login"
                )
            return super().status_command(runs, finished)

    JobScript.register_backend(Flaky())
    result = JobScript("sleep 2", jobname="f", backend="flaky").submit()
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        run(result.wait_async(timeout=60))
    assert result.status == COMPLETED
    assert "cannot reach None (" in caplog.text and "Connection refused" in caplog.text
    assert "); still waiting" in caplog.text


def test_as_completed_async_shows_progress_in_place(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "is_watched", lambda stream: True)
    results = [JobScript("true", jobname="p").submit(), JobScript("exit 3", jobname="q").submit()]
    run(collect(results, timeout=60))
    assert [r.status for r in results] == [COMPLETED, FAILED]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "0 pending, 0 running, 1 completed, 1 failed" in err.split("\r")[-1]


def test_each_event_loop_has_its_own_poller() -> None:
    first = JobScript("true", jobname="a").submit()
    run(first.wait_async(timeout=60))
    second = JobScript("true", jobname="b").submit()
    run(second.wait_async(timeout=60))  # a new loop: the first loop's poller is not reused
    assert (first.status, second.status) == (COMPLETED, COMPLETED)
    assert aio._POLLERS == {}  # a poller with nothing to poll is dropped, and its loop with it
