"""A cut link during wait_all, and one TCP connection for many jobs (SLURM over ssh through the proxy)."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from clusterjob import AsyncResult, JobScript, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING
from helpers.commands import fake_command

pytestmark = [pytest.mark.ssh, pytest.mark.slurm]

FIGURES = "clusterjob measured figures (tests/remote)"


@pytest.fixture
def over_proxy(remote, tmp_path: Path) -> Any:
    JobScript.backend = "slurm"
    JobScript.remote = remote.proxy_host
    JobScript.ssh = remote.ssh
    JobScript.scp = remote.scp
    JobScript.rootdir = str(tmp_path / "remote")
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.max_sleep_interval = 2
    return remote


def test_wait_all_resumes_after_the_link_is_cut_for_ten_seconds(
    over_proxy, link, prefix: str, slurm_jobs, caplog, report: dict[str, list[str]]
) -> None:
    caplog.set_level(logging.WARNING, logger="clusterjob")
    bodies = ["sleep 3", "sleep 3", "sleep 3; exit 3", "sleep 3"]
    jobs = [
        JobScript(body, jobname=f"{prefix}-{i}", workdir=f"w{i}", time="1")
        for i, body in enumerate(bodies)
    ]
    results = [job.submit(cache_id=f"job{i}") for i, job in enumerate(jobs)]
    before = link.accepted
    cut = threading.Timer(1.0, link.cut)
    restore = threading.Timer(11.0, link.restore)
    cut.start()
    restore.start()
    try:
        statuses = wait_all(results, timeout=300)
    finally:
        cut.cancel()
        restore.join()
    assert statuses == [COMPLETED, COMPLETED, FAILED, COMPLETED]
    failed_polls = [r for r in caplog.records if "cannot reach cjproxy" in r.getMessage()]
    assert failed_polls, "no poll happened while the link was cut"
    assert all(r.levelno == logging.WARNING for r in failed_polls)
    assert link.accepted > before  # a new connection after the cut
    for i, result in enumerate(results):
        record = json.loads(Path(result.cache_file).read_text())
        assert (record["state"], record["job_id"], record["status"]) == (
            "submitted",
            result.job_id,
            ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"][i],
        )
    assert slurm_jobs(prefix) == {f"{prefix}-{i}": [r.job_id] for i, r in enumerate(results)}
    again = [job.submit(cache_id=f"job{i}", retry=False) for i, job in enumerate(jobs)]
    assert [r.job_id for r in again] == [r.job_id for r in results] and all(
        r.resumed for r in again
    )
    report.setdefault(FIGURES, []).append(
        f"link cut for 10 s during wait_all on 4 SLURM jobs: {len(failed_polls)} failed poll(s) logged, "
        f"statuses {statuses}, no duplicate, cache intact"
    )


def test_submitting_and_polling_100_jobs_uses_one_tcp_connection(
    over_proxy, link, prefix: str, tmp_path: Path, slurm_jobs, report: dict[str, list[str]]
) -> None:
    """100 held SLURM jobs: submitted from 8 threads (one ssh command each: the script, its
    folder, the marker folder's probe and sbatch travel together), polled batched and one by
    one, cancelled, waited for. A poll cycle reads the jobs' exit markers with one ssh command; the batched
    cycle also asks squeue once, and the single polls that follow only read markers (the
    scheduler is not due again for a minute)."""
    calls = tmp_path / "ssh-calls"
    wrapper = fake_command(tmp_path, "counting-ssh", f'echo "$$" >> {calls}\nexec ssh "$@"\n')
    JobScript.ssh = f"{wrapper} -F {over_proxy.config}"
    over_proxy.close_masters()
    before = link.accepted

    def submit(i: int) -> AsyncResult:
        job = JobScript("true", jobname=f"{prefix}-{i:03d}", workdir="many", time="1", hold=True)
        return job.submit(cache_id=f"many{i}")  # type: ignore[return-value]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(submit, range(100)))
    submitted_calls = len(calls.read_text().splitlines())
    from clusterjob.polling import poll

    poll(results)  # one marker read and one batched squeue
    batched_calls = len(calls.read_text().splitlines()) - submitted_calls
    with ThreadPoolExecutor(max_workers=8) as pool:  # and once per job: a marker read each
        assert set(pool.map(lambda result: result.poll(), results)) == {PENDING}
    polled_calls = len(calls.read_text().splitlines()) - submitted_calls
    results[0].transport.run(["scancel", *(r.job_id for r in results)])
    assert wait_all(results, timeout=180) == [CANCELLED] * 100
    connections = link.accepted - before
    total_calls = len(calls.read_text().splitlines())
    assert len(slurm_jobs(prefix)) == 100
    report.setdefault(FIGURES, []).append(
        f"100 SLURM jobs over ssh: {total_calls} ssh commands (submission from 8 threads {submitted_calls}, "
        f"one batched poll {batched_calls} + 100 single polls {polled_calls - batched_calls}, "
        "the rest: scancel and wait_all), "
        f"{connections} TCP connection(s) accepted by sshd"
    )
    assert (batched_calls, polled_calls - batched_calls) == (2, 100)
    assert submitted_calls == 100, "one ssh command per submit(): files, folders, probe, sbatch"
    assert connections == 1


@pytest.mark.parametrize(
    "reached", [True, False], ids=["link-lost-after-sbatch-ran", "link-lost-before-sbatch"]
)
def test_link_lost_during_the_sbatch_call_keeps_the_intent_and_the_rerun_submits_once(
    over_proxy, reached: bool, prefix: str, tmp_path: Path, slurm_jobs
) -> None:
    """ssh fails on the scheduler call (the one ssh command that writes the folders, the script
    and the marker folder and runs sbatch; it reads its script on stdin): whether or not
    sbatch ran, one job."""
    from clusterjob.errors import TransientTransportError

    failed = tmp_path / "failed-once"
    run_then_fail = f'ssh "$@" < "{tmp_path}/stdin.$$" >/dev/null 2>&1; ' if reached else ""
    wrapper = fake_command(
        tmp_path,
        "flaky-ssh",
        f'cat > "{tmp_path}/stdin.$$"\n'
        f'if grep -q sbatch "{tmp_path}/stdin.$$" && [ ! -e {failed} ]; then touch {failed}; '
        f"{run_then_fail}"
        'echo "client_loop: send disconnect: Connection reset by peer" >&2; exit 255; fi\n'
        f'exec ssh "$@" < "{tmp_path}/stdin.$$"\n',
    )
    job = JobScript(
        "true",
        jobname=f"{prefix}-flaky",
        time="1",
        hold=True,
        ssh=f"{wrapper} -F {over_proxy.config}",
    )
    with pytest.raises(TransientTransportError, match="Connection reset by peer"):
        job.submit(cache_id="flaky")
    record = json.loads((Path(JobScript.cache_folder) / "clusterjob.flaky.cache").read_text())
    assert record["state"] == "submitting"
    assert len(slurm_jobs(prefix).get(f"{prefix}-flaky", [])) == (1 if reached else 0)
    result = job.submit(cache_id="flaky")
    assert result.resumed is reached
    assert slurm_jobs(prefix) == {f"{prefix}-flaky": [result.job_id]}
