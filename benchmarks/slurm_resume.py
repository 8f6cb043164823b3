"""Time to resume a workflow of 10,000 cached SLURM results.

How the cache is made: through the public API, with an instant submission
path. A ``SlurmBackend`` subclass, registered as ``slurm`` with
``JobScript.register_backend``, replaces only ``cmd_submit``: instead of
``sbatch`` it runs ``echo 'Submitted batch job <n>'``. Everything else is the
real thing: the SLURM job script is rendered and written, the crash-safe
path (lock, intent with tag, result) writes the cache file, and the result is
then marked finished with ``update_status(COMPLETED)``, as the poller does.
Really submitting 10,000 jobs would take hours on the 2-CPU test node (it
runs ~0.7 short jobs per second) and measure nothing more: a resumed,
finished job never reaches the scheduler.

The resume runs in a fresh Python process, which finds the real SLURM
backend through its entry point: for each job, build its ``JobScript`` and
``submit(cache_id=...)``, which returns the cached result; then ``wait_all``.
The baseline, measured in that same process: reading and JSON-decoding the
same 10,000 files.

    python benchmarks/slurm_resume.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

from clusterjob import JobScript
from clusterjob.status import COMPLETED

BODY = "srun ./simulate --seed {seed} > out.{seed}\n"


def job(i: int, folder: str) -> JobScript:
    jobscript = JobScript(
        BODY,
        jobname=f"sim{i}",
        backend="slurm",
        rootdir=folder,
        workdir="runs",
        time="1:00:00",
        threads=4,
    )
    jobscript.seed = i
    jobscript.filename = f"sim{i}.slr"
    return jobscript


def fill_cache(folder: str, n_jobs: int) -> float:
    from clusterjob_slurm import SlurmBackend

    numbers = count(1000)

    class InstantSubmit(SlurmBackend):
        """The real SLURM backend, except that "submitting" prints a job ID at once."""

        def cmd_submit(self, jobscript):  # type: ignore[no-untyped-def]
            return ["echo", f"Submitted batch job {next(numbers)}"]

    JobScript.register_backend(InstantSubmit(), name="slurm")
    start = time.perf_counter()
    for i in range(n_jobs):
        result = job(i, folder).submit(cache_id=f"sim{i}")
        result.update_status(COMPLETED)  # type: ignore[union-attr]
    return time.perf_counter() - start


def resume(folder: str, n_jobs: int) -> None:
    """Run in a fresh process: time the resume and the baseline, print both as JSON."""
    from clusterjob import wait_all

    JobScript.cache_folder = os.path.join(folder, "cache")
    job(0, folder).submit(cache_id="sim0")  # imports and plugin discovery, not part of resuming
    times = []
    for _ in range(3):
        start = time.perf_counter()
        results = [job(i, folder).submit(cache_id=f"sim{i}") for i in range(n_jobs)]
        statuses = wait_all(results, progress=False)
        times.append(time.perf_counter() - start)
        assert statuses == [COMPLETED] * n_jobs and all(r.resumed for r in results)  # type: ignore[union-attr]
        assert type(results[0].backend).__name__ == "SlurmBackend"  # type: ignore[union-attr]
    base = []
    for _ in range(3):
        start = time.perf_counter()
        for entry in os.scandir(JobScript.cache_folder):
            if entry.name.endswith(".cache"):
                with open(entry.path, "rb") as in_fh:
                    json.loads(in_fh.read())
        base.append(time.perf_counter() - start)
    print(json.dumps({"resume": min(times), "baseline": min(base)}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--resume-in", help=argparse.SUPPRESS
    )  # internal: the fresh resuming process
    args = parser.parse_args()
    if args.resume_in:
        resume(args.resume_in, args.jobs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        JobScript.cache_folder = os.path.join(tmp, "cache")
        fill = fill_cache(tmp, args.jobs)
        n_files = len(list(Path(JobScript.cache_folder).glob("*.cache")))
        answer = subprocess.run(
            [sys.executable, __file__, "--jobs", str(args.jobs), "--resume-in", tmp],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    figures = json.loads(answer.stdout.strip().splitlines()[-1])
    best, base = figures["resume"], figures["baseline"]
    print(
        f"cache of {n_files} finished SLURM results written through submit() in {fill:.1f} s "
        f"({fill / args.jobs * 1000:.1f} ms/job, instant submission)"
    )
    print(
        f"resume {args.jobs} cached SLURM jobs: best {best:.3f} s of 3 runs "
        f"({best / args.jobs * 1e6:.0f} us/job); "
        f"target < 1 s: {'met' if best < 1 else 'MISSED'}"
    )
    print(f"baseline (read + json-decode the same files): {base:.3f} s; ratio {best / base:.2f}x")


if __name__ == "__main__":
    main()
