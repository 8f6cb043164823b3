"""Which task IDs each backend records for an array job, read from its array option under
any spelling; the exit markers of the tasks are then read instead of asking the scheduler.

The option per scheduler: SLURM ``sbatch --array`` (slurm.schedmd.com/sbatch.html),
Grid Engine ``qsub -t n[-m[:s]]`` (SGE qsub(1)), TORQUE ``qsub -t 1-10,15%2`` (TORQUE
Administrator Guide, "Job arrays"), PBS Pro ``qsub -J X-Y[:Z]`` (PBS Professional
Reference Guide, qsub).
"""

from __future__ import annotations

import pytest
from clusterjob import JobScript
from clusterjob.plugins import get_backend


@pytest.mark.parametrize(
    ("backend", "resources", "task_ids"),
    [
        ("slurm", {"array": "1-3"}, ["1", "2", "3"]),
        ("sge", {"t": "1-7:3"}, ["1", "4", "7"]),
        ("sge", {"-t": "2-3"}, ["2", "3"]),
        ("pbs", {"t": "1,3%1"}, ["1", "3"]),
        ("pbspro", {"J": "0-4:2"}, ["0", "2", "4"]),
        ("pbspro", {"-J": "5"}, ["5"]),
    ],
)
def test_an_array_job_records_the_task_ids_of_its_array_option(
    backend: str, resources: dict[str, str], task_ids: list[str]
) -> None:
    job = JobScript("true", jobname="arr", backend=backend, **resources)
    assert get_backend(backend).array_task_ids(job) == task_ids


@pytest.mark.parametrize(
    ("backend", "resources"),
    [
        ("sge", {}),  # not an array
        ("pbspro", {"t": "1-3"}),  # TORQUE's option, not PBS Pro's
        ("lpbs", {"t": "1-3"}),  # LPBS runs single jobs
        ("lsf", {}),  # LSF names its arrays in the job name: watched through bjobs
        ("local", {}),
        ("sge", {"t": "a-b"}),  # qsub's to judge: the scheduler is asked instead
    ],
)
def test_no_task_ids_where_the_job_is_no_array_or_its_spec_is_not_read(
    backend: str, resources: dict[str, str]
) -> None:
    job = JobScript("true", jobname="arr", backend=backend, **resources)
    assert get_backend(backend).array_task_ids(job) is None
