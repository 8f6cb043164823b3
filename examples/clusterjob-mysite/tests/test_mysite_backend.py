"""The ``mysite`` backend as installed: found by its entry point, MySite's rules, SLURM's rendering.

These tests need only the installed distributions (``pip install .[test]`` beside
clusterjob-core and clusterjob-slurm), no SLURM: they check the job scripts.
"""

from __future__ import annotations

from typing import Any

import pytest
from clusterjob import JobScript
from clusterjob.backends import SubmissionContext
from clusterjob.errors import ResourcesNotSupportedError
from clusterjob.plugins import get_backend
from clusterjob_mysite import MySiteBackend

TAG = SubmissionContext(tag="cj-0123456789-abcdef")


def headers(context: SubmissionContext | None = None, **resources: Any) -> list[str]:
    """The ``#SBATCH`` lines of a job with ``resources``, as the installed backend writes them."""
    job = JobScript("true", backend="mysite", jobname="j", **resources)
    return get_backend("mysite").resource_headers(job, context)


def test_the_entry_point_provides_the_backend() -> None:
    assert "mysite" in JobScript.backends
    assert isinstance(get_backend("mysite"), MySiteBackend)


def test_batch_partition_by_default_and_slurm_renders_the_rest() -> None:
    """Quoting, walltime conversion, the tag in the comment and False-as-nothing are SLURM's."""
    assert headers(
        TAG, account="physics", comment="my project", time="1:00:00:00", exclusive=False
    ) == [
        "#SBATCH --account=physics",
        '#SBATCH --comment="my project cj-0123456789-abcdef"',
        "#SBATCH --job-name=j",
        "#SBATCH --partition=batch",
        "#SBATCH --time=1-00:00:00",
    ]


def test_the_rendered_script_submits_with_after_as_a_dependency() -> None:
    lines = headers(SubmissionContext(after=("7", "8")), account="physics")
    assert "#SBATCH --dependency=afterok:7:8" in lines


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("queue", "--partition=debug"),
        ("partition", "--partition=debug"),
        ("-p", "-p debug"),
        ("--partition", "--partition=debug"),
    ],
)
def test_the_jobs_own_partition_wins_under_any_spelling(key: str, written: str) -> None:
    lines = headers(account="physics", **{key: "debug"})
    assert f"#SBATCH {written}" in lines
    assert "#SBATCH --partition=batch" not in lines


def test_queue_none_asks_for_no_partition_at_all() -> None:
    """A job (or INI file) that sets queue to None leaves the choice to SLURM's default."""
    assert not any("partition" in line for line in headers(account="physics", queue=None))


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("account", "--account=physics"),
        ("A", "-A physics"),
        ("-A", "-A physics"),
        ("--account", "--account=physics"),
    ],
)
def test_the_account_counts_under_any_spelling(key: str, written: str) -> None:
    assert f"#SBATCH {written}" in headers(**{key: "physics"})


@pytest.mark.parametrize("resources", [{}, {"account": None}, {"account": ""}])
def test_a_job_without_account_is_refused_with_the_remedy(resources: dict[str, Any]) -> None:
    job = JobScript("true", backend="mysite", jobname="j", **resources)
    with pytest.raises(ResourcesNotSupportedError) as refused:
        str(job)
    assert str(refused.value) == (
        "backend 'mysite' needs resource 'account', the project the job is charged to: "
        "set JobScript(..., account='myproject') or 'account = myproject' in the [Resources] "
        "section of the INI file"
    )


def test_gpus_become_a_gpu_gres() -> None:
    assert "#SBATCH --gres=gpu:2" in headers(account="physics", gpus=2)
    assert "#SBATCH --gres=gpu:4" in headers(account="physics", gpus="4")  # from an INI file


def test_gpus_join_the_jobs_own_gres() -> None:
    assert "#SBATCH --gres=nvme:1,gpu:2" in headers(account="physics", gpus=2, gres="nvme:1")
    assert "#SBATCH --gres=nvme:1,gpu:2" in headers(
        account="physics", gpus=2, **{"--gres": "nvme:1"}
    )


@pytest.mark.parametrize("gpus", [None, False])
def test_gpus_none_or_false_ask_for_none(gpus: object) -> None:
    assert not any(
        "gres" in line or "gpu" in line for line in headers(account="physics", gpus=gpus)
    )


@pytest.mark.parametrize("gpus", [0, "two", True])
def test_a_gpu_count_that_is_no_positive_integer_is_refused(gpus: object) -> None:
    with pytest.raises(ResourcesNotSupportedError) as refused:
        headers(account="physics", gpus=gpus)
    assert str(refused.value) == (
        f"backend 'mysite' cannot express resource gpus={gpus!r}: gpus must be a positive integer"
    )


def test_the_jobs_resources_are_left_as_given() -> None:
    job = JobScript("true", backend="mysite", jobname="j", account="physics", gpus=2)
    str(job)
    assert job.resources == {"jobname": "j", "account": "physics", "gpus": 2}
