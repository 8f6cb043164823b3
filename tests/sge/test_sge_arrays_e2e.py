"""``submit_all`` on the real single-host Son of Grid Engine cell: jobs packed into one ``qsub -t``.

Each job keeps its own name, output file, status, exit code and ``cancel()``; the array's
task IDs are ``<number>.<task>`` (qstat, qacct, qdel). Waits are generous polls.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clusterjob import JobScript, submit_all, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, RUNNING
from clusterjob_sge import SgeBackend
from helpers.waiting import TIMEOUT, wait_for

pytestmark = [pytest.mark.sge, pytest.mark.slow]

RUN = secrets.token_hex(3)


def listed_tasks(number: str) -> dict[str, str]:
    """Task -> state of the tasks of job ``number`` that qstat lists (pending ones expanded)."""
    listing = subprocess.run(
        ["qstat", "-u", "*", "-xml"], capture_output=True, text=True, check=True
    ).stdout
    tasks: dict[str, str] = {}
    for entry in ET.fromstring(listing).iter("job_list"):
        if entry.findtext("JB_job_number") == number:
            for part in (entry.findtext("tasks") or "").split(","):
                first, _, rest = part.partition("-")
                last = rest.partition(":")[0] or first
                for task in range(int(first), int(last) + 1):
                    tasks[str(task)] = entry.findtext("state", "")
    return tasks


def exit_status_in_accounting(number: str, task: int) -> str | None:
    """``exit_status`` of the qacct record of task ``task`` of job ``number`` (None: none yet)."""
    record = subprocess.run(
        ["qacct", "-j", number, "-t", str(task)], capture_output=True, text=True, check=False
    ).stdout
    lines = [line.split()[1] for line in record.splitlines() if line.startswith("exit_status")]
    return lines[-1] if lines else None


def test_four_jobs_are_one_array_each_with_its_own_output_status_and_cancel(
    sge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One qsub for 4 jobs of different names and bodies; task 2 exits 3, task 3 is cancelled
    while task 4 runs on, which then completes: qdel 123.3 deleted that task only."""
    submitted: list[str] = []
    original = SgeBackend.cmd_submit

    def counting(self: SgeBackend, jobscript: JobScript) -> list[str]:
        submitted.append(str(jobscript.filename))
        return original(self, jobscript)

    monkeypatch.setattr(SgeBackend, "cmd_submit", counting)
    bodies = {
        "cj_sgepack_one": "echo one",
        "cj_sgepack_two": "echo two; exit 3",
        "cj_sgepack_three": "echo three; sleep 600",
        "cj_sgepack_four": "while [ ! -e go ]; do sleep 1; done; echo four",
    }
    jobs = [JobScript(body, jobname=name, stdout=f"{name}.out") for name, body in bodies.items()]
    results = submit_all(jobs)
    assert len(submitted) == 1, submitted
    number = str(results[0].job_id).partition(".")[0]
    assert [r.job_id for r in results] == [f"{number}.{task}" for task in range(1, 5)]
    assert [r.jobname for r in results] == list(bodies)
    try:
        three, four = results[2:]
        wait_for(lambda: three.poll() == RUNNING and four.poll() == RUNNING, "tasks 3 and 4 to run")
        wait_for(lambda: (sge / "cj_sgepack_three.out").exists(), "task 3's output")
        three.cancel()
        wait_for(lambda: "3" not in listed_tasks(number), "task 3 to leave the queue")
        assert four.poll() == RUNNING
        assert listed_tasks(number).get("4") == "r"  # qdel of task 3 left task 4 running
        (sge / "go").touch()
        assert wait_all(results, timeout=TIMEOUT) == [COMPLETED, FAILED, CANCELLED, COMPLETED]
        assert [r.exit_code for r in results] == [0, 3, None, 0]
    finally:
        subprocess.run(["qdel", number], capture_output=True, check=False)
    for name, text in zip(bodies, ["one", "two", "three", "four"]):
        assert (sge / f"{name}.out").read_text() == f"{text}\n"
    wait_for(lambda: exit_status_in_accounting(number, 4) is not None, "task 4's qacct record")
    assert (exit_status_in_accounting(number, 2), exit_status_in_accounting(number, 4)) == (
        "3",
        "0",
    )


def test_each_task_is_polled_from_the_scheduler_when_it_writes_no_markers(sge: Path) -> None:
    """Without exit markers, qstat (one entry per running task, one for the pending ones) and
    then qacct (one per array) give each task its status and exit code."""
    bodies = ["true", "exit 5", "sleep 2"]
    jobs = [
        JobScript(body, jobname=f"cj_sgeplain{i}", stdout=f"p{i}.out", exit_markers=False)
        for i, body in enumerate(bodies)
    ]
    results = submit_all(jobs)
    assert len({str(r.job_id).partition(".")[0] for r in results}) == 1
    assert wait_all(results, timeout=TIMEOUT) == [COMPLETED, FAILED, COMPLETED]
    assert [r.exit_code for r in results] == [0, 5, 0]


CRASHING_SUBMIT_ALL = """
import sys
from clusterjob import JobScript, submit_all
JobScript.rootdir = sys.argv[1]
JobScript.cache_folder = sys.argv[2]
JobScript.backend = "sge"
names = sys.argv[3:]
submit_all(
    [JobScript("sleep 600", jobname=name, stdout=name + ".out") for name in names],
    cache_ids=names,
)
"""


def test_a_crash_right_after_qsub_adopts_the_array_by_its_tag(sge: Path) -> None:
    """Killed after the array's qsub, before any result was written: the rerun finds the array
    by the tag in its ``-A``/``-ac`` headers and adopts its tasks; no second array is queued."""
    prefix = f"cj_sgecrash_{RUN}"  # the array's name: the common prefix of its jobs' names
    names = [f"{prefix}_{i}" for i in range(3)]
    cache = sge / "cache"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_SUBMIT_ALL, str(sge), str(cache), *names],
        env={**os.environ, "CLUSTERJOB_FAULT_INJECT": "after_submit"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    arrays = queued_numbers(prefix)
    assert len(arrays) == 1, arrays
    (number,) = arrays
    try:
        JobScript.cache_folder = str(cache)
        jobs = [JobScript("sleep 600", jobname=name, stdout=f"{name}.out") for name in names]
        results = submit_all(jobs, cache_ids=names)
        assert [r.job_id for r in results] == [f"{number}.{task}" for task in range(1, 4)]
        assert queued_numbers(prefix) == [number]
    finally:
        subprocess.run(["qdel", number], capture_output=True, check=False)


def queued_numbers(name_prefix: str) -> list[str]:
    """The numbers of the queued jobs whose name starts with ``name_prefix``."""
    listing = subprocess.run(
        ["qstat", "-u", "*", "-xml"], capture_output=True, text=True, check=True
    ).stdout
    return sorted(
        {
            entry.findtext("JB_job_number", "")
            for entry in ET.fromstring(listing).iter("job_list")
            if entry.findtext("JB_name", "").startswith(name_prefix)
        }
    )


@pytest.mark.ssh
def test_jobs_packed_over_ssh(sge: Path, sshd_env: dict[str, str]) -> None:
    """Through the loopback sshd: one qsub for the array, each task runs its own script (found
    by its absolute path on the remote) and writes its own output."""
    JobScript.remote = sshd_env["SSH_HOST"]
    JobScript.ssh = f"ssh -F {sshd_env['SSH_CONFIG']}"
    JobScript.scp = f"scp -F {sshd_env['SSH_CONFIG']}"
    jobs = [
        JobScript(body, jobname=f"cj_sgessh_{k}", stdout=f"ssh{k}.out")
        for k, body in enumerate(["echo remote-$CLUSTERJOB_NAME", "exit 4"], start=1)
    ]
    results = submit_all(jobs)
    number = str(results[0].job_id).partition(".")[0]
    assert [r.job_id for r in results] == [f"{number}.1", f"{number}.2"]
    assert wait_all(results, timeout=TIMEOUT) == [COMPLETED, FAILED]
    assert [r.exit_code for r in results] == [0, 4]
    assert (sge / "ssh1.out").read_text() == "remote-cj_sgessh_1\n"  # $JOB_NAME: its own name
