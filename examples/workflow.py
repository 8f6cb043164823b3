"""A small clusterjob workflow on the built-in ``local`` backend.

Submits a handful of jobs (each estimates pi by Monte Carlo with a different
seed), caches every submission, shows progress while they run, and prints
the results. Run it again and it resumes from the cache instead of
submitting anything twice — also after you interrupt it with Ctrl-C or kill it.

    python examples/workflow.py            # from the repository root
    python examples/workflow.py --fresh    # forget the cache and start over
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from clusterjob import JobScript, wait_all
from clusterjob.status import str_status

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"

BODY = r"""
echo "job $CLUSTERJOB_ID ({jobname}) on $CLUSTERJOB_NODELIST"
{python} - <<'PY'
import random
random.seed({seed})
n = {samples}
inside = sum(random.random() ** 2 + random.random() ** 2 <= 1 for _ in range(n))
print(f"pi ~ {{4 * inside / n:.5f}}")
PY
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fresh", action="store_true", help="clear the cache and resubmit everything"
    )
    parser.add_argument("--jobs", type=int, default=6)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    JobScript.backend = "local"
    JobScript.rootdir = str(WORK)
    JobScript.cache_folder = str(WORK / "cache")
    JobScript.max_sleep_interval = 2
    if args.fresh:
        JobScript.clear_cache_folder()

    results = []
    for seed in range(args.jobs):
        job = JobScript(
            BODY, jobname=f"pi{seed}", workdir="runs", stdout=f"pi{seed}.out", time="5:00"
        )
        job.python = sys.executable  # a template variable: {python} in the body
        job.seed = seed
        job.samples = 200_000
        results.append(job.submit(cache_id=f"pi-{seed}"))
    resumed = sum(r.resumed for r in results)
    print(
        f"{len(results) - resumed} jobs submitted, "
        f"{resumed} resumed from the cache in {JobScript.cache_folder}"
    )
    statuses = wait_all(results, progress=True)
    for result in results:
        output = (WORK / "runs" / f"{result.jobname}.out").read_text().strip().splitlines()
        status = str_status[result.status]
        print(f"{result.jobname:>4}  job {result.job_id:>4}  {status:<9}  {output[-1]}")
    if resumed < len(results):
        print("run me again: every job is resumed from the cache, nothing is submitted twice")
    return 0 if all(s == 0 for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
