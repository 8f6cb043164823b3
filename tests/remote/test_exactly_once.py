"""Exactly once: SIGKILL at every step of ``submit()``, then rerun; 8 processes at once.

Every scenario runs a small workflow in a subprocess with
``CLUSTERJOB_FAULT_INJECT=<point>`` (the process kills itself there, see
:mod:`clusterjob.faults`), counts the jobs the scheduler received, reruns the
workflow unchanged and waits for it. The scheduler must end up with exactly
one job per ``cache_id``, each cached, each run once. The scenarios are
independent (own job-name prefix, cache and folders) and run concurrently to
keep the suite short; the table is printed at the end of the session.
"""

from __future__ import annotations

import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from clusterjob.faults import POINTS
from helpers.exactly_once import (
    WORKFLOW_SETUP,
    cached_job_id,
    fixture_or_reason,
    last_json_line,
    local_jobs,
    run_workflow,
    scheduler_marks,
    start_workflow,
)

#: The documented points, plus the write of the result (the second cache write of a job).
INJECTION_POINTS = (*POINTS, "during_cache_write@2")
#: (backend, where the scheduler is reached)
MODES = (("slurm", "local"), ("slurm", "ssh"), ("local", "local"), ("local", "ssh"))
JOBS = 2
#: The points a job has reached the scheduler by (``during_cache_write`` alone is the intent, written before).
AFTER_THE_SCHEDULER_CALL = ("after_submit", "during_cache_write@2")

WORKFLOW = WORKFLOW_SETUP + textwrap.dedent(
    """
    results = []
    for i in range(cfg["jobs"]):
        job = JobScript("echo $CLUSTERJOB_ID >> ran", jobname=f"{cfg['prefix']}-{i}", workdir=f"w{i}", time="1",
                        prologue="echo {jobname} >> prologue.log", aux_scripts={"aux.sh": "true"})
        results.append(job.submit(cache_id=f"job{i}"))
    if cfg["wait"]:
        statuses = wait_all(results, timeout=cfg["wait"])
        print(json.dumps({"statuses": statuses, "ids": [r.job_id for r in results]}))
    """
)


@dataclass
class Outcome:
    """What one scenario did, and what the scheduler and the cache say afterwards."""

    backend: str
    where: str
    point: str
    prefix: str
    folder: Path
    crash_rc: int | None = None
    crash_stderr: str = ""
    jobs_after_crash: dict[str, list[str]] = field(default_factory=dict)
    rerun_rc: int | None = None
    rerun_stderr: str = ""
    statuses: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    jobs: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""

    @property
    def key(self) -> str:
        return f"{self.backend}-{self.where}-{self.point}"

    @property
    def duplicates(self) -> int:
        return sum(len(ids) - 1 for ids in self.jobs.values())

    @property
    def lost(self) -> int:
        """cache_ids without a job on the scheduler, or whose cached/waited job is not the scheduler's one."""
        lost = 0
        for i in range(JOBS):
            name = f"{self.prefix}-{i}"
            on_scheduler = self.jobs.get(name, [])
            cached = cached_job_id(self.folder / "cache", f"job{i}")
            waited = self.ids[i] if i < len(self.ids) else None
            if not on_scheduler or cached not in on_scheduler or waited != cached:
                lost += 1
        return lost

    def row(self) -> str:
        total = sum(len(v) for v in self.jobs.values())
        after_crash = sum(len(v) for v in self.jobs_after_crash.values())
        return (
            f"{self.backend:<6} {self.where:<6} {self.point:<22} killed={'yes' if self.crash_rc == -9 else self.crash_rc!s:<4}"
            f" jobs after crash={after_crash}  after rerun={total}/{JOBS}  duplicates={self.duplicates}  lost={self.lost}"
            + (f"  ERROR: {self.error}" if self.error else "")
        )


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             report: dict[str, list[str]]) -> dict[str, Outcome]:  # fmt: skip
    """Play the selected scenarios concurrently (each: crash, count, rerun and wait, count)."""
    selected = {
        item.callspec.params["scenario"]
        for item in request.session.items
        if getattr(item, "originalname", None)
        == "test_sigkill_at_each_step_then_rerun_gives_exactly_one_job"
    }
    scenarios: list[Outcome] = []
    for backend, where in MODES:
        for point in INJECTION_POINTS:
            if f"{backend}-{where}-{point}" in selected:
                folder = tmp_path_factory.mktemp(f"{backend}-{where}-{point.replace('@', '-')}")
                scenarios.append(
                    Outcome(backend, where, point, f"cjx{uuid.uuid4().hex[:6]}", folder)
                )
    slurm_jobs = (
        fixture_or_reason(request, "slurm_jobs")
        if any(o.backend == "slurm" for o in scenarios)
        else None
    )
    remote = (
        fixture_or_reason(request, "remote") if any(o.where == "ssh" for o in scenarios) else None
    )
    remote_runner = request.getfixturevalue("remote_runner")

    def count(outcome: Outcome) -> dict[str, list[str]]:
        if outcome.backend == "local":
            return local_jobs(outcome.folder, outcome.prefix)
        return slurm_jobs(outcome.prefix)

    def play(outcome: Outcome) -> None:
        for needed, value in (("slurm", slurm_jobs), ("ssh", remote)):
            if needed in (outcome.backend, outcome.where) and isinstance(value, str):
                outcome.error = value
                return
        cfg = {
            "backend": outcome.backend,
            "rootdir": str(outcome.folder / "root"),
            "cache": str(outcome.folder / "cache"),
            "prefix": outcome.prefix,
            "jobs": JOBS,
            "remote": remote.host if outcome.where == "ssh" else None,
            "ssh": remote.ssh if outcome.where == "ssh" else "ssh",
            "scp": remote.scp if outcome.where == "ssh" else "scp",
            "remote_runner": (
                remote_runner(str(outcome.folder / "spool"))
                if (outcome.backend, outcome.where) == ("local", "ssh")
                else None
            ),
            "wait": 0,
        }
        crashed = run_workflow(WORKFLOW, outcome.folder, cfg, fault=outcome.point)
        outcome.crash_rc, outcome.crash_stderr = crashed.returncode, crashed.stderr
        outcome.jobs_after_crash = count(outcome)
        rerun = run_workflow(WORKFLOW, outcome.folder, {**cfg, "wait": 240})
        outcome.rerun_rc, outcome.rerun_stderr = rerun.returncode, rerun.stderr
        if rerun.returncode == 0:
            answer = last_json_line(rerun.stdout)
            outcome.statuses, outcome.ids = answer["statuses"], answer["ids"]
        outcome.jobs = count(outcome)

    with ThreadPoolExecutor(max_workers=max(1, len(scenarios))) as pool:
        list(pool.map(play, scenarios))
    title = "clusterjob fault injection: SIGKILL at each submit() step, then rerun (tests/remote/test_exactly_once.py)"
    report[title] = [
        f"{JOBS} jobs (cache_ids) per workflow; the process kills itself at the point while submitting the first"
    ]
    report[title] += [o.row() for o in scenarios]
    return {o.key: o for o in scenarios}


SCENARIOS = [f"{b}-{w}-{p}" for b, w in MODES for p in INJECTION_POINTS]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [pytest.param(s, marks=scheduler_marks(s)) for s in SCENARIOS])
def test_sigkill_at_each_step_then_rerun_gives_exactly_one_job(
    outcomes: dict[str, Outcome], scenario: str
) -> None:
    outcome = outcomes[scenario]
    assert not outcome.error, outcome.error
    assert outcome.crash_rc == -9, (
        f"the workflow was not killed at {outcome.point}: {outcome.crash_stderr}"
    )
    # Nothing reaches the scheduler before the scheduler call; from then on the first job exists.
    reached = outcome.point in AFTER_THE_SCHEDULER_CALL
    assert sum(map(len, outcome.jobs_after_crash.values())) == (1 if reached else 0), (
        outcome.jobs_after_crash
    )
    assert outcome.rerun_rc == 0, outcome.rerun_stderr
    assert outcome.statuses == [0] * JOBS, outcome.rerun_stderr
    assert outcome.duplicates == 0 and outcome.lost == 0, (outcome.jobs, outcome.ids)
    for i in range(JOBS):
        ran = (outcome.folder / "root" / f"w{i}" / "ran").read_text().split()
        assert ran == outcome.jobs[f"{outcome.prefix}-{i}"], f"job {i} ran {ran}"


@pytest.mark.slurm
@pytest.mark.parametrize("where", ["local", pytest.param("ssh", marks=pytest.mark.ssh)])
def test_eight_processes_running_the_same_workflow_submit_each_cache_id_once(
    where: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    prefix: str,
    slurm_jobs: Any,
    report: dict[str, list[str]],
) -> None:
    cfg: dict[str, Any] = {
        "backend": "slurm", "rootdir": str(tmp_path / "root"), "cache": str(tmp_path / "cache"), "prefix": prefix,
        "jobs": 3, "remote": None, "ssh": "ssh", "scp": "scp", "remote_runner": None, "wait": 240,
    }  # fmt: skip
    if where == "ssh":
        remote = request.getfixturevalue("remote")
        link = request.getfixturevalue("link")
        remote.close_masters()
        before = link.accepted
        cfg.update(remote=remote.proxy_host, ssh=remote.ssh, scp=remote.scp)
    procs = [start_workflow(WORKFLOW, tmp_path, cfg) for _ in range(8)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [err for _, err in outputs]
    answers = [last_json_line(out) for out, _ in outputs]
    assert all(answer["statuses"] == [0, 0, 0] for answer in answers)
    ids = answers[0]["ids"]
    assert all(answer["ids"] == ids for answer in answers)
    assert slurm_jobs(prefix) == {f"{prefix}-{i}": [ids[i]] for i in range(3)}
    for i in range(3):
        assert (tmp_path / "root" / f"w{i}" / "ran").read_text().split() == [ids[i]]
    # Each process ran the prologue of the jobs it submitted, and only those.
    assert sorted((tmp_path / "prologue.log").read_text().split()) == [
        f"{prefix}-{i}" for i in range(3)
    ]
    if where == "ssh":
        connections = link.accepted - before
        report.setdefault("clusterjob measured figures (tests/remote)", []).append(
            f"8 processes submitting and waiting on the same 3 SLURM jobs over ssh: {connections} TCP connection(s) to sshd"
        )
        assert connections == 1
