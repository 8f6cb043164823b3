"""End to end through real TORQUE-style commands: the ``qsub``/``qstat``/``qdel`` of
``slurm-wlm-torque`` over the SLURM test cluster (set up by tests/schedulers/torque.sh).

What those commands support is tested: submission with ``#PBS`` resources,
completion, cancellation, status after the job ended, dependencies. Their
``qstat`` reports every ended job as ``C`` without an exit status, so a
failing job is seen as finished but cannot be told from a successful one
(documented; the exact outcome is tested against vendor formats in
test_pbs_qstat.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.async_result import AsyncResult
from clusterjob.polling import poll
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, is_finished
from clusterjob_pbs import PbsBackend
from clusterjob_pbs.qstat import parse_qstat_full
from helpers.commands import fake_command, path_first
from helpers.results import job_result
from helpers.waiting import TIMEOUT, wait_for

pytestmark = [pytest.mark.torque, pytest.mark.slow]


@pytest.fixture
def torque(torque_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The wrappers first on PATH; jobs are written to and submitted from a fresh folder."""
    monkeypatch.setenv("PATH", path_first(torque_env["TORQUE_BIN"]))
    JobScript.rootdir = str(tmp_path)
    JobScript.backend = "pbs"
    JobScript.max_sleep_interval = 2
    return tmp_path


def qstat_full(job_id: str) -> str:
    return subprocess.run(
        ["qstat", "-f", job_id], check=False, capture_output=True, text=True
    ).stdout


def test_submit_runs_with_pbs_resources_and_completes(torque: Path) -> None:
    job = JobScript(
        "echo $SLURM_JOB_CPUS_PER_NODE > cpus.txt\necho hello from {jobname}",
        jobname="cj_pbs_ok",
        nodes=1,
        ppn=2,
        time="5",
        mem=200,
        stdout="ok.out",
        stderr="ok.err",
    )
    result = job.submit()
    assert isinstance(result, AsyncResult)
    assert result.job_id and result.job_id.isdigit()
    resources = parse_qstat_full(qstat_full(result.job_id))[0]
    assert resources.get("Job_Name") == "cj_pbs_ok"  # #PBS -N
    assert resources.get("Resource_List.walltime") == "00:05:00"  # #PBS -l walltime
    slurm_view = subprocess.run(
        ["scontrol", "show", "job", result.job_id], check=False, capture_output=True, text=True
    )
    assert (
        "MinMemoryNode=200M" in slurm_view.stdout
    )  # #PBS -l mem=200mb (the wrappers make it per node)
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED
    assert (torque / "ok.out").read_text() == "hello from cj_pbs_ok\n"  # -o given to qsub
    assert (torque / "cpus.txt").read_text().strip() == "2"  # #PBS -l nodes=1:ppn=2


def test_failing_job_is_failed_with_its_exit_code_from_its_marker(torque: Path) -> None:
    """The wrappers' qstat reports every ended job as C: the job's exit marker tells the failure."""
    job = JobScript(
        "echo failing\nexit 3", jobname="cj_pbs_fail", stdout="fail.out", stderr="fail.err"
    )
    result = job.submit()
    assert isinstance(result, AsyncResult) and result.marker_name
    result.wait(timeout=TIMEOUT)
    assert (result.status, result.exit_code) == (FAILED, 3)
    assert (torque / "fail.out").read_text() == "failing\n"


def test_without_markers_a_failing_job_is_seen_finished_but_its_failure_is_hidden(
    torque: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """slurm-wlm-torque's qstat has no exit status: documented limitation, reported with a warning."""
    job = JobScript(
        "echo failing\nexit 3",
        jobname="cj_pbs_fail",
        stdout="fail.out",
        stderr="fail.err",
        exit_markers=False,
    )
    result = job.submit()
    assert isinstance(result, AsyncResult)
    with caplog.at_level(logging.WARNING, logger="clusterjob.pbs"):
        result.wait(timeout=TIMEOUT)
        assert result.status == COMPLETED
    assert (torque / "fail.out").read_text() == "failing\n"
    assert "SLURM's TORQUE wrappers" in caplog.text


def test_cancel_a_running_job(torque: Path) -> None:
    job = JobScript(
        "echo started\nsleep 600", jobname="cj_pbs_cancel", stdout="c.out", stderr="c.err"
    )
    result = job.submit()
    assert isinstance(result, AsyncResult)
    wait_for(lambda: result.status == RUNNING, "the job to run")
    result.cancel()
    assert result.status == CANCELLED
    # The scheduler really ended it (qdel ran): qstat shows it completed.
    wait_for(
        lambda: [j.state for j in parse_qstat_full(qstat_full(str(result.job_id)))] == ["C"],
        "qstat to show C",
    )


def test_status_after_the_job_finished(torque: Path) -> None:
    JobScript.cache_folder = str(torque / "cache")
    job = JobScript("echo done", jobname="cj_pbs_after", stdout="a.out", stderr="a.err")
    result = job.submit()
    assert isinstance(result, AsyncResult)
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED

    # A new session asks the scheduler about the finished job: plain `qstat -f`...
    fresh = job_result("pbs", result.job_id)
    assert fresh.status == COMPLETED
    # ... and the finished=True command, whose `qstat -x` the wrappers reject, falls back.
    backend = PbsBackend()
    answer = subprocess.run(
        backend.cmd_status(fresh, finished=True), check=False, capture_output=True, text=True
    )
    assert answer.stderr == ""
    assert backend.get_status(answer.stdout, finished=True) == COMPLETED
    # The cache keeps the final status; submitting again returns the cached run.
    again = job.submit()
    assert isinstance(again, AsyncResult)
    assert again.job_id == result.job_id and again.status == COMPLETED


def test_unknown_job_has_no_status(torque: Path) -> None:
    backend = PbsBackend()
    missing = job_result(backend, "999999")
    for finished in (False, True):
        answer = subprocess.run(
            backend.cmd_status(missing, finished=finished),
            check=False,
            capture_output=True,
            text=True,
        )
        assert backend.get_status(answer.stdout, finished=finished) is None


def test_dependency_waits_for_the_first_job(torque: Path) -> None:
    first = JobScript(
        "sleep 8\necho first > first.txt", jobname="cj_pbs_first", stdout="1.out", stderr="1.err"
    )
    second = JobScript(
        "cat first.txt > second.txt", jobname="cj_pbs_second", stdout="2.out", stderr="2.err"
    )
    a = first.submit()
    b = second.submit(after=[a])
    assert isinstance(a, AsyncResult) and isinstance(b, AsyncResult)
    b_status = b.poll()
    if not is_finished(a.poll()):
        assert b_status == PENDING  # it cannot have started while the first job was unfinished
    b.wait(timeout=TIMEOUT)
    assert a.status == COMPLETED and b.status == COMPLETED
    assert (torque / "second.txt").read_text() == "first\n"


@pytest.fixture
def qstat_calls(torque: Path, torque_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``qstat`` first on PATH that appends its arguments to the returned file, then runs the wrapper's."""
    folder = torque / "logging-bin"
    log = torque / "qstat-calls.log"
    log.touch()
    real = shlex.quote(os.path.join(torque_env["TORQUE_BIN"], "qstat"))
    fake_command(folder, "qstat", f'echo "$*" >> {shlex.quote(str(log))}\nexec {real} "$@"\n')
    monkeypatch.setenv("PATH", path_first(folder))
    return log


def test_one_qstat_f_per_poll_cycle_for_all_jobs(torque: Path, qstat_calls: Path) -> None:
    """Plain polling (no exit markers): one ``qstat -f`` per cycle for every unfinished job."""
    jobs = [
        JobScript(
            f"echo {i}",
            jobname=f"cj_pbs_many{i}",
            stdout=f"m{i}.out",
            stderr=f"m{i}.err",
            exit_markers=False,
        )
        for i in range(3)
    ]
    runs = [r for r in (job.submit() for job in jobs) if isinstance(r, AsyncResult)]
    assert len(runs) == 3
    deadline = time.monotonic() + TIMEOUT
    cycles = 0
    while unfinished := [str(r.job_id) for r in runs if not is_finished(r._status)]:
        assert time.monotonic() < deadline, (
            f"timed out after {TIMEOUT} s waiting for jobs {unfinished}"
        )
        before = len(qstat_calls.read_text().splitlines())
        poll(runs)
        calls = qstat_calls.read_text().splitlines()[before:]
        assert calls == ["-f " + " ".join(unfinished)], f"poll cycle {cycles + 1}"
        cycles += 1
        time.sleep(1)
    assert [r.status for r in runs] == [COMPLETED] * 3
    assert cycles >= 1 and len(qstat_calls.read_text().splitlines()) == cycles
