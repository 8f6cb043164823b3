"""Time to resume a workflow of 10,000 cached jobs (target: under 1 s).

Resuming means: for every job of the workflow, build its JobScript and call
``submit(cache_id=...)``, which must return the cached AsyncResult without
touching the scheduler. The cache is filled through the public API
(``AsyncResult.dump``) with finished local-backend results, as a completed
workflow leaves it. The baseline, measured in the same run, is the least
any resume can cost: reading and JSON-decoding the same 10,000 files.

    python benchmarks/resume.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from clusterjob import AsyncResult, JobScript, wait_all
from clusterjob.status import COMPLETED


def fill_cache(folder: Path, n_jobs: int) -> None:
    for i in range(n_jobs):
        result = AsyncResult("local")
        result.job_id = str(i + 1)
        result.jobname = f"job{i}"
        result.cache_id = f"job{i}"
        result._status = COMPLETED
        result.epilogue_done = result.finished_notified = True
        result.dump(str(folder / f"clusterjob.job{i}.cache"))


def resume(n_jobs: int) -> float:
    start = time.perf_counter()
    results = [
        JobScript("python simulate.py --seed {seed}", jobname=f"job{i}", backend="local").submit(
            cache_id=f"job{i}"
        )
        for i in range(n_jobs)
    ]
    statuses = wait_all(results, progress=False)
    elapsed = time.perf_counter() - start
    assert statuses == [COMPLETED] * n_jobs and all(r.resumed for r in results)
    return elapsed


def baseline(folder: Path) -> float:
    start = time.perf_counter()
    for path in os.scandir(folder):
        if path.name.endswith(".cache"):
            with open(path.path, "rb") as in_fh:
                json.loads(in_fh.read())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        JobScript.cache_folder = str(folder)
        fill_cache(folder, args.jobs)
        resume(min(args.jobs, 100))  # warm imports and the plugin manager
        times = [resume(args.jobs) for _ in range(3)]
        base = min(baseline(folder) for _ in range(3))
    best = min(times)
    print(
        f"resume {args.jobs} cached jobs: best {best:.3f} s of {len(times)} runs "
        f"({best / args.jobs * 1e6:.0f} us/job); target < 1 s: {'met' if best < 1 else 'MISSED'}"
    )
    print(f"baseline (read + json-decode the same files): {base:.3f} s; ratio {best / base:.2f}x")


if __name__ == "__main__":
    main()
