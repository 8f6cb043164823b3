"""The ``clusterjob`` command against the real SLURM cluster: submit --wait, status, cancel.

The installed console script runs as a user would type it; each job carries
the test's unique name and is cancelled when the test ends.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterjob.status import CANCELLED
from helpers.results import job_result
from helpers.slurm import cancel_jobs_named
from helpers.waiting import TIMEOUT, wait_for

pytestmark = pytest.mark.slurm


def clusterjob(*args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("clusterjob")
    return subprocess.run(
        [str(command), *args], capture_output=True, text=True, check=False, timeout=TIMEOUT
    )


def jobs(out: str) -> dict[str, dict[str, object]]:
    return {job["cache_id"]: job for job in json.loads(out)}


@pytest.fixture
def site(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An INI file for the test cluster, in the test's folder; the prefix of its job names."""
    monkeypatch.chdir(tmp_path)
    prefix = f"cjcli{secrets.token_hex(3)}"
    Path("site.ini").write_text(
        "[Attributes]\nbackend = slurm\nmax_sleep_interval = 1\n"
        f"[Resources]\nqueue = {slurm_env.get('SLURM_PARTITION', 'debug')}\n"
    )
    yield prefix
    cancel_jobs_named(prefix)


def submit(prefix: str, cache_id: str, body: str, *extra: str) -> subprocess.CompletedProcess[str]:
    Path(f"{cache_id}.sh").write_text(f"#!/bin/bash\n{body}\n")
    return clusterjob(
        "submit", "--ini", "site.ini", "--cache-folder", "c", "--cache-id", cache_id,
        "-r", f"jobname={prefix}-{cache_id}", *extra, f"{cache_id}.sh",
    )  # fmt: skip


def test_submit_wait_and_status(site: str) -> None:
    done = submit(site, "ok", "sleep 1", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)
    assert (job["backend"], job["status"], job["resumed"]) == ("slurm", "COMPLETED", False)
    assert job["job_id"].isdigit() and job["cache_file"] == "c/clusterjob.ok.cache"
    failed = submit(site, "bad", "exit 3", "--wait")
    assert failed.returncode == 1, failed.stderr
    assert failed.stdout.startswith("submitted job ")
    assert failed.stdout.splitlines()[-1].split()[:5] == [
        "bad",
        failed.stdout.split()[2],
        "slurm",
        "-",
        "FAILED",
    ]
    status = clusterjob("status", "--cache-folder", "c", "--json")
    assert status.returncode == 1  # one job failed
    assert {k: j["status"] for k, j in jobs(status.stdout).items()} == {
        "bad": "FAILED",
        "ok": "COMPLETED",
    }
    again = submit(site, "ok", "sleep 1")
    assert again.returncode == 0
    assert again.stdout.startswith(  # an exit code where the job's exit marker told it
        f"resumed job {job['job_id']} ({site}-ok) from the cache, not submitted again: COMPLETED"
    )


def test_cancel_a_running_job(site: str) -> None:
    assert submit(site, "long", "sleep 300").returncode == 0
    [job] = json.loads(clusterjob("cache", "list", "--cache-folder", "c", "--json").stdout)
    fresh = job_result("slurm", job["job_id"])
    wait_for(lambda: fresh.poll() == -1, "the job to run")  # RUNNING
    status = clusterjob("status", "--cache-folder", "c", "long")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[2].split()[:5] == [
        "long",
        job["job_id"],
        "slurm",
        "-",
        "RUNNING",
    ]
    cancelled = clusterjob("cancel", "--cache-folder", "c", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert jobs(cancelled.stdout)["long"]["status"] == "CANCELLED"
    # SLURM agrees (not just our own bookkeeping): ask it afresh.
    fresh = job_result("slurm", job["job_id"])
    wait_for(lambda: fresh.poll() == CANCELLED, "SLURM to report the job CANCELLED", timeout=60)
    assert clusterjob("status", "--cache-folder", "c").returncode == 1
