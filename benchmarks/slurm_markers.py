"""Waiting on 40 short SLURM jobs with exit markers vs a raw ``sbatch`` loop polling ``squeue``.

Targets (issue 11): at most 0.1 scheduler status commands per job, median and
tail latency from a job's end to its detection at most 1.5 s, total wall
time at most 1.03x the raw loop's.

Both methods run the same jobs (``sleep 2``, 1 CPU each, so the 2-CPU test
node runs two at a time), one after the other in the same run:

* raw (the baseline): write each script, ``sbatch`` it, then ``squeue -h -j
  ID,... -o %i`` every 2 s; a job is detected when squeue stops listing it;
* clusterjob: ``JobScript(...).submit(cache_id=...)`` with a cache folder
  (crash-safe submission), then ``as_completed`` with ``max_sleep_interval``
  0.5 s: the exit markers are read every cycle, SLURM is asked every 60 s
  (``AsyncResult.scheduler_interval``, the default).

Measured: the SLURM status commands issued while waiting (``squeue``,
``sacct``, ``scontrol``, counted by a PATH shim), the latency of each job
(detection time minus the ``End`` that accounting recorded; ``End`` has
whole seconds, so a latency carries up to 1 s of rounding), and the wall time
from the first submission to the last detection.

The two methods alternate (raw then clusterjob, then clusterjob then raw, ...)
so that drift of the shared machine hits both alike; the figures pool all rounds.

    python benchmarks/slurm_markers.py [--jobs 40] [--sleep 2] [--max-sleep 0.5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

from clusterjob import JobScript, as_completed
from slurm_cleanup import cancel_prefix  # next to this script

SHIM = textwrap.dedent(
    """\
    #!/bin/sh
    echo "$(basename "$0")" >> "$CJ_CALL_LOG"
    PATH="$CJ_REAL_PATH" exec "$(basename "$0")" "$@"
    """
)
STATUS_COMMANDS = ("squeue", "sacct", "scontrol")
#: Seconds spent submitting, per method (summed over the rounds).
SUBMISSION = {"raw": 0.0, "cj": 0.0}


def raw_loop(
    folder: Path, prefix: str, jobs: int, sleep: int, partition: str
) -> tuple[dict[str, float], int, float]:
    """The baseline: sbatch each, squeue every 2 s. Returns detections, squeue calls, wall time."""
    start = time.time()
    ids = []
    for i in range(jobs):
        script = folder / f"raw{i}.slr"
        script.write_text(
            f"#!/bin/bash\n#SBATCH --job-name={prefix}-raw{i}\n#SBATCH --partition={partition}\n"
            f"#SBATCH --output=/dev/null\nsleep {sleep}\n"
        )
        answer = subprocess.run(
            ["sbatch", str(script)], capture_output=True, text=True, check=True, cwd=folder
        )
        ids.append(answer.stdout.split()[-1])
    SUBMISSION["raw"] += time.time() - start
    detected: dict[str, float] = {}
    calls = 0
    while len(detected) < jobs:
        time.sleep(2)
        pending = [i for i in ids if i not in detected]
        listed = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", ",".join(pending)],
            capture_output=True,
            text=True,
            check=False,
        )
        calls += 1
        now = time.time()
        still = set(listed.stdout.split()) if listed.returncode == 0 else set(pending)
        detected.update((i, now) for i in pending if i not in still)
    return detected, calls, time.time() - start


def clusterjob_wait(
    folder: Path, prefix: str, jobs: int, sleep: int, partition: str, max_sleep: float, log: Path
) -> tuple[dict[str, float], int, float, list[int | None]]:
    """clusterjob: submit with a cache, then as_completed. Detections, status cmds, wall time."""
    JobScript.cache_folder = str(folder / "cache")
    JobScript.max_sleep_interval = max_sleep
    start = time.time()
    results = [
        JobScript(
            f"sleep {sleep}",
            jobname=f"{prefix}-cj{i}",
            backend="slurm",
            rootdir=str(folder),
            queue=partition,
            stdout="/dev/null",
        ).submit(cache_id=f"{prefix}-cj{i}")
        for i in range(jobs)
    ]
    SUBMISSION["cj"] += time.time() - start
    log.write_text("")  # count the commands of the wait only (submission asks no status)
    detected: dict[str, float] = {}
    for result in as_completed(results, progress=False):
        detected[str(result.job_id)] = time.time()
    wall = time.time() - start
    calls = [line for line in log.read_text().split() if line in STATUS_COMMANDS]
    return detected, len(calls), wall, [r.exit_code for r in results]


def accounting_end(job_ids: list[str]) -> dict[str, float]:
    """Each job's End from accounting (polled until all have one)."""
    deadline = time.monotonic() + 120
    while True:
        answer = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,End", "-j", ",".join(job_ids)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        ends = {}
        for line in answer.stdout.splitlines():
            job_id, _, end = line.partition("|")
            if end and end not in ("Unknown", "None"):
                ends[job_id] = datetime.strptime(end, "%Y-%m-%dT%H:%M:%S").timestamp()
        if len(ends) == len(job_ids) or time.monotonic() > deadline:
            return ends
        time.sleep(1)


def latencies(detected: dict[str, float]) -> list[float]:
    ends = accounting_end(sorted(detected))
    return sorted(detected[job_id] - ends[job_id] for job_id in detected if job_id in ends)


def tail(values: list[float]) -> float:
    """The 95th percentile (the largest value for fewer than 20)."""
    return values[min(len(values) - 1, int(0.95 * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--sleep", type=int, default=2, help="seconds each job sleeps")
    parser.add_argument(
        "--max-sleep", type=float, default=0.5, help="JobScript.max_sleep_interval (s)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds, in the order raw-cj, cj-raw, ... (drift)"
    )
    parser.add_argument("--partition", default=os.environ.get("SLURM_PARTITION", "debug"))
    args = parser.parse_args()
    prefix = f"cjmark{secrets.token_hex(3)}"
    real_path = os.environ["PATH"]
    raw_calls = cj_calls = 0
    raw_wall = cj_wall = 0.0
    raw_detected: dict[str, float] = {}
    cj_detected: dict[str, float] = {}
    codes: list[int | None] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            shim = folder / "shim"
            shim.mkdir()
            for command in STATUS_COMMANDS:
                (shim / command).write_text(SHIM)
                (shim / command).chmod(0o755)
            log = folder / "calls.log"
            for round_number in range(args.rounds):
                methods = ["raw", "cj"] if round_number % 2 == 0 else ["cj", "raw"]
                for method in methods:
                    label = f"{prefix}r{round_number}"
                    if method == "raw":
                        detected, calls, wall = raw_loop(
                            folder, label, args.jobs, args.sleep, args.partition
                        )
                        raw_detected.update(detected)
                        raw_calls, raw_wall = raw_calls + calls, raw_wall + wall
                        continue
                    os.environ.update(
                        CJ_CALL_LOG=str(log), CJ_REAL_PATH=real_path, PATH=f"{shim}:{real_path}"
                    )
                    try:
                        detected, calls, wall, round_codes = clusterjob_wait(
                            folder,
                            label,
                            args.jobs,
                            args.sleep,
                            args.partition,
                            args.max_sleep,
                            log,
                        )
                    finally:
                        os.environ["PATH"] = real_path
                    cj_detected.update(detected)
                    cj_calls, cj_wall = cj_calls + calls, cj_wall + wall
                    codes += round_codes
            raw_latency, cj_latency = latencies(raw_detected), latencies(cj_detected)
    finally:
        cancel_prefix(prefix)

    jobs = args.jobs * args.rounds
    print(
        f"{args.rounds} rounds of {args.jobs} jobs x sleep {args.sleep} on SLURM per method; "
        f"exit codes from markers: {sorted(set(codes), key=str)}"
    )
    print(
        "method                     status cmds/job  latency median  tail (p95)  max    wall/round"
    )
    for name, calls, latency, wall in (
        ("raw sbatch + squeue/2 s", raw_calls, raw_latency, raw_wall),
        ("clusterjob, exit markers", cj_calls, cj_latency, cj_wall),
    ):
        print(
            f"{name:26} {calls / jobs:6.3f} ({calls:3d})    "
            f"{statistics.median(latency):6.2f} s     "
            f"{tail(latency):5.2f} s   {latency[-1]:5.2f} s  {wall / args.rounds:6.1f} s"
        )
    print(
        f"submission per round: raw {SUBMISSION['raw'] / args.rounds:.1f} s, "
        f"clusterjob (cache, markers) {SUBMISSION['cj'] / args.rounds:.1f} s"
    )
    ratio = cj_wall / raw_wall
    print(
        f"targets: <= 0.1 cmds/job: {cj_calls / jobs:.3f}; median and tail <= 1.5 s: "
        f"{statistics.median(cj_latency):.2f} / {tail(cj_latency):.2f} s; "
        f"wall <= 1.03x raw: {ratio:.3f}x"
    )


if __name__ == "__main__":
    main()
