"""The example site plugin, ``examples/clusterjob-mysite``, as a site's users get it.

tests/venv.sh installs it non-editable beside clusterjob-core and clusterjob-slurm,
so these tests see what ``pip install`` made of its metadata: the entry point,
the dependencies, the backend in ``clusterjob backends``. The ``slurm`` tests
submit with it to the real test cluster. The example's own tests
(``examples/clusterjob-mysite/tests``) check its job scripts.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.errors import SchedulerError
from clusterjob.status import COMPLETED

DIST = "clusterjob-mysite"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "clusterjob-mysite"
#: The console script of the venv the tests run in.
CLUSTERJOB = str(Path(sys.executable).parent / "clusterjob")
#: The account tests/schedulers/slurm.sh creates (root's default account is ``root``).
ACCOUNT = "clusterjob"
TIMEOUT = 240  # generous: the test machine may be busy with other schedulers' tests


def test_the_example_declares_its_build_system_and_what_it_imports() -> None:
    """It imports clusterjob_slurm, so it must depend on clusterjob-slurm, not only on core."""
    requires = {
        re.split(r"[\s;<>=!~\[]", line, maxsplit=1)[0].lower()
        for line in metadata.requires(DIST) or []
    }
    assert {"clusterjob-core", "clusterjob-slurm"} <= requires
    entry_points = [
        ep for ep in metadata.distribution(DIST).entry_points if ep.group == "clusterjob"
    ]
    assert [(ep.name, ep.value) for ep in entry_points] == [("mysite", "clusterjob_mysite")]
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    assert re.search(
        r'^\[build-system\]\nrequires = \["setuptools>=64"\]\nbuild-backend = "setuptools.build_meta"$',
        pyproject,
        re.MULTILINE,
    )


def test_clusterjob_backends_lists_mysite_with_its_distribution() -> None:
    listed = subprocess.run([CLUSTERJOB, "backends"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = [line.split(None, 3) for line in listed.stdout.splitlines()]
    assert ["mysite", DIST, metadata.version(DIST), "sbatch, squeue, sacct, scancel"] in rows
    as_json = subprocess.run(
        [CLUSTERJOB, "backends", "--json"], capture_output=True, text=True, check=True
    )
    mysite = next(b for b in json.loads(as_json.stdout)["backends"] if b["name"] == "mysite")
    assert (mysite["plugin"], mysite["distribution"]) == ("mysite", DIST)


# -- on the real SLURM (bash tests/schedulers/up.sh slurm) ----------------------------------


@pytest.fixture
def site_job(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., JobScript]]:
    """Makes ``mysite`` jobs with a unique name in ``tmp_path``; cancels what is left of them."""
    monkeypatch.chdir(tmp_path)
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    name = f"cjt{secrets.token_hex(3)}-mysite"
    yield lambda body, **resources: JobScript(body, backend="mysite", jobname=name, **resources)
    subprocess.run(["scancel", "--name", name], check=False, capture_output=True)


@pytest.mark.slurm
def test_a_mysite_job_runs_on_slurm_with_its_account_and_partition(
    site_job: Callable[..., JobScript], slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """One job through the installed plugin, checked in ``scontrol`` and by the job itself.

    The test cluster has neither a partition ``batch`` nor GRES (tests/schedulers/slurm.sh:
    partition ``debug``, no ``GresTypes``; sbatch refuses any ``--gres``), so this job names
    the cluster's partition, which MySite's default yields to, and asks for no gpus: the
    ``--gres=gpu:2`` line is tested offline (examples/clusterjob-mysite/tests). That the
    default reaches sbatch is the next test. The comment and the walltime are written by
    the SLURM backend, as for any SLURM job.
    """
    partition = slurm_env["SLURM_PARTITION"]
    job = site_job(
        "echo $SLURM_JOB_PARTITION $SLURM_JOB_ACCOUNT > where.txt",
        account=ACCOUNT,
        queue=partition,
        comment="site example",
        time="0:05:00",
    )
    result = job.submit()
    assert result.get(TIMEOUT) == COMPLETED
    assert (tmp_path / "where.txt").read_text().split() == [partition, ACCOUNT]
    # The controller still knows the job (MinJobAge=60).
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", result.job_id], capture_output=True, text=True, check=True
    )
    fields = dict(item.split("=", 1) for item in shown.stdout.split() if "=" in item)
    assert (fields["Partition"], fields["Account"], fields["TimeLimit"]) == (
        partition,
        ACCOUNT,
        "00:05:00",
    )
    assert "Comment=site example" in shown.stdout  # the one field with a blank: not in `fields`


@pytest.mark.slurm
def test_without_a_partition_sbatch_is_asked_for_the_batch_partition(
    site_job: Callable[..., JobScript],
) -> None:
    """The test cluster has no ``batch`` partition, so sbatch's refusal shows the default reached it."""
    with pytest.raises(SchedulerError, match=r"invalid partition specified: batch"):
        site_job("true", account=ACCOUNT).submit()
