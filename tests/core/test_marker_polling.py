"""Jobs with exit markers, end to end on the local backend: few scheduler questions, exit codes, fallbacks."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, polling, wait_all
from clusterjob.backends.local import LocalBackend
from clusterjob.marker_files import read_markers
from clusterjob.markers import remove_marker_lines
from clusterjob.status import COMPLETED, FAILED, RUNNING


class CountingLocal(LocalBackend):
    """The local backend, counting the status commands it hands out."""

    name = "counting"

    def __init__(self) -> None:
        self.asked: list[int] = []

    def status_command(self, runs, finished=False):  # type: ignore[no-untyped-def]
        command = super().status_command(runs, finished)
        if command is not None:
            self.asked.append(len(runs))
        return command


@pytest.fixture
def counting(tmp_path: Path) -> CountingLocal:
    backend = CountingLocal()
    JobScript.register_backend(backend)
    JobScript.backend = "counting"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 0.2
    return backend


def test_the_markers_finish_jobs_and_the_scheduler_is_asked_once(counting: CountingLocal) -> None:
    results = [JobScript(f"sleep 1; exit {i % 2 * 3}", jobname=f"m{i}").submit() for i in range(6)]
    started = time.monotonic()
    assert wait_all(results, timeout=60) == [COMPLETED, FAILED] * 3
    assert time.monotonic() - started < 10
    assert [r.exit_code for r in results] == [0, 3] * 3
    assert len(counting.asked) == 1, (
        "one status command, in the first cycle, for the unfinished jobs"
    )


def test_the_submitted_script_differs_from_render_script_only_by_the_marker_lines(
    counting: CountingLocal, tmp_path: Path
) -> None:
    job = JobScript("#!/bin/bash\n#LOCAL --note\necho hi", jobname="same", threads=2)
    result = job.submit()
    submitted = (tmp_path / job.script_filename()).read_text()
    assert submitted != str(job)
    assert remove_marker_lines(submitted) == str(job)
    assert result.get(timeout=30) == COMPLETED
    assert Path(str(result.marker_folder)) == tmp_path / ".clusterjob-markers"


def test_the_exit_code_and_marker_are_cached(counting: CountingLocal, tmp_path: Path) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    result = JobScript("exit 3", jobname="three").submit(cache_id="three")
    assert result.get(timeout=30) == FAILED
    record = json.loads(Path(str(result.cache_file)).read_text())
    assert (record["status"], record["exit_code"], record["marker_name"]) == (
        "FAILED",
        3,
        result.tag,
    )
    again = AsyncResult.from_cache(str(result.cache_file))
    assert (again.status, again.exit_code) == (FAILED, 3)


def test_a_resubmission_never_reads_the_marker_of_the_earlier_run(
    counting: CountingLocal, tmp_path: Path
) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("test -e flag || exit 5", jobname="again", workdir=".")
    first = job.submit(cache_id="again")
    assert first.get(timeout=30) == FAILED
    (tmp_path / "flag").write_text("")
    second = job.submit(cache_id="again")  # retry=True: the FAILED job is submitted again
    assert second.marker_name != first.marker_name
    assert (second.get(timeout=30), second.exit_code) == (COMPLETED, 0)


def test_a_start_marker_makes_the_job_running(counting: CountingLocal) -> None:
    result = JobScript("sleep 5", jobname="runs").submit()
    deadline = time.monotonic() + 10
    while result.status != RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    assert result.status == RUNNING
    assert len(counting.asked) == 1, "the start marker, not the scheduler, said it runs"
    result.cancel()


@pytest.mark.parametrize(
    "body", ["#!/usr/bin/env python3\nraise SystemExit(3)", "#!/bin/tcsh\nexit 3"]
)
def test_a_body_with_its_own_non_posix_shebang_is_polled_plainly(
    counting: CountingLocal, tmp_path: Path, body: str
) -> None:
    job = JobScript(body, jobname="py")
    result = job.submit()
    assert result.marker_name is None
    assert (tmp_path / job.script_filename()).read_text() == str(job)
    if body.startswith("#!/usr/bin/env python3"):
        assert result.get(timeout=30) == FAILED


def test_an_unwritable_marker_folder_costs_one_warning_and_no_job(
    counting: CountingLocal, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    JobScript.marker_folder = str(
        tmp_path / "file" / "markers"
    )  # below a regular file: not even root can
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        results = [JobScript("exit 2", jobname=f"ro{i}").submit() for i in range(3)]
    warnings = [r.getMessage() for r in caplog.records if "exit markers" in r.getMessage()]
    assert warnings == [
        (
            f"cannot write exit markers into {tmp_path}/file/markers ([Errno 20] Not a directory: "
            f"'{tmp_path}/file/markers'): jobs there are watched by polling the scheduler instead "
            "(slower); set JobScript.marker_folder to a writable folder that the compute nodes see"
        )
    ]
    assert all(r.marker_name is None for r in results)
    assert wait_all(results, timeout=60) == [FAILED] * 3


def test_a_job_whose_markers_never_show_is_watched_through_the_scheduler(
    counting: CountingLocal,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on a cluster whose compute nodes do not see the marker folder."""
    monkeypatch.setattr(AsyncResult, "scheduler_interval", 0.5)
    monkeypatch.setattr(AsyncResult, "marker_grace", 1.0)
    result = JobScript("sleep 3", jobname="unseen").submit()
    result.marker_folder = str(tmp_path / "elsewhere")  # where the job does not write
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        assert result.get(timeout=60) == COMPLETED
    assert any("its start marker did not appear" in r.getMessage() for r in caplog.records)
    assert result.exit_code is None or result.exit_code == 0


def test_markers_that_appear_late_decide_again(
    counting: CountingLocal,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As after a long prologue or on a lagging network file system: the start marker comes
    after ``marker_grace``; the scheduler watched the job meanwhile, then the markers tell."""
    monkeypatch.setattr(AsyncResult, "scheduler_interval", 0.5)
    monkeypatch.setattr(AsyncResult, "marker_grace", 1.0)
    result = JobScript("sleep 4; exit 3", jobname="late").submit()
    written = Path(str(result.marker_folder))
    result.marker_folder = str(tmp_path / "late")  # not there yet
    with caplog.at_level(logging.INFO, logger="clusterjob"):
        deadline = time.monotonic() + 30
        while not any("did not appear" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the start marker was never declared overdue"
            result.poll()
            time.sleep(0.1)
        (tmp_path / "late").symlink_to(written)  # the markers show up
        assert result.get(timeout=60) == FAILED
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"job {result.job_id} (late): its markers appeared after all; watching it through them again"
        in messages
    )
    assert result.exit_code == 3


def test_overdue_markers_are_read_once_a_scheduler_interval(
    counting: CountingLocal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the compute nodes never see costs a marker read per interval, not per cycle."""
    reads: list[float] = []

    def counted_read(transport, entries):  # type: ignore[no-untyped-def]
        reads.append(time.monotonic())
        return read_markers(transport, entries)

    monkeypatch.setattr(polling, "read_markers", counted_read)
    monkeypatch.setattr(AsyncResult, "scheduler_interval", 2.0)
    monkeypatch.setattr(AsyncResult, "marker_grace", 0.5)
    result = JobScript("sleep 30", jobname="unseen").submit()
    result.marker_folder = str(tmp_path / "elsewhere")
    try:
        deadline = time.monotonic() + 30
        while result._watch is None or not result._watch.start_overdue:
            assert time.monotonic() < deadline, "the start marker was never declared overdue"
            result.poll()
            time.sleep(0.05)
        overdue_since = time.monotonic()
        del reads[:]
        cycles = 0
        while time.monotonic() - overdue_since < 5:
            result.poll()
            cycles += 1
            time.sleep(0.05)
        elapsed = time.monotonic() - overdue_since
        assert cycles > 3 * len(reads), (cycles, reads)
        assert len(reads) <= elapsed / 2.0 + 1, reads
    finally:
        result.cancel()


def test_exit_markers_can_be_switched_off_also_from_an_ini_file(tmp_path: Path) -> None:
    ini = tmp_path / "job.ini"
    ini.write_text("[Attributes]\nexit_markers = no\n")
    JobScript.read_defaults(str(ini))
    assert JobScript.exit_markers is False
    assert JobScript("true", jobname="x", exit_markers="On").exit_markers is True
    with pytest.raises(
        ValueError, match="^JobScript.exit_markers must be true or false, not 'maybe'$"
    ):
        JobScript("true", jobname="x", exit_markers="maybe")
