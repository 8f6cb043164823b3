"""Batched polling (one scheduler command per cycle), as_completed, timeouts (the CLI: test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterjob import JobScript, as_completed, wait_all
from clusterjob.backends.local import LocalBackend
from clusterjob.status import COMPLETED, FAILED


class CountingLocal(LocalBackend):
    """The local backend, counting the status commands it hands out (and how many jobs each asks about)."""

    name = "counting"

    def __init__(self) -> None:
        self.batched: list[int] = []

    def status_command(self, runs, finished=False):
        command = super().status_command(runs, finished)
        if command is not None:
            self.batched.append(len(runs))
        return command


@pytest.fixture(autouse=True)
def local_defaults(tmp_path: Path) -> None:
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1


def test_wait_all_uses_one_command_per_cycle() -> None:
    backend = CountingLocal()
    JobScript.register_backend(backend)
    results = [
        JobScript(
            f"sleep {i % 3}", jobname=f"b{i}", backend="counting", exit_markers=False
        ).submit()
        for i in range(20)
    ]
    assert wait_all(results, timeout=120) == [COMPLETED] * 20
    # One command per cycle, for all unfinished jobs (the last one too: a batch of one).
    assert backend.batched[0] == 20
    assert backend.batched == sorted(
        backend.batched, reverse=True
    )  # only unfinished jobs are asked about


def test_as_completed_yields_in_finishing_order_and_times_out() -> None:
    slow = JobScript("sleep 3", jobname="slow").submit()
    fast = JobScript("true", jobname="fast").submit()
    assert [r.job_id for r in as_completed([slow, fast], timeout=60)] == [fast.job_id, slow.job_id]
    hanging = JobScript("sleep 60", jobname="hang").submit()
    with pytest.raises(TimeoutError, match="1 of 1 jobs still unfinished after 1 s"):
        list(as_completed([hanging], timeout=1))
    assert wait_all([hanging], timeout=0.5) == [hanging.status]
    hanging.cancel()


class QueueOnlyBatch(LocalBackend):
    """A first query that knows only queued jobs (like squeue); finished jobs come from the second."""

    name = "queueonly"

    def status_command(self, runs, finished=False):
        return super().status_command(runs) if finished else ["true"]  # says nothing about any job

    def parse_status(self, result, job_ids, finished=False):
        return super().parse_status(result, job_ids) if finished else {}


def test_jobs_unknown_to_the_first_query_are_asked_with_the_finished_query() -> None:
    """Regression: jobs the first query did not report were never asked again."""
    JobScript.register_backend(QueueOnlyBatch())
    results = [
        JobScript(f"exit {i % 2}", jobname=f"q{i}", backend="queueonly").submit() for i in range(3)
    ]
    assert wait_all(results, timeout=60) == [COMPLETED, FAILED, COMPLETED]
