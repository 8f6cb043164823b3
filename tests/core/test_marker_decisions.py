"""How a poll cycle weighs a job's markers against the scheduler's answers (a scripted scheduler)."""

from __future__ import annotations

import json
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


def array(scheduler: ScriptedScheduler, tmp_path: Path, job_id: str, tasks: int) -> AsyncResult:
    result = job(scheduler, tmp_path, job_id)
    result.task_ids = [str(task) for task in range(1, tasks + 1)]
    return result


def mark_task(tmp_path: Path, job_id: str, task: int, exit_text: str | None = None) -> None:
    (tmp_path / f"cj-{job_id}.{task}.start").write_text("start\n")
    if exit_text is not None:
        (tmp_path / f"cj-{job_id}.{task}.exit").write_text(exit_text + "\n")


def test_an_array_with_known_tasks_is_read_from_its_task_markers(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    failing, passing = array(scheduler, tmp_path, "20", 4), array(scheduler, tmp_path, "21", 2)
    scheduler.queue = {"20": PENDING, "21": PENDING}
    poll([failing, passing])
    mark_task(tmp_path, "20", 1, "exit 0")
    mark_task(tmp_path, "20", 2)
    mark_task(tmp_path, "21", 1, "exit 0")
    clock[0] += 1
    poll([failing, passing])
    assert [failing._status, passing._status] == [RUNNING, RUNNING], "a task started"
    mark_task(tmp_path, "20", 2, "exit 0")
    mark_task(tmp_path, "20", 3, "exit 3")
    mark_task(tmp_path, "20", 4, "exit 7")
    mark_task(tmp_path, "21", 2, "exit 0")
    clock[0] += 1
    poll([failing, passing])
    assert [(r._status, r.exit_code) for r in (failing, passing)] == [(FAILED, 3), (COMPLETED, 0)]
    assert len(scheduler.asked) == 1, "the markers decided: the scheduler was asked only at first"


def test_an_array_task_killed_by_a_signal_asks_the_scheduler_at_once(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    result = array(scheduler, tmp_path, "22", 2)
    scheduler.queue = {"22": RUNNING}
    poll([result])
    mark_task(tmp_path, "22", 1, "exit 0")
    mark_task(tmp_path, "22", 2, "signal TERM")
    scheduler.queue = {"22": COMPLETED}
    clock[0] += 1
    poll([result])
    assert len(scheduler.asked) == 2
    assert (result._status, result.exit_code) == (FAILED, None), "a killed task fails the array"


def test_an_array_task_that_never_leaves_a_marker_waits_the_grace_for_the_scheduler(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    result = array(scheduler, tmp_path, "23", 3)
    mark_task(tmp_path, "23", 1, "exit 0")
    mark_task(tmp_path, "23", 3, "exit 0")
    scheduler.queue = {"23": COMPLETED}
    poll([result])
    assert result._status == RUNNING, "tasks started; task 2's marker may still show"
    clock[0] += AsyncResult.marker_grace
    poll([result])
    assert (result._status, result.exit_code) == (COMPLETED, None)
    assert len(scheduler.asked) == 2


def test_an_array_with_a_failed_task_is_never_completed(
    scheduler: ScriptedScheduler, tmp_path: Path, clock: list[float]
) -> None:
    """Task 2 exited 3, task 1 left no marker: the scheduler's COMPLETED (after the grace) is
    not taken as the array's success."""
    result = array(scheduler, tmp_path, "28", 2)
    mark_task(tmp_path, "28", 2, "exit 3")
    scheduler.queue = {"28": COMPLETED}
    poll([result])
    clock[0] += AsyncResult.marker_grace
    poll([result])
    assert (result._status, result.exit_code) == (FAILED, 3)


class TaskScheduler(ScriptedScheduler):
    """A scripted scheduler that also answers the per-task query, counting it."""

    name = "scripted-tasks"

    def __init__(self) -> None:
        super().__init__()
        self.tasks: dict[str, int] = {}
        self.task_queries = 0

    def cmd_task_status(self, run):  # type: ignore[no-untyped-def]
        self.task_queries += 1
        return ["true"]

    def get_task_status(self, response, run):  # type: ignore[no-untyped-def]
        return dict(self.tasks)


def test_task_status_comes_from_the_markers_without_the_scheduler(tmp_path: Path) -> None:
    scheduler = TaskScheduler()
    result = array(scheduler, tmp_path, "24", 3)
    for task, code in ((1, 0), (2, 3), (3, 0)):
        mark_task(tmp_path, "24", task, f"exit {code}")
    assert result.task_status() == {"1": COMPLETED, "2": FAILED, "3": COMPLETED}
    assert scheduler.task_queries == 0


def test_task_status_asks_the_scheduler_only_for_tasks_without_an_exit_code(
    tmp_path: Path,
) -> None:
    scheduler = TaskScheduler()
    result = array(scheduler, tmp_path, "25", 4)
    mark_task(tmp_path, "25", 1, "exit 0")
    mark_task(tmp_path, "25", 2, "exit 4")
    mark_task(tmp_path, "25", 3, "signal TERM")
    scheduler.tasks = {"1": FAILED, "2": COMPLETED, "3": CANCELLED, "4": PENDING}
    assert result.task_status() == {"1": COMPLETED, "2": FAILED, "3": CANCELLED, "4": PENDING}
    assert scheduler.task_queries == 1


def test_task_status_of_an_array_of_unknown_tasks_asks_the_scheduler(tmp_path: Path) -> None:
    scheduler = TaskScheduler()
    result = job(scheduler, tmp_path, "26")  # an old cache file, or a backend without task IDs
    mark_task(tmp_path, "26", 1, "exit 0")
    scheduler.tasks = {"1": COMPLETED, "2": RUNNING}
    assert result.task_status() == {"1": COMPLETED, "2": RUNNING}
    assert scheduler.task_queries == 1


def test_the_task_ids_are_cached_and_old_cache_files_still_load(tmp_path: Path) -> None:
    result = AsyncResult("local")
    result.job_id, result.task_ids = "27", ["1", "2"]
    result.dump(str(tmp_path / "new.json"))
    assert AsyncResult.from_cache(str(tmp_path / "new.json")).task_ids == ["1", "2"]
    record = json.loads((tmp_path / "new.json").read_text())
    del record["task_ids"]
    (tmp_path / "old.json").write_text(json.dumps(record))
    assert AsyncResult.from_cache(str(tmp_path / "old.json")).task_ids is None
