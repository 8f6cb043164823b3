"""End to end on the real single-host Son of Grid Engine cell of tests/schedulers/sge.sh.

The cell: queue ``all.q`` with one slot per CPU, parallel environment ``smp``
(``allocation_rule $pe_slots``), scheduling every second and accounting
flushed at once. Waits are generous polls, never timed assertions. The ``sge`` fixture
(tests/sge/conftest.py) puts its commands first on PATH and the jobs in a fresh folder.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clusterjob import JobScript, wait_all
from clusterjob.async_result import AsyncResult
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, is_finished
from clusterjob_sge import SgeBackend
from helpers.commands import fake_command, path_first
from helpers.results import job_result
from helpers.waiting import TIMEOUT, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.slow]


def qstat_j(job_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qstat", "-j", job_id], capture_output=True, text=True, check=False)


def accounting(job_id: str) -> str:
    """The job's qacct record, waited for: the exit marker tells clusterjob the job finished
    before Grid Engine has written its accounting (a CI run's qacct found no record yet)."""

    def record() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["qacct", "-j", job_id], capture_output=True, text=True, check=False)

    wait_for(lambda: record().returncode == 0, f"the qacct record of job {job_id}")
    return record().stdout


def final_status(job_id: str) -> int:
    """The status the scheduler reports once the job has ended (polled until it tells)."""
    result = job_result(SgeBackend(), job_id)
    wait_for(lambda: is_finished(result.poll()), f"job {job_id} to be reported finished")
    return result.status


def submit(job: JobScript) -> AsyncResult:
    result = job.submit()
    assert isinstance(result, AsyncResult)
    assert result.job_id is not None and result.job_id.isdigit()
    return result


def test_job_completes_with_grid_engine_variables(sge: Path) -> None:
    body = textwrap.dedent(
        """\
        echo "id=$CLUSTERJOB_ID"
        echo "workdir=$CLUSTERJOB_WORKDIR"
        echo "submit_host=$CLUSTERJOB_SUBMIT_HOST"
        echo "name=$CLUSTERJOB_NAME"
        echo "nodelist=$CLUSTERJOB_NODELIST"
        echo "pwd=$(pwd)"
        echo "shell=$BASH_VERSION"
        """
    )
    job = JobScript(body, jobname="cj_sge_ok", time="5", mem=200, stdout="ok.out", stderr="ok.err")
    result = submit(job)
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED
    assert "-l h_rt=300,h_vmem=200M" in accounting(result.job_id)  # #$ -l h_rt / h_vmem
    lines = dict(line.split("=", 1) for line in (sge / "ok.out").read_text().splitlines())
    host = socket.gethostname().split(".")[0]
    assert lines["id"] == result.job_id
    assert lines["workdir"] == lines["pwd"] == str(sge)  # -cwd: the job runs where it was submitted
    assert lines["submit_host"] == host
    assert lines["name"] == "cj_sge_ok"
    assert lines["nodelist"] == host
    assert lines["shell"]  # -S /bin/bash


def test_an_ini_file_with_dashed_keys_is_accepted_by_qsub_as_meant(
    sge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original clusterjob's SGE options (``-V``, ``-j y``, ``-S /bin/bash``) written with their dashes."""
    (sge / "dashed.ini").write_text(
        "[Resources]\n-V = true\n-j = y\n-S = /bin/bash\n-o = dashed.out\n"
    )
    monkeypatch.setenv("CJ_DASHED_EXPORTED", "yes")  # reaches the job only through -V
    job = JobScript(
        'echo "out $CJ_DASHED_EXPORTED $BASH_VERSION"\necho err >&2', jobname="cj_sge_dashed"
    )
    job.read_settings(str(sge / "dashed.ini"))
    result = submit(job)
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED
    # Only these lines are the job's: with -V the job also gets what the caller's environment
    # makes its shell print (bash warns of a locale in LANG/LC_ALL that the host lacks).
    output = (sge / "dashed.out").read_text()
    lines = output.splitlines()
    assert "err" in lines, output  # -j y joined the streams
    out = [line.split() for line in lines if line.startswith("out ")]
    assert len(out) == 1 and out[0][:2] == ["out", "yes"], output  # -V exported
    assert len(out[0]) == 3, output  # -S /bin/bash: $BASH_VERSION is set


def test_failing_job_is_failed(sge: Path) -> None:
    job = JobScript(
        "echo failing\nexit 3", jobname="cj_sge_fail", stdout="fail.out", stderr="fail.err"
    )
    result = submit(job)
    result.wait(timeout=TIMEOUT)
    assert result.status == FAILED
    assert (sge / "fail.out").read_text() == "failing\n"


def test_a_job_without_a_qacct_record_gets_its_status_from_its_marker(
    sge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A qacct that never has the record (accounting file rotated, or not written): the marker tells."""
    fake_command(sge / "no-acct", "qacct", 'echo "error: job id $2 not found" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", path_first(sge / "no-acct"))
    monkeypatch.setattr(AsyncResult, "marker_grace", 2.0)
    results = [
        submit(JobScript(body, jobname=f"cj_sge_noacct{i}", stdout="n.out", stderr="n.err"))
        for i, body in enumerate(["sleep 1", "sleep 1; exit 7"])
    ]
    assert all(r.marker_name for r in results)
    assert wait_all(results, timeout=TIMEOUT) == [COMPLETED, FAILED]
    assert [r.exit_code for r in results] == [0, 7]
    plain = submit(
        JobScript(
            "exit 7",
            jobname="cj_sge_noacct_plain",
            stdout="n.out",
            stderr="n.err",
            exit_markers=False,
        )
    )
    wait_for(lambda: qstat_j(plain.job_id).returncode != 0, "the job to leave the queue")
    assert wait_all([plain], timeout=10) == [PENDING], "without its marker the job's end is unknown"


def test_an_array_job_is_read_from_its_task_markers(
    sge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qsub -t 1-3, task 2 exits 3, and a qacct without records: the tasks' markers tell the
    array FAILED with exit code 3, and each task's status, without Grid Engine being asked."""
    fake_command(sge / "no-acct", "qacct", 'echo "error: job id $2 not found" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", path_first(sge / "no-acct"))
    job = JobScript(
        '[ "$SGE_TASK_ID" != 2 ] || exit 3', jobname="cj_sge_array", t="1-3", stdout="a.out"
    )
    result = submit(job)
    assert result.task_ids == ["1", "2", "3"]
    assert (result.get(timeout=TIMEOUT), result.exit_code) == (FAILED, 3)
    assert result.task_status() == {"1": COMPLETED, "2": FAILED, "3": COMPLETED}


def test_cancel_a_running_job(sge: Path) -> None:
    job = JobScript(
        "echo started\nsleep 600", jobname="cj_sge_cancel", stdout="c.out", stderr="c.err"
    )
    result = submit(job)
    wait_for(lambda: result.status == RUNNING, "the job to run")
    wait_for(lambda: (sge / "c.out").exists(), "the job's output")
    result.cancel()
    assert result.status == CANCELLED
    # what the scheduler says, without clusterjob's memory: dr, then qacct failed 100 / exit 137
    assert final_status(result.job_id) == CANCELLED
    wait_for(lambda: qstat_j(result.job_id).returncode != 0, "the job to leave the queue")
    assert final_status(result.job_id) == CANCELLED


def test_parallel_environment_gives_the_slots(sge: Path, sge_env: dict[str, str]) -> None:
    job = JobScript(
        'echo "$NSLOTS $PE" > slots.txt\nulimit -v > vmem.txt',
        jobname="cj_sge_pe",
        nodes=1,
        ppn=1,
        threads=2,
        mem=400,
        stdout="pe.out",
        stderr="pe.err",
    )
    assert "#$ -pe smp 2" in str(job)
    result = submit(job)
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED
    assert (sge / "slots.txt").read_text().split() == ["2", sge_env.get("SGE_PE", "smp")]
    # mem is per node (400 MB); h_vmem per slot (200M); Grid Engine multiplies by the 2 slots
    assert (sge / "vmem.txt").read_text().strip() == str(400 * 1024)


def test_status_after_the_job_left_the_queue_comes_from_qacct(sge: Path) -> None:
    ok = submit(JobScript("true", jobname="cj_sge_acct_ok", stdout="a.out", stderr="a.err"))
    bad = submit(JobScript("exit 7", jobname="cj_sge_acct_bad", stdout="b.out", stderr="b.err"))
    for result in (ok, bad):
        wait_for(
            lambda r=result: qstat_j(r.job_id).returncode != 0,
            f"job {result.job_id} to leave the queue",
        )
    assert final_status(ok.job_id) == COMPLETED
    assert final_status(bad.job_id) == FAILED
    record = subprocess.run(
        ["qacct", "-j", bad.job_id], capture_output=True, text=True, check=False
    ).stdout
    assert "exit_status  7" in record


def test_walltime_limit_ends_the_job_as_failed(sge: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kill leaves no exit marker: the scheduler decides, asked every scheduler_interval,
    # and accounting after marker_grace (60 s each by default, on top of the qmaster's own
    # delay in enforcing h_rt).
    monkeypatch.setattr(AsyncResult, "scheduler_interval", 5.0)
    monkeypatch.setattr(AsyncResult, "marker_grace", 5.0)
    job = JobScript("sleep 120", jobname="cj_sge_h_rt", time="0:03", stdout="t.out", stderr="t.err")
    assert "#$ -l h_rt=00:00:03" in str(job)
    result = submit(job)
    result.wait(timeout=TIMEOUT)
    assert result.status == FAILED
    record = subprocess.run(
        ["qacct", "-j", result.job_id], capture_output=True, text=True, check=False
    ).stdout
    assert "failed       37" in record  # qmaster enforced h_rt


def test_dependency_waits_for_the_end_of_the_parent_even_a_failed_one(sge: Path) -> None:
    """-hold_jid releases when the parent ends, failure included (documented limitation)."""
    parent = submit(
        JobScript(
            "while [ ! -e go ]; do sleep 1; done\necho done > parent.done\nexit 4",
            jobname="cj_sge_parent",
            stdout="p.out",
            stderr="p.err",
        )
    )
    child_job = JobScript(
        "test -e parent.done && echo after-parent > child.txt",
        jobname="cj_sge_child",
        stdout="ch.out",
        stderr="ch.err",
    )
    child = child_job.submit(after=[parent])
    assert isinstance(child, AsyncResult)
    assert f"jid_predecessor_list (req): {parent.job_id}" in qstat_j(child.job_id).stdout
    assert child.poll() == PENDING  # hqw while the parent waits for the go file
    (sge / "go").touch()
    statuses = wait_all([parent, child], timeout=TIMEOUT)
    assert statuses == [FAILED, COMPLETED]
    assert (sge / "child.txt").read_text() == "after-parent\n"


def test_parent_exiting_100_keeps_its_dependents_held(sge: Path) -> None:
    """Grid Engine's own way to stop dependents: exit code 100 puts the job in error state."""
    parent = submit(JobScript("exit 100", jobname="cj_sge_p100", stdout="p.out", stderr="p.err"))
    child = JobScript("true", jobname="cj_sge_c100", stdout="c.out", stderr="c.err").submit(
        after=[parent]
    )
    assert isinstance(child, AsyncResult)
    try:
        parent.wait(timeout=TIMEOUT)
        assert parent.status == FAILED  # from its exit marker, maybe before qstat shows Eqw
        wait_for(
            lambda: (
                "Eqw"
                in subprocess.run(["qstat"], capture_output=True, text=True, check=False).stdout
            ),
            "Grid Engine to put the parent in error state (Eqw)",
        )
        assert child.poll() == PENDING  # hqw, and it stays so
    finally:
        subprocess.run(["qdel", child.job_id, parent.job_id], capture_output=True, check=False)


def test_many_jobs_are_polled_with_one_qstat(sge: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every poll asks about all unfinished jobs in one command, never one command per job."""
    batched: list[tuple[bool, int]] = []
    single: list[str] = []
    original_many, original_single = SgeBackend.status_command, SgeBackend.cmd_status

    def counting_many(self: SgeBackend, runs, finished=False):  # type: ignore[no-untyped-def]
        batched.append((finished, len(runs)))
        return original_many(self, runs, finished)

    def counting_single(self: SgeBackend, run, finished=False):  # type: ignore[no-untyped-def]
        single.append(run.job_id)
        return original_single(self, run, finished)

    monkeypatch.setattr(SgeBackend, "status_command", counting_many)
    monkeypatch.setattr(SgeBackend, "cmd_status", counting_single)
    results = [
        submit(
            JobScript(
                body,
                jobname=f"cj_sge_many{i}",
                stdout=f"m{i}.out",
                stderr=f"m{i}.err",
                exit_markers=False,  # plain polling: what the scheduler is asked each cycle
            )
        )
        for i, body in enumerate(["true", "exit 2", "sleep 2"])
    ]
    assert wait_all(results, timeout=TIMEOUT) == [COMPLETED, FAILED, COMPLETED]
    assert batched[0] == (False, 3)  # the first poll: one qstat for all three jobs
    assert single == []  # batch first: the last job left is asked about in a batch of one


RUN = secrets.token_hex(3)

CRASHING_SUBMIT = """
import sys
from clusterjob import JobScript
JobScript.rootdir = sys.argv[1]
JobScript.cache_folder = sys.argv[2]
JobScript.backend = "sge"
JobScript(sys.argv[4], jobname=sys.argv[5], stdout="crash.out", stderr="crash.err").submit(cache_id=sys.argv[3])
"""


def crash_while_submitting(sge: Path, point: str, cache_id: str, body: str) -> None:
    env = {**os.environ, "CLUSTERJOB_FAULT_INJECT": point}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_SUBMIT,
            str(sge),
            str(sge / "cache"),
            cache_id,
            body,
            job_name(cache_id),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr


def jobs_named(name: str) -> list[str]:
    """Numbers of the queued jobs named ``name`` (the text listing cuts names to 10 characters)."""
    listing = subprocess.run(
        ["qstat", "-u", "*", "-xml"], capture_output=True, text=True, check=True
    ).stdout
    return sorted(
        {
            entry.findtext("JB_job_number", "")
            for entry in ET.fromstring(listing).iter("job_list")
            if entry.findtext("JB_name") == name
        }
    )


def every_job_named(name: str) -> list[str]:
    """Numbers of all jobs named ``name``, queued (qstat) or ended (qacct)."""
    ended = subprocess.run(
        ["qacct", "-j", name], capture_output=True, text=True, check=False
    ).stdout
    numbers = {line.split()[1] for line in ended.splitlines() if line.startswith("jobnumber ")}
    return sorted(numbers | set(jobs_named(name)))


def job_name(cache_id: str) -> str:
    """A job name of this test run only (jobs of earlier runs may still be queued)."""
    return f"cj_{cache_id.replace('-', '_')}_{RUN}"


def resubmit(sge: Path, cache_id: str, body: str) -> AsyncResult:
    JobScript.cache_folder = str(sge / "cache")
    result = JobScript(
        body, jobname=job_name(cache_id), stdout="crash.out", stderr="crash.err"
    ).submit(cache_id=cache_id)
    assert isinstance(result, AsyncResult)
    return result


def test_crash_after_qsub_adopts_the_queued_job_by_its_tag(sge: Path) -> None:
    crash_while_submitting(sge, "after_submit", "crash-queued", "sleep 600")
    (job_id,) = jobs_named(job_name("crash-queued"))
    assert "CLUSTERJOB_TAG=cj-" in qstat_j(job_id).stdout
    result = resubmit(sge, "crash-queued", "sleep 600")
    try:
        assert result.job_id == job_id
        assert jobs_named(job_name("crash-queued")) == [job_id]
    finally:
        subprocess.run(["qdel", job_id], capture_output=True, check=False)


def test_crash_after_qsub_adopts_a_job_that_already_ended(sge: Path) -> None:
    crash_while_submitting(sge, "after_submit", "crash-ended", "true")
    wait_for(
        lambda: len(every_job_named(job_name("crash-ended"))) == 1, "the job in qstat or qacct"
    )
    (job_id,) = every_job_named(job_name("crash-ended"))
    wait_for(lambda: final_status(job_id) == COMPLETED, "the job's accounting record")
    result = resubmit(sge, "crash-ended", "true")
    assert result.job_id == job_id  # found through qacct -A <tag>
    assert jobs_named(job_name("crash-ended")) == []
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED
    assert every_job_named(job_name("crash-ended")) == [job_id]


def test_crash_before_qsub_submits_once(sge: Path) -> None:
    crash_while_submitting(sge, "before_submit", "crash-before", "true")
    assert every_job_named(job_name("crash-before")) == []
    result = resubmit(sge, "crash-before", "true")
    result.wait(timeout=TIMEOUT)
    assert result.status == COMPLETED
    wait_for(lambda: every_job_named(job_name("crash-before")) != [], "the job's accounting record")
    assert every_job_named(job_name("crash-before")) == [result.job_id]


@pytest.mark.ssh
def test_jobs_over_ssh(sge: Path, sshd_env: dict[str, str]) -> None:
    """The same commands through the loopback sshd: the sh wrappers survive the remote shell."""
    JobScript.remote = sshd_env["SSH_HOST"]
    JobScript.ssh = f"ssh -F {sshd_env['SSH_CONFIG']}"
    JobScript.scp = f"scp -F {sshd_env['SSH_CONFIG']}"
    ok = submit(
        JobScript(
            "echo remote-$CLUSTERJOB_NAME", jobname="cj_sge_ssh_ok", stdout="r.out", stderr="r.err"
        )
    )
    bad = submit(JobScript("exit 5", jobname="cj_sge_ssh_bad", stdout="b.out", stderr="b.err"))
    long = submit(JobScript("sleep 600", jobname="cj_sge_ssh_long", stdout="l.out", stderr="l.err"))
    assert wait_all([ok, bad], timeout=TIMEOUT) == [COMPLETED, FAILED]
    assert (sge / "r.out").read_text() == "remote-cj_sge_ssh_ok\n"
    wait_for(lambda: long.status == RUNNING, "the long job to run")
    long.cancel()
    assert final_status(long.job_id) == CANCELLED
