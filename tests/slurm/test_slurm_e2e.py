"""End to end on the real SLURM cluster (``bash tests/schedulers/up.sh slurm``).

Every job a test submits carries the test's unique job-name prefix and is
cancelled when the test ends, finished or not. Jobs are short (``sleep 1``);
only the walltime test waits for SLURM's minute granularity (~90 s).
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_slurm import SlurmBackend
from helpers.commands import (
    environment_first_on_path,
    fake_command,
    path_first,
    run_command,
    write_executable,
)
from helpers.results import job_result, look_up_tag
from helpers.slurm import cancel_jobs_named
from helpers.waiting import TIMEOUT, wait_for

pytestmark = pytest.mark.slurm


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def jobs_named(name: str) -> list[str]:
    """IDs of all jobs with this exact name, in the controller or in accounting (since yesterday)."""
    queue = sh("squeue", "--states=all", "-h", "-o", "%i|%j", "-n", name)
    accounting = sh(
        "sacct", "-X", "-n", "-P", "-o", "JobID,JobName", "-S", "now-1days", "--name", name
    )
    ids = {
        line.split("|")[0].split("_")[0]
        for line in (queue + accounting).splitlines()
        if line.strip()
    }
    return sorted(ids)


class Cluster:
    """Per-test helper: unique job names, and the clean-up of everything submitted."""

    def __init__(self, tmp_path: Path) -> None:
        self.prefix = f"cjt{secrets.token_hex(3)}"
        self.tmp_path = tmp_path

    def name(self, label: str) -> str:
        return f"{self.prefix}-{label}"

    def job(self, body: str, label: str, **kwargs: object) -> JobScript:
        return JobScript(body, jobname=self.name(label), **kwargs)

    def cleanup(self) -> None:
        cancel_jobs_named(self.prefix)


@pytest.fixture
def cluster(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    monkeypatch.chdir(tmp_path)
    JobScript.backend = "slurm"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    JobScript.resources["queue"] = slurm_env.get("SLURM_PARTITION", "debug")
    helper = Cluster(tmp_path)
    yield helper
    helper.cleanup()


def test_submit_runs_with_slurm_variables_and_completes(cluster: Cluster, tmp_path: Path) -> None:
    body = "echo $CLUSTERJOB_ID ${CLUSTERJOB_NAME} $CLUSTERJOB_WORKDIR $CLUSTERJOB_SUBMIT_HOST $CLUSTERJOB_NODELIST > vars.txt"
    result = cluster.job(body, "vars", workdir="run", stdout="out.txt").submit()
    assert isinstance(result, AsyncResult) and result.job_id.isdigit()
    assert result.get(TIMEOUT) == COMPLETED
    assert result.successful()
    job_id, name, workdir, host, nodes = (tmp_path / "run" / "vars.txt").read_text().split()
    assert (job_id, name, workdir) == (result.job_id, cluster.name("vars"), str(tmp_path / "run"))
    assert host and nodes
    assert (
        (tmp_path / "run" / f"{cluster.name('vars')}.slr")
        .read_text()
        .startswith("#!/bin/bash\n#SBATCH --job-name=")
    )


def test_failing_job_is_failed(cluster: Cluster) -> None:
    result = cluster.job("sleep 1; exit 3", "fail").submit()
    assert result.get(TIMEOUT) == FAILED
    assert not result.successful()


def test_cancel_a_running_job(cluster: Cluster) -> None:
    result = cluster.job("sleep 300", "cancel").submit()
    wait_for(lambda: result.status == RUNNING, "the job to run")
    result.cancel()
    assert result.status == CANCELLED
    # SLURM agrees (not just our own bookkeeping): ask it afresh.
    fresh = job_result("slurm", result.job_id)
    wait_for(lambda: fresh.poll() == CANCELLED, "SLURM to report the job CANCELLED", timeout=60)


@pytest.mark.slow
def test_walltime_exceeded_is_failed(cluster: Cluster) -> None:
    result = cluster.job("sleep 300", "walltime", time="00:01:00").submit()
    assert result.get(TIMEOUT) == FAILED
    state = sh("sacct", "-X", "-n", "-P", "-o", "State", "-j", result.job_id).strip()
    assert state == "TIMEOUT"


def test_epilogue_runs_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = cluster.job("sleep 1", "epi", epilogue="echo {jobname} >> epilogue.log")
    first = job.submit(cache_id="epi")
    second = AsyncResult.from_cache(first.cache_file)  # another watcher of the same job
    assert first.get(TIMEOUT) == COMPLETED
    assert second.get(TIMEOUT) == COMPLETED
    assert job.submit(cache_id="epi").get(TIMEOUT) == COMPLETED  # resumed from the cache
    assert (tmp_path / "epilogue.log").read_text() == f"{cluster.name('epi')}\n"


def test_array_aggregate_and_per_task_status(cluster: Cluster) -> None:
    backend = SlurmBackend()
    body = 'sleep 1; [ "$SLURM_ARRAY_TASK_ID" != 2 ]'
    failing = cluster.job(body, "array-fail", array="1-3").submit()
    passing = cluster.job("sleep 1", "array-ok", array="1-3").submit()
    assert wait_all([failing, passing], timeout=TIMEOUT) == [FAILED, COMPLETED]

    def tasks(run: AsyncResult) -> dict[str, int]:
        answer = run.transport.run(backend.cmd_task_status(run), check=False)
        return backend.get_task_status(answer.stdout, run)

    wait_for(lambda: len(tasks(failing)) == 3, "accounting to list the three tasks", timeout=60)
    assert tasks(failing) == {"1": COMPLETED, "2": FAILED, "3": COMPLETED}
    assert tasks(passing) == {"1": COMPLETED, "2": COMPLETED, "3": COMPLETED}


def test_pending_array_tasks_are_pending(cluster: Cluster) -> None:
    held = cluster.job("true", "array-held", array="1-4", hold=True).submit()
    assert held.status == PENDING
    backend = SlurmBackend()
    answer = held.transport.run(backend.cmd_task_status(held), check=False)
    assert backend.get_task_status(answer.stdout, held) == {str(n): PENDING for n in range(1, 5)}
    held.cancel()


def test_dependency_chain_runs_in_order(cluster: Cluster, tmp_path: Path) -> None:
    first = cluster.job("sleep 1; echo first >> order.log", "dep1").submit()
    second = cluster.job("echo second >> order.log", "dep2").submit(after=[first])
    third = cluster.job("echo third >> order.log", "dep3").submit(after=[second.job_id])
    assert wait_all([first, second, third], timeout=TIMEOUT) == [COMPLETED] * 3
    assert (tmp_path / "order.log").read_text().split() == ["first", "second", "third"]
    assert f"afterok:{first.job_id}" in (tmp_path / f"{cluster.name('dep2')}.slr").read_text()


def test_dependency_on_a_failed_job_is_final(cluster: Cluster) -> None:
    parent = cluster.job("exit 1", "parent").submit()
    child = cluster.job("true", "child").submit(after=[parent])
    # SLURM 22.05 keeps the child PENDING (DependencyNeverSatisfied) for ever: clusterjob calls it CANCELLED.
    assert wait_all([parent, child], timeout=TIMEOUT) == [FAILED, CANCELLED]
    assert "DependencyNeverSatisfied" in sh("squeue", "-h", "-o", "%r", "-j", child.job_id)


def test_an_ini_file_with_dashed_keys_is_accepted_by_sbatch_as_meant(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Options written with their dashes, as INI files for the original clusterjob do."""
    ini = tmp_path / "dashed.ini"
    ini.write_text(
        "[Resources]\n-A = clusterjob\n--qos = normal\n-o = dashed.out\n--no-requeue = true\n"
    )
    job = cluster.job("echo out; echo err >&2", "dashed")
    job.read_settings(str(ini))
    result = job.submit()
    assert result.get(TIMEOUT) == COMPLETED
    # The controller still knows the job (MinJobAge); sacct of SLURM 22.05 shows its QOS as "Unknown".
    fields = dict(
        item.split("=", 1)
        for item in sh("scontrol", "show", "job", "-o", result.job_id).split()
        if "=" in item
    )
    assert (fields["Account"], fields["QOS"]) == (
        "clusterjob",
        "normal",
    )  # root's default account is root
    assert fields["Requeue"] == "0"
    assert (
        tmp_path / "dashed.out"
    ).read_text() == "out\nerr\n"  # -o without -e: both streams there


def test_parallelization_table_means_what_the_spec_says(
    cluster: Cluster, slurm_env: dict[str, str]
) -> None:
    """nodes=1, ppn=1, threads=2 asks SLURM for what the spec writes as ``-n1 -c2`` (row 2, scaled to this node)."""
    ours = cluster.job("true", "par", nodes=1, ppn=1, threads=2, hold=True).submit()
    theirs = sh("sbatch", "--parsable", "--hold", "-n1", "-c2", f"--job-name={cluster.name('par-raw')}",
                "-o", "/dev/null", "--wrap", "true").strip().split(";")[0]  # fmt: skip

    def request(job_id: str) -> dict[str, str]:
        fields = dict(
            item.split("=", 1)
            for item in sh("scontrol", "show", "job", "-o", job_id).split()
            if "=" in item
        )
        request = {key: fields[key] for key in ("NumNodes", "NumCPUs", "NumTasks", "CPUs/Task")}
        request["NumNodes"] = request["NumNodes"].split("-")[0]  # --nodes=1 shows as 1-1 (min-max)
        return request

    assert request(ours.job_id) == request(theirs)
    assert request(ours.job_id)["CPUs/Task"] == "2"


def test_status_after_the_job_left_the_queue_and_of_an_unknown_job(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    # A job the controller has forgotten (MinJobAge): its status comes from sacct.
    def purged_job() -> str | None:
        finished = sh(
            "sacct", "-X", "-n", "-P", "-o", "JobID,State", "-S", "now-1days", "-E", "now"
        )
        for line in finished.splitlines():
            job_id, state = line.split("|")[:2]
            if not job_id.isdigit() or state.split()[0] not in (
                "COMPLETED",
                "FAILED",
                "CANCELLED",
                "TIMEOUT",
            ):
                continue
            if (
                subprocess.run(
                    ["squeue", "-h", "-j", job_id], capture_output=True, check=False
                ).returncode
                != 0
            ):
                return line
        return None

    if purged_job() is None:  # a fresh cluster: make one and wait for the controller to forget it
        cluster.job("true", "purge").submit()
        wait_for(
            lambda: purged_job() is not None, "a finished job to be purged from squeue", timeout=600
        )
    line = purged_job()
    assert line is not None
    job_id, state = line.split("|")[:2]
    expected = {"COMPLETED": COMPLETED, "FAILED": FAILED, "TIMEOUT": FAILED}.get(
        state.split()[0], CANCELLED
    )
    old = job_result("slurm", job_id)
    assert old.status == expected
    # batched: one job in the queue, one only in accounting, one nowhere
    import clusterjob.polling
    from clusterjob_slurm.queries import squeue_command

    fresh = cluster.job("sleep 1", "fresh").submit()
    # squeue with a purged ID among others answers for the others (it errors only for a lone purged ID)
    answer = subprocess.run(
        squeue_command([fresh.job_id, job_id]), capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0 and answer.stdout.startswith(f"{fresh.job_id}|"), answer
    lone = subprocess.run(squeue_command([job_id]), capture_output=True, text=True, check=False)
    assert lone.returncode != 0 and "Invalid job id specified" in lone.stderr
    old = job_result("slurm", job_id)
    ghost = job_result("slurm", "99999999")
    ghost.jobname = "ghost"
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        clusterjob.polling.poll([fresh, old, ghost])
    assert fresh._status in (PENDING, RUNNING, COMPLETED)
    assert old._status == expected
    assert ghost._status == PENDING  # unknown: the last known status is kept, never guessed
    assert "job 99999999 (ghost): the scheduler reports no status" in caplog.text
    assert fresh.get(TIMEOUT) == COMPLETED


# -- crash safety ------------------------------------------------------------------

WORKFLOW = textwrap.dedent(
    """
    import sys
    from clusterjob import JobScript
    JobScript.backend = "slurm"
    JobScript.rootdir = sys.argv[1]
    JobScript.cache_folder = sys.argv[1] + "/cache"
    JobScript.max_sleep_interval = 1
    job = JobScript("sleep 1; echo $CLUSTERJOB_ID >> ran.log", jobname=sys.argv[2], comment="my project")
    result = job.submit(cache_id="crash")
    print(result.job_id, result.get(240), flush=True)
    """
)

SBATCH_THEN_KILL = textwrap.dedent(
    """\
    #!/bin/sh
    # run the real sbatch, then SIGKILL the Python process that called it: the job
    # exists, but clusterjob never learns its ID
    out=$(PATH="$CJ_REAL_PATH" sbatch "$@"); rc=$?
    kill -9 "$PPID"
    printf '%s\\n' "$out"
    exit $rc
    """
)


def run_workflow(
    tmp_path: Path, name: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", WORKFLOW, str(tmp_path), name],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_resume_after_sigkill_right_after_sbatch_adopts_the_job(
    cluster: Cluster, tmp_path: Path
) -> None:
    shim = tmp_path / "shim"
    write_executable(shim / "sbatch", SBATCH_THEN_KILL)
    name = cluster.name("crash")
    crashed = run_workflow(
        tmp_path, name, {"PATH": path_first(shim), "CJ_REAL_PATH": os.environ["PATH"]}
    )
    assert crashed.returncode == -9, crashed.stderr
    assert '"state": "submitting"' in (tmp_path / "cache" / "clusterjob.crash.cache").read_text()
    submitted = jobs_named(name)
    assert len(submitted) == 1  # sbatch did run
    comment = sh("squeue", "--states=all", "-h", "-o", "%k", "-j", submitted[0]).strip()
    assert comment.startswith("my project cj-")  # the user's comment is kept, the tag appended

    rerun = run_workflow(tmp_path, name)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.split() == [submitted[0], str(COMPLETED)]
    assert jobs_named(name) == submitted  # exactly one job
    assert (tmp_path / "ran.log").read_text().split() == submitted

    # Once the controller has forgotten the job, accounting finds it by its tag: ask with a
    # squeue that knows nothing (the real sacct and scontrol behind it).
    tag = comment.split()[-1]
    (shim / "sbatch").unlink()
    fake_command(shim, "squeue", "exit 0\n")
    backend = SlurmBackend()
    env = environment_first_on_path(shim)

    def look_up(tag: str) -> list[str]:
        """The queue (which knows nothing here), then accounting, as clusterjob asks them."""
        return look_up_tag(backend, tag, lambda command: run_command(command, env))

    wait_for(lambda: look_up(tag) == submitted, "sacct to show the job's comment", timeout=60)
    assert look_up("cj-0000000000-000000") == []


def test_resume_after_sigkill_before_sbatch_submits_once(cluster: Cluster, tmp_path: Path) -> None:
    name = cluster.name("early")
    crashed = run_workflow(tmp_path, name, {"CLUSTERJOB_FAULT_INJECT": "before_submit"})
    assert crashed.returncode == -9, crashed.stderr
    assert jobs_named(name) == []
    rerun = run_workflow(tmp_path, name)  # the tag lookup proves no job exists: submit
    assert rerun.returncode == 0, rerun.stderr
    assert jobs_named(name) == [rerun.stdout.split()[0]]


# -- batched polling -----------------------------------------------------------------

LOGGING_SHIM = textwrap.dedent(
    """\
    #!/bin/sh
    # log the call, then run the real command
    echo "$(basename "$0")" >> "$CJ_CALL_LOG"
    PATH="$CJ_REAL_PATH" exec "$(basename "$0")" "$@"
    """
)


def test_wait_all_on_100_jobs_asks_slurm_once_per_cycle(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clusterjob.polling

    """Plain polling (no exit markers: with them, SLURM is asked once a minute, see test_slurm_markers)."""
    results = [
        cluster.job("sleep 1", f"many{i}", stdout="/dev/null", exit_markers=False).submit()
        for i in range(100)
    ]
    shim = tmp_path / "shim"
    for command in ("squeue", "sacct", "scontrol"):
        write_executable(shim / command, LOGGING_SHIM)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("CJ_CALL_LOG", str(log))
    monkeypatch.setenv("CJ_REAL_PATH", os.environ["PATH"])
    monkeypatch.setenv("PATH", path_first(shim))
    real_poll = clusterjob.polling.poll

    def poll_marking_cycles(results):  # type: ignore[no-untyped-def]
        with log.open("a") as out:
            out.write("cycle\n")
        return real_poll(results)

    monkeypatch.setattr(clusterjob.polling, "poll", poll_marking_cycles)
    assert wait_all(results, timeout=600) == [COMPLETED] * 100

    cycles = [c.split() for c in log.read_text().split("cycle\n")[1:]]
    assert len(cycles) >= 2
    for calls in cycles:
        assert calls.count("squeue") == 1, cycles
        assert calls.count("sacct") <= 1, cycles
        assert set(calls) <= {"squeue", "sacct"}, cycles
    print(f"{len(cycles)} cycles, {sum(len(c) for c in cycles)} SLURM commands for 100 jobs")
