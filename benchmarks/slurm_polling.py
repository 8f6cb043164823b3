"""SLURM commands issued while waiting on 1,000 jobs (target: 1 per poll cycle).

Submits 1,000 jobs held (``--hold``), releases a few of them (``--run``, they
run ``true`` and complete) and, while ``wait_all`` waits on all 1,000, a
background thread cancels the held ones in batches (100 per second), so
that the jobs finish over some 10 seconds with real state changes in SLURM.
(Running 1,000 real jobs would take ~25 minutes on the 2-CPU test node,
which runs about 0.7 short jobs per second, and block everybody else's
jobs meanwhile; what is measured, the commands per cycle, does not depend on
how a job ends.) The SLURM commands sit behind a PATH shim that logs every
call, and a marker is written at the start of every poll cycle. Prints the
commands per cycle and the time per cycle. The baseline, measured in the
same run on the same 1,000 jobs right after submission, is polling them one
by one (what a backend with only the single-job ``cmd_status``/``get_status``
costs): one ``squeue`` per job per cycle.

Leaves nothing in the queue: whatever is still there at the end is cancelled.

    python benchmarks/slurm_polling.py [--jobs 1000] [--max-sleep 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import clusterjob.polling
from clusterjob import JobScript, wait_all
from clusterjob.status import CANCELLED, COMPLETED
from slurm_cleanup import cancel_prefix  # next to this script

SHIM = textwrap.dedent(
    """\
    #!/bin/sh
    echo "$(basename "$0")" >> "$CJ_CALL_LOG"
    PATH="$CJ_REAL_PATH" exec "$(basename "$0")" "$@"
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--max-sleep", type=int, default=2, help="JobScript.max_sleep_interval (s)")
    parser.add_argument("--run", type=int, default=20, help="jobs released to really run")
    parser.add_argument(
        "--cancel-batch", type=int, default=100, help="held jobs cancelled per second"
    )
    args = parser.parse_args()
    prefix = f"cjpoll{secrets.token_hex(3)}"
    real_path = os.environ["PATH"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            JobScript.max_sleep_interval = args.max_sleep
            start = time.perf_counter()
            results = [
                JobScript(
                    "true",
                    jobname=f"{prefix}-{i}",
                    backend="slurm",
                    rootdir=str(folder),
                    stdout="/dev/null",
                    hold=True,
                ).submit()
                for i in range(args.jobs)
            ]
            submit_time = time.perf_counter() - start
            scontrol, scancel = shutil.which("scontrol"), shutil.which("scancel")
            assert scontrol and scancel
            released = [str(r.job_id) for r in results[: args.run]]
            held = [str(r.job_id) for r in results[args.run :]]

            shim = folder / "shim"
            shim.mkdir()
            for command in ("squeue", "sacct", "scontrol"):
                (shim / command).write_text(SHIM)
                (shim / command).chmod(0o755)
            log = folder / "calls.log"
            log.touch()
            os.environ.update(
                CJ_CALL_LOG=str(log), CJ_REAL_PATH=real_path, PATH=f"{shim}:{real_path}"
            )

            # baseline: one cycle of per-job polling (the cost of a backend that has only
            # cmd_status/get_status)
            backend = results[0].backend
            start = time.perf_counter()
            for result in results:
                answer = result.transport.run(backend.cmd_status(result), check=False)
                if backend.get_status(answer.stdout) is None:
                    result.transport.run(backend.cmd_status(result, finished=True), check=False)
            per_job_time = time.perf_counter() - start
            per_job_calls = len(log.read_text().split())
            log.write_text("")

            real_poll = clusterjob.polling.poll

            def marking_poll(pending):  # type: ignore[no-untyped-def]
                with log.open("a") as out:
                    out.write(f"cycle {len(pending)}\n")
                started = time.perf_counter()
                real_poll(pending)
                with log.open("a") as out:
                    out.write(f"took {time.perf_counter() - started:.4f}\n")

            def finish_held_jobs() -> None:
                for first in range(0, len(held), args.cancel_batch):
                    time.sleep(1)
                    subprocess.run([scancel, *held[first : first + args.cancel_batch]], check=True)

            clusterjob.polling.poll = marking_poll  # type: ignore[assignment]
            start = time.perf_counter()
            subprocess.run([scontrol, "release", ",".join(released)], check=True)
            canceller = threading.Thread(target=finish_held_jobs, daemon=True)
            canceller.start()
            statuses = wait_all(results, progress=False)
            canceller.join()
            wait_time = time.perf_counter() - start
            clusterjob.polling.poll = real_poll  # type: ignore[assignment]
            os.environ["PATH"] = real_path
            log_text = log.read_text()
    finally:
        cancelled = cancel_prefix(prefix)

    cycles = []
    for block in log_text.split("cycle ")[1:]:
        lines = block.split("\n")
        pending = int(lines[0])
        calls = Counter(line for line in lines[1:] if line and not line.startswith("took"))
        took = float(next(line.split()[1] for line in lines if line.startswith("took")))
        cycles.append((pending, calls, took))
    commands = [sum(c.values()) for _, c, _ in cycles]
    big = [took for pending, _, took in cycles if pending >= args.jobs // 2]
    outcomes = Counter(statuses)
    print(
        f"{args.jobs} jobs submitted in {submit_time:.1f} s, "
        f"all finished after {wait_time:.1f} s of waiting "
        f"({outcomes[COMPLETED]} run to COMPLETED, {outcomes[CANCELLED]} CANCELLED "
        f"while held; {cancelled} left over and cancelled)"
    )
    print(
        f"batched: {len(cycles)} poll cycles, {sum(commands)} SLURM commands: "
        f"{sum(commands) / len(cycles):.2f} per cycle (max {max(commands)}; "
        f"squeue {sum(c['squeue'] for _, c, _ in cycles)}, "
        f"sacct {sum(c['sacct'] for _, c, _ in cycles)})"
    )
    if big:
        print(
            f"  one batched cycle over >= {args.jobs // 2} pending jobs: "
            f"{min(big) * 1000:.0f} ms (best)"
        )
    print(
        f"baseline, per-job polling: {per_job_calls} SLURM commands "
        f"for one cycle over {args.jobs} jobs, {per_job_time:.1f} s"
    )
    ratio = (sum(commands) / len(cycles)) / per_job_calls
    print(
        f"commands per cycle: batched / per-job = {ratio:.4f}; target 1 per cycle: "
        f"{'met' if max(commands) == 1 else 'see max'}"
    )


if __name__ == "__main__":
    main()
