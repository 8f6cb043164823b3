"""The asyncio waits on the real SLURM cluster: batched cycles, counted at the scheduler's commands."""

from __future__ import annotations

import asyncio
import os
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, as_completed_async, polling
from clusterjob.status import COMPLETED, FAILED
from helpers.slurm import cancel_jobs_named

pytestmark = pytest.mark.slurm

TIMEOUT = 240  # generous: the machine may be busy with other schedulers' tests

#: First on PATH for squeue/sacct/scontrol: log the call, then run the real command.
LOGGING_SHIM = textwrap.dedent(
    """\
    #!/bin/sh
    echo "$(basename "$0")" >> "$CJ_CALL_LOG"
    PATH="$CJ_REAL_PATH" exec "$(basename "$0")" "$@"
    """
)


@pytest.fixture
def prefix(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A unique job-name prefix; every job carrying it is cancelled at the end."""
    monkeypatch.chdir(tmp_path)
    JobScript.backend = "slurm"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    JobScript.resources["queue"] = slurm_env.get("SLURM_PARTITION", "debug")
    name = f"cja{secrets.token_hex(3)}"
    yield name
    cancel_jobs_named(name)


@pytest.fixture
def call_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The SLURM commands run, one per line, with a ``cycle`` line before each poll cycle."""
    shim = tmp_path / "shim"
    shim.mkdir()
    for command in ("squeue", "sacct", "scontrol"):
        (shim / command).write_text(LOGGING_SHIM)
        (shim / command).chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("CJ_CALL_LOG", str(log))
    monkeypatch.setenv("CJ_REAL_PATH", os.environ["PATH"])
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    real_poll = polling.poll

    def poll_marking_cycles(results):  # type: ignore[no-untyped-def]
        with log.open("a") as out:
            out.write("cycle\n")
        return real_poll(results)

    monkeypatch.setattr(polling, "poll", poll_marking_cycles)
    return log


@pytest.mark.parametrize(
    "scheduler_interval", [None, 0], ids=["markers-first", "squeue-each-cycle"]
)
def test_as_completed_async_on_slurm_asks_once_per_cycle(
    prefix: str, call_log: Path, monkeypatch: pytest.MonkeyPatch, scheduler_interval: float | None
) -> None:
    """With exit markers, SLURM is asked on the first cycle and rarely after; asked on every
    cycle (``scheduler_interval`` 0), still one squeue per cycle for all jobs."""
    if scheduler_interval is not None:
        monkeypatch.setattr(AsyncResult, "scheduler_interval", scheduler_interval, raising=False)
    jobs = {
        "quick": "sleep 1",
        "slow": "sleep 4",
        "failing": "sleep 2; exit 3",
        "middle": "sleep 2",
    }
    results = {
        label: JobScript(body, jobname=f"{prefix}-{label}", stdout="/dev/null").submit()
        for label, body in jobs.items()
    }

    async def wait_for_everything() -> list[AsyncResult]:
        # One coroutine per job and one over all of them: their polls are shared.
        each = asyncio.gather(*(r.wait_async(timeout=TIMEOUT) for r in results.values()))
        seen = [r async for r in as_completed_async(results.values(), timeout=TIMEOUT)]
        await each
        return seen

    seen = asyncio.run(wait_for_everything())
    assert sorted(r.job_id for r in seen) == sorted(r.job_id for r in results.values())
    statuses = {label: r.status for label, r in results.items()}
    assert statuses == {
        "quick": COMPLETED,
        "slow": COMPLETED,
        "failing": FAILED,
        "middle": COMPLETED,
    }

    cycles = [c.split() for c in call_log.read_text().split("cycle\n")[1:]]
    assert len(cycles) >= 2
    assert cycles[0].count("squeue") == 1, cycles  # the first cycle asks about all four jobs
    for calls in cycles:
        # Five waiting coroutines, four jobs: at most one squeue (and one sacct for the
        # jobs it no longer lists) per cycle; exit markers may answer without either.
        assert calls.count("squeue") <= 1, cycles
        assert calls.count("sacct") <= 1, cycles
        assert set(calls) <= {"squeue", "sacct"}, cycles
    if scheduler_interval == 0:
        assert sum(calls.count("squeue") for calls in cycles) >= 2, cycles
    print(f"{len(cycles)} cycles, {sum(len(c) for c in cycles)} SLURM commands for 4 jobs")
