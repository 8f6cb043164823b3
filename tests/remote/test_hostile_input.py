"""Job names, work directories and file names full of shell syntax are data, never commands.

Each name would create a canary file if any shell (local, the remote login
shell, the scheduler's, the job's own header) interpreted it. The jobs run
(locally and over ssh, on the local backend and on SLURM), see their names
intact in ``$CLUSTERJOB_NAME`` and run in their folders; no canary appears.
Where the scheduler cannot take a name (a line break in a header line),
submission fails with a clear error before anything is written or run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clusterjob import JobScript, wait_all
from clusterjob.backends import ResourcesNotSupportedError
from clusterjob.status import COMPLETED

BODY = 'printf "%s\\n" "$CLUSTERJOB_NAME" > name.out; pwd > pwd.out'


def _configure(where: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    JobScript.rootdir = str(tmp_path / "root")
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.max_sleep_interval = 2
    if where == "ssh":
        remote = request.getfixturevalue("remote")
        JobScript.remote = remote.host
        JobScript.ssh = remote.ssh
        JobScript.scp = remote.scp


def _submit_all(
    names: list[str], backend: str, extension: str, tag: str = ""
) -> list[tuple[str, str, str]]:
    """One job per name: name as job name; the next names as folder and file name."""
    jobs = []
    for i, name in enumerate(names):
        jobname = tag + name
        workdir = names[(i + 1) % len(names)] + f"/{i}"
        filename = names[(i + 2) % len(names)] + f".{i}.{extension}"
        jobs.append((jobname, workdir, filename))
    results = [
        JobScript(
            BODY, jobname=jobname, backend=backend, workdir=workdir, filename=filename, time="1"
        ).submit(cache_id=f"hostile{i}")
        for i, (jobname, workdir, filename) in enumerate(jobs)
    ]
    assert wait_all(results, timeout=240) == [COMPLETED] * len(jobs)
    for (jobname, workdir, filename), result in zip(jobs, results):
        folder = Path(JobScript.rootdir) / workdir
        assert (folder / "name.out").read_text() == jobname + "\n"
        assert (folder / "pwd.out").read_text() == str(folder) + "\n"
        assert (folder / filename).is_file()
        cached = json.loads(Path(result.cache_file).read_text())
        assert cached["jobname"] == jobname and cached["workdir"] == workdir
    return jobs


@pytest.mark.parametrize("where", ["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def test_local_backend_takes_hostile_names_as_data(
    where: str, request, tmp_path: Path, canaries, local_over_ssh
) -> None:
    _configure(where, request, tmp_path)
    # A line break cannot be in a job name (it goes into a header line); it can be in folder and file names.
    names = canaries.names(newlines=False)
    _submit_all(names, "local", "sh")
    newline = canaries.names()[-1]
    assert "\n" in newline
    result = JobScript(
        BODY, jobname="plain", backend="local", workdir=newline, filename=newline + ".sh"
    ).submit()
    assert result.get(120) == COMPLETED
    assert (Path(JobScript.rootdir) / newline / "name.out").read_text() == "plain\n"
    assert canaries.fired() == []


@pytest.mark.slurm
@pytest.mark.parametrize("where", ["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def test_slurm_takes_hostile_names_as_data(
    where: str, request, tmp_path: Path, canaries, prefix: str, slurm_jobs
) -> None:
    _configure(where, request, tmp_path)
    # sbatch reads '#SBATCH --job-name="..."' itself: quotes and backslashes are escaped for it.
    names = canaries.names(newlines=False)
    jobs = _submit_all(names, "slurm", "slr", tag=prefix)
    # The job sees its exact name ($SLURM_JOB_NAME, checked above); slurm_jobs uses sacct's spelling.
    assert sorted(slurm_jobs(prefix)) == sorted(jobname.replace('"', "`") for jobname, _, _ in jobs)
    assert canaries.fired() == []


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
@pytest.mark.parametrize("where", ["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def test_names_a_header_cannot_hold_are_refused_before_anything_runs(
    backend: str, where: str, request, tmp_path: Path, canaries, local_over_ssh
) -> None:
    _configure(where, request, tmp_path)
    newline = canaries.names()[-1]
    for value, message in [
        (newline, r"resource jobname='new\\nline\\ntouch .*': .*line break"),
        ("a\rb", r"resource jobname='a\\rb': .*line break"),
    ]:
        with pytest.raises(ResourcesNotSupportedError, match=message):
            JobScript(BODY, jobname=value, backend=backend, workdir="w").submit(cache_id="refused")
    with pytest.raises(ResourcesNotSupportedError, match=r"resource stdout='a\\nb': .*line break"):
        JobScript(BODY, jobname="ok", backend=backend, workdir="w", stdout="a\nb").submit(
            cache_id="refused"
        )
    # Refused while rendering: no script, no intent in the cache.
    assert [p for p in (tmp_path / "root").rglob("*") if not p.is_dir()] == []
    assert not (tmp_path / "cache" / "clusterjob.refused.cache").exists()
    assert canaries.fired() == []


@pytest.mark.slurm
def test_slurm_keeps_backslashes_in_job_names(tmp_path: Path, prefix: str) -> None:
    JobScript.rootdir = str(tmp_path)
    name = prefix + "back\\slash"
    result = JobScript("true", jobname=name, backend="slurm", time="1", hold=True).submit()
    shown = subprocess.run(
        ["squeue", "-h", "-j", str(result.job_id), "-o", "%j"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == name
