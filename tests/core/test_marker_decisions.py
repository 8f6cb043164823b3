"""How a poll cycle weighs a job's markers against the scheduler's answers (a scripted scheduler)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from clusterjob import AsyncResult
from clusterjob.backends import ClusterjobBackend, CommandResult
from clusterjob.polling import poll
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING


class ScriptedScheduler(ClusterjobBackend):
    """Answers the queue (``finished=False``) and accounting (``finished=True``) from two dicts."""

    name = "scripted"

    def __init__(self) -> None:
        self.queue: dict[str, int | None] = {}
        self.accounting: dict[str, int | None] = {}
        self.asked: list[tuple[bool, list[str]]] = []

    def cmd_submit(self, jobscript):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def get_job_id(self, response):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def cmd_cancel(self, run):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def status_command(self, runs, finished=False):  # type: ignore[no-untyped-def]
        self.asked.append((finished, [str(r.job_id) for r in runs]))
        return ["true"]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        answers = self.accounting if finished else self.queue
        return {job_id: answers.get(job_id) for job_id in job_ids}


@pytest.fixture
def scheduler() -> ScriptedScheduler:
    return ScriptedScheduler()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.monotonic`` of the poller, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr("clusterjob.polling.time.monotonic", lambda: now[0])
    return now


def job(scheduler: ScriptedScheduler, tmp_path: Path, job_id: str) -> AsyncResult:
    result = AsyncResult(scheduler)
    result.job_id, result.marker_folder, result.marker_name = job_id, str(tmp_path), f"cj-{job_id}"
    return result


def mark(tmp_path: Path, job_id: str, start: bool = True, exit_text: str | None = None) -> None:
    if start:
        (tmp_path / f"cj-{job_id}.start").write_text("start\n")
    if exit_text is not None:
        (tmp_path / f"cj-{job_id}.exit").write_text(exit_text + "\n")


def test_an_exit_marker_decides_without_the_scheduler(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    results = [job(scheduler, tmp_path, str(i)) for i in range(3)]
    scheduler.queue = {"0": PENDING, "1": PENDING, "2": PENDING}
    poll(results)
    assert scheduler.asked == [(False, ["0", "1", "2"])], (
        "the first cycle asks, for all jobs at once"
    )
    mark(tmp_path, "0", exit_text="exit 0")
    mark(tmp_path, "1", exit_text="exit 3")
    mark(tmp_path, "2")
    clock[0] += 10
    poll(results)
    assert [(r.status, r.exit_code) for r in results] == [
        (COMPLETED, 0),
        (FAILED, 3),
        (RUNNING, None),
    ]
    assert len(scheduler.asked) == 1, "markers only, until scheduler_interval passed"
    clock[0] += AsyncResult.scheduler_interval
    poll(results)
    assert scheduler.asked[1:] == [(False, ["2"])]


@pytest.mark.parametrize(
    ("said", "status"),
    [(CANCELLED, CANCELLED), (FAILED, FAILED), (COMPLETED, FAILED), (RUNNING, RUNNING)],
)
def test_a_signal_marker_asks_the_scheduler_at_once(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float], said: int, status: int
) -> None:
    result = job(scheduler, tmp_path, "7")
    scheduler.queue = {"7": RUNNING}
    poll([result])
    mark(tmp_path, "7", exit_text="signal TERM")
    scheduler.queue = {"7": said}
    clock[0] += 1
    poll([result])
    assert len(scheduler.asked) == 2
    assert (result._status, result.exit_code) == (status, None)


def test_a_killed_job_without_an_exit_marker_takes_the_schedulers_failure(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    result = job(scheduler, tmp_path, "8")
    mark(tmp_path, "8")  # started, then SIGKILL: no exit marker
    scheduler.queue = {"8": FAILED}
    poll([result])
    assert result._status == FAILED


def test_an_unlisted_job_without_marker_goes_to_accounting_after_the_grace(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    result = job(scheduler, tmp_path, "9")
    scheduler.accounting = {"9": COMPLETED}
    poll([result])
    assert scheduler.asked == [(False, ["9"])], "no accounting query yet: the marker may still show"
    assert result._status == PENDING
    clock[0] += AsyncResult.marker_grace
    poll([result])
    assert scheduler.asked[1:] == [(False, ["9"]), (True, ["9"])]
    assert result._status == COMPLETED


def test_completed_without_an_exit_marker_waits_the_grace_for_the_exit_code(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    result = job(scheduler, tmp_path, "10")
    scheduler.queue = {"10": COMPLETED}
    poll([result])
    assert result._status == PENDING
    clock[0] += 5
    mark(tmp_path, "10", exit_text="exit 0")
    poll([result])
    assert (result._status, result.exit_code) == (COMPLETED, 0)
    other = job(scheduler, tmp_path, "11")
    scheduler.queue = {"11": COMPLETED}
    poll([other])
    clock[0] += AsyncResult.marker_grace
    poll([other])
    assert (other._status, other.exit_code) == (COMPLETED, None)


def test_jobs_without_markers_are_asked_every_cycle(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    plain = job(scheduler, tmp_path, "12")
    plain.marker_name = None
    marked = job(scheduler, tmp_path, "13")
    scheduler.queue = {"12": RUNNING, "13": RUNNING}
    poll([plain, marked])
    clock[0] += 1
    poll([plain, marked])
    assert scheduler.asked == [(False, ["12", "13"]), (False, ["12"])]


def test_array_task_markers_hand_the_job_to_the_scheduler(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    result = job(scheduler, tmp_path, "14")
    (tmp_path / "cj-14.1.start").write_text("start\n")
    (tmp_path / "cj-14.1.exit").write_text("exit 0\n")
    scheduler.queue = {"14": RUNNING}
    poll([result])
    clock[0] += 1
    poll([result])
    assert result._status == RUNNING, "one task's exit is not the array's"
    assert len(scheduler.asked) == 2, "asked every cycle, as without markers"
