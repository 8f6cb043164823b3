"""Exit markers on the real SLURM: the job's word where it has one, SLURM's on kills.

The test cluster cannot enforce memory limits (``TaskPlugin=task/none``,
``ProctrackType=proctrack/linuxproc``, no ``JobAcctGatherParams=OverMemoryKill``;
see tests/schedulers/slurm.sh), so an out-of-memory kill is tested as what it
is to the job's shell: a SIGKILL that leaves no exit marker.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, RUNNING
from clusterjob_slurm import SlurmBackend
from helpers.slurm import cancel_jobs_named
from helpers.waiting import TIMEOUT, wait_for

pytestmark = pytest.mark.slurm

HOSTILE = "it's a $(touch pwned) `x` dir; *"


@pytest.fixture
def prefix(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A unique job-name prefix; every job carrying it is cancelled at the end."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        AsyncResult, "scheduler_interval", 5.0
    )  # not 60 s: keep the kill tests short
    JobScript.backend = "slurm"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    JobScript.resources["queue"] = slurm_env.get("SLURM_PARTITION", "debug")
    name = f"cjm{secrets.token_hex(3)}"
    yield name
    cancel_jobs_named(name)


def sacct_state(job_id: str) -> str:
    return subprocess.run(
        ["sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_exit_codes_come_from_the_markers(prefix: str) -> None:
    results = [
        JobScript(f"sleep 1; exit {code}", jobname=f"{prefix}-{code}").submit() for code in (0, 3)
    ]
    assert all(r.marker_name for r in results)
    assert wait_all(results, timeout=TIMEOUT) == [COMPLETED, FAILED]
    assert [r.exit_code for r in results] == [0, 3]


def test_scancel_from_outside_is_cancelled(prefix: str) -> None:
    """The trapped SIGTERM is recorded; the marker says "ask SLURM", which says CANCELLED."""
    result = JobScript("sleep 300", jobname=f"{prefix}-scancel").submit()
    wait_for(lambda: result.status == RUNNING, "the job to run")
    subprocess.run(["scancel", str(result.job_id)], check=True)
    assert result.get(timeout=TIMEOUT) == CANCELLED
    marker = Path(str(result.marker_folder)) / f"{result.marker_name}.exit"
    assert marker.read_text() == "signal TERM\n"


def test_a_sigkilled_job_leaves_no_exit_marker_and_is_failed(prefix: str) -> None:
    """What the OOM killer or a dying node does to the job's shell: SLURM's word decides."""
    result = JobScript("sleep 1; kill -9 $$", jobname=f"{prefix}-kill9").submit()
    assert result.get(timeout=TIMEOUT) == FAILED
    assert not (Path(str(result.marker_folder)) / f"{result.marker_name}.exit").exists()
    assert (Path(str(result.marker_folder)) / f"{result.marker_name}.start").exists()


@pytest.mark.slow
def test_a_walltime_kill_is_failed(prefix: str) -> None:
    """SLURM sends SIGTERM at the limit (recorded), then SIGKILL after KillWait: TIMEOUT is FAILED."""
    result = JobScript("sleep 300", jobname=f"{prefix}-walltime", time="00:01:00").submit()
    assert result.get(timeout=TIMEOUT) == FAILED
    assert sacct_state(str(result.job_id)) == "TIMEOUT"


def test_an_unwritable_marker_folder_falls_back_with_one_warning(
    prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    JobScript.marker_folder = str(tmp_path / "file" / "markers")
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        results = [JobScript("exit 3", jobname=f"{prefix}-ro{i}").submit() for i in range(2)]
        assert wait_all(results, timeout=TIMEOUT) == [FAILED, FAILED]
    assert [r.marker_name for r in results] == [None, None]
    assert [r.getMessage() for r in caplog.records if "exit markers" in r.getMessage()] == [
        (
            f"cannot write exit markers into {tmp_path}/file/markers ([Errno 20] Not a directory: "
            f"'{tmp_path}/file/markers'): jobs there are watched by polling the scheduler instead "
            "(slower); set JobScript.marker_folder to a writable folder that the compute nodes see"
        )
    ]


def test_hostile_folder_and_job_names_stay_quoted(prefix: str, tmp_path: Path) -> None:
    folder = tmp_path / HOSTILE
    job = JobScript(
        "exit 4", jobname=f'{prefix}-it\'s "odd"', rootdir=str(folder), marker_folder=HOSTILE
    )
    result = job.submit()
    assert result.get(timeout=TIMEOUT) == FAILED
    assert result.exit_code == 4
    assert (folder / HOSTILE / f"{result.marker_name}.exit").read_text() == "exit 4\n"
    assert not list(tmp_path.rglob("pwned"))


def test_an_array_is_read_from_its_task_markers(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four tasks, task 3 exits 3: FAILED with exit code 3, per-task statuses from the markers,
    and no more scheduler status commands than for a single job (SLURM agrees afterwards)."""
    monkeypatch.setattr(AsyncResult, "scheduler_interval", 60.0)  # the default cadence
    asked: list[str] = []
    task_queries: list[str] = []
    status_command = SlurmBackend.status_command
    cmd_task_status = SlurmBackend.cmd_task_status

    def counted(self, runs, finished=False):  # type: ignore[no-untyped-def]
        asked.append("sacct" if finished else "squeue")
        return status_command(self, runs, finished)

    def counted_tasks(self, run):  # type: ignore[no-untyped-def]
        task_queries.append(str(run.job_id))
        return cmd_task_status(self, run)

    monkeypatch.setattr(SlurmBackend, "status_command", counted)
    monkeypatch.setattr(SlurmBackend, "cmd_task_status", counted_tasks)
    body = 'sleep 1; [ "$SLURM_ARRAY_TASK_ID" != 3 ] || exit 3'
    single = JobScript("sleep 1; exit 3", jobname=f"{prefix}-single").submit()
    assert single.get(timeout=TIMEOUT) == FAILED
    single_commands, asked[:] = len(asked), []

    result = JobScript(body, jobname=f"{prefix}-array", array="1-4").submit()
    assert result.task_ids == ["1", "2", "3", "4"]
    assert (result.get(timeout=TIMEOUT), result.exit_code) == (FAILED, 3)
    assert len(asked) <= single_commands, f"array: {asked}, single job: {single_commands}"
    expected = {"1": COMPLETED, "2": COMPLETED, "3": FAILED, "4": COMPLETED}
    assert result.task_status() == expected
    assert task_queries == [], "every task has its exit marker: SLURM is not asked"

    backend = SlurmBackend()

    def slurm_says() -> dict[str, int]:
        answer = result.transport.run(cmd_task_status(backend, result), check=False)
        return backend.get_task_status(answer.stdout, result)

    wait_for(lambda: slurm_says() == expected, "SLURM to report the same task statuses", 60)
