"""``submit_all`` through the TORQUE-style commands of ``slurm-wlm-torque`` (set up by
tests/schedulers/torque.sh), and why ``pbs`` does not pack jobs into arrays there.

The wrappers' ``qsub -t 1-N`` does submit an array (``sbatch --array``), but its tasks see
``SLURM_ARRAY_TASK_ID`` only, ``qstat`` finds no task by an array-style ID, and ``qdel``
of one task deletes the whole array: :class:`~clusterjob_pbs.PbsBackend` therefore submits
a batch one job at a time (``can_pack()`` is False), each job with its own status, exit
code (markers), output and cancel. The packing of a real TORQUE server is tested on the
formats Adaptive Computing documents, in test_pbs_arrays.py.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterjob import JobScript, submit_all, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, RUNNING
from helpers.commands import FakeCommands, path_first
from helpers.slurm import cancel_jobs_named
from helpers.waiting import TIMEOUT, wait_for

pytestmark = [pytest.mark.torque, pytest.mark.slow]


class Wrappers:
    """The wrappers first on PATH, each call of ``qsub``/``qstat``/``qdel`` logged; the clean-up."""

    def __init__(self, bin_folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prefix = f"cjpbs{secrets.token_hex(3)}"
        (tmp_path / "logged").mkdir()
        self.commands = FakeCommands(tmp_path / "logged")
        for name in ("qsub", "qstat", "qdel"):
            real = shlex.quote(str(Path(bin_folder) / name))
            self.commands.script(name, f'exec {real} "$@"\n')  # logged, then the wrapper
        monkeypatch.setenv("PATH", f"{self.commands.bin}:{path_first(bin_folder)}")

    def calls(self, name: str) -> list[str]:
        """The arguments of every call of ``name`` so far."""
        return [call for call in self.commands.calls() if call.split()[0] == name]


@pytest.fixture
def wrappers(
    torque_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Wrappers]:
    helper = Wrappers(torque_env["TORQUE_BIN"], tmp_path, monkeypatch)
    JobScript.backend = "pbs"
    JobScript.rootdir = str(tmp_path / "run")
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.max_sleep_interval = 1
    yield helper
    cancel_jobs_named(helper.prefix)


def test_submit_all_sends_each_job_with_its_own_qsub_status_output_and_cancel(
    wrappers: Wrappers, tmp_path: Path
) -> None:
    """Four jobs that would share an array (one runs until cancelled, one exits 3, one names its
    stdout): four qsub calls, each result a job of its own; statuses and exit codes from the
    markers (the wrappers' qstat shows every ended job as C), the stdout= job's output in its
    file, and cancel() deletes that one job (one qdel) while the others finish."""
    bodies = ["echo started; sleep 300", "echo failing; exit 3", "echo own file", "echo plain"]
    jobs = [JobScript(body, jobname=f"{wrappers.prefix}-{i}") for i, body in enumerate(bodies)]
    jobs[2].resources["stdout"] = "own.txt"
    results = submit_all(jobs)

    assert len(wrappers.calls("qsub")) == 4
    job_ids = [str(result.job_id) for result in results]
    assert all(job_id.isdigit() for job_id in job_ids) and len(set(job_ids)) == 4
    assert [result.jobname for result in results] == [job.resources["jobname"] for job in jobs]
    wait_for(lambda: results[0].poll() == RUNNING, "the long job to run")
    results[0].cancel()
    assert results[0].status == CANCELLED
    assert wrappers.calls("qdel") == [f"qdel {job_ids[0]}"]
    assert wait_all(results[1:], timeout=TIMEOUT) == [FAILED, COMPLETED, COMPLETED]
    assert [result.exit_code for result in results[1:]] == [3, 0, 0]
    assert (tmp_path / "run" / "own.txt").read_text() == "own file\n"


def squeue_states(array_id: str) -> list[str]:
    """SLURM's states of the tasks of ``array_id`` still in its queue (``squeue -r``)."""
    return subprocess.run(
        ["squeue", "-h", "-r", "-j", array_id, "-o", "%T"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()


def all_cancelled(array_id: str) -> bool:
    """Whether SLURM's accounting has records of ``array_id`` and all say CANCELLED."""
    states = subprocess.run(
        ["sacct", "-n", "-X", "-j", array_id, "-o", "State"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return bool(states) and all(state.startswith("CANCELLED") for state in states)


def test_the_wrappers_arrays_cannot_be_followed_task_by_task(
    wrappers: Wrappers, tmp_path: Path
) -> None:
    """What ``PbsBackend`` rests on: ``qsub -t 1-3`` prints a bare number, the tasks see
    SLURM_ARRAY_TASK_ID and no PBS_ARRAYID, ``qstat -f`` knows no ``<id>_1``/``<id>[1]``, and
    ``qdel <id>_1`` deletes every task of the array."""
    script = tmp_path / "array.pbs"
    script.write_text(
        f"#!/bin/sh\n#PBS -N {wrappers.prefix}-array\n"
        'echo "PBS_ARRAYID=${PBS_ARRAYID-unset} task=$SLURM_ARRAY_TASK_ID" > "task.$SLURM_ARRAY_TASK_ID"\n'
        "sleep 300\n"
    )
    submitted = subprocess.run(["qsub", "-t", "1-3", str(script)], cwd=tmp_path,
                               capture_output=True, text=True, check=True)  # fmt: skip
    array_id = submitted.stdout.strip()
    assert array_id.isdigit()
    wait_for(lambda: (tmp_path / "task.1").exists(), "task 1 to start")
    assert (tmp_path / "task.1").read_text() == "PBS_ARRAYID=unset task=1\n"
    for task_id in (f"{array_id}_1", f"{array_id}[1]"):
        asked = subprocess.run(["qstat", "-f", task_id], capture_output=True, text=True,
                               check=False)  # fmt: skip
        assert (asked.returncode, asked.stdout) == (153, "")

    assert len(squeue_states(array_id)) == 3  # each sleeps 300 s once it runs

    subprocess.run(["qdel", f"{array_id}_1"], capture_output=True, text=True, check=True)

    wait_for(lambda: not squeue_states(array_id), "every task to leave the queue", timeout=60)
    wait_for(lambda: all_cancelled(array_id), "the accounting to show the array cancelled")
