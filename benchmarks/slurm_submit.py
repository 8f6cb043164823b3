"""Submitting 200 jobs to SLURM through clusterjob vs a raw ``sbatch`` loop (target: <= 1.15x).

Three ways of submitting the same job, interleaved in rounds so that a drift
of the shared machine hits all of them alike:

* raw: write the job script, ``subprocess.run(['sbatch', script])``, read the ID
  (what a hand-written Python loop does; the baseline);
* clusterjob: ``JobScript(...).submit()`` without a cache (render, write, sbatch, parse);
* clusterjob + cache: with ``JobScript.cache_folder`` set, i.e. crash-safe
  (lock, fsynced intent with a tag, sbatch, fsynced result).

All jobs are submitted held (``--hold``), so the benchmark measures submission
and not a busy node, and are cancelled at the end.

    python benchmarks/slurm_submit.py [--jobs 200] [--rounds 8]
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from clusterjob import JobScript
from slurm_cleanup import cancel_prefix  # next to this script

BODY = "echo hello from $CLUSTERJOB_ID\n"


def raw_submit(folder: Path, name: str) -> str:
    script = folder / f"{name}.slr"
    body = BODY.replace("$CLUSTERJOB_ID", "$SLURM_JOB_ID")
    script.write_text(
        f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --hold\n"
        f"#SBATCH --output=/dev/null\n{body}"
    )
    script.chmod(0o755)
    out = subprocess.run(
        ["sbatch", script.name], cwd=folder, capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Submitted batch job (\d+)", out)
    assert match, out
    return match.group(1)


def clusterjob_submit(folder: Path, name: str) -> str:
    result = JobScript(
        BODY, jobname=name, backend="slurm", rootdir=str(folder), hold=True, stdout="/dev/null"
    ).submit()
    return result.job_id  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="jobs per method")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    prefix = f"cjbench{secrets.token_hex(3)}"
    per_round = args.jobs // args.rounds
    totals = {"raw sbatch loop": 0.0, "clusterjob": 0.0, "clusterjob + cache": 0.0}
    counter = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            cache = folder / "cache"

            def cj_cached(folder: Path, name: str) -> str:
                JobScript.cache_folder = str(cache)
                try:
                    return clusterjob_submit(folder, name)
                finally:
                    JobScript.cache_folder = None

            methods: dict[str, Callable[[Path, str], str]] = {
                "raw sbatch loop": raw_submit,
                "clusterjob": clusterjob_submit,
                "clusterjob + cache": cj_cached,
            }
            clusterjob_submit(folder, f"{prefix}-warmup")  # imports, plugin discovery
            for round_no in range(args.rounds):
                order = list(methods.items())
                if round_no % 2:
                    order.reverse()
                for label, method in order:
                    start = time.perf_counter()
                    for _ in range(per_round):
                        counter += 1
                        method(folder, f"{prefix}-{counter}")
                    totals[label] += time.perf_counter() - start
    finally:
        cancelled = cancel_prefix(prefix)
    n = per_round * args.rounds
    base = totals["raw sbatch loop"]
    print(
        f"submitting {n} held jobs per method, {args.rounds} interleaved rounds "
        f"({cancelled} jobs cancelled afterwards)"
    )
    for label, seconds in totals.items():
        print(
            f"  {label:<20} {seconds:6.2f} s  {seconds / n * 1000:6.1f} ms/job  "
            f"ratio {seconds / base:.3f}x"
        )
    for label in ("clusterjob", "clusterjob + cache"):
        ratio = totals[label] / base
        print(
            f"{label}: ratio {ratio:.3f}x vs raw sbatch loop; "
            f"target <= 1.15x: {'met' if ratio <= 1.15 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
