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

Then, over SSH (the loopback sshd of the tests), the ssh commands that
``--ssh-jobs`` cached ``submit()`` calls cost, counted by a wrapper given as
the ``ssh`` attribute, from a fresh master connection (target: <= 1.05 per job).

    python benchmarks/slurm_submit.py [--jobs 200] [--rounds 8] [--ssh-jobs 50]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from clusterjob import JobScript
from clusterjob.transport import close_all
from slurm_cleanup import cancel_prefix  # next to this script

BODY = "echo hello from $CLUSTERJOB_ID\n"

#: Where ``tests/schedulers/sshd.sh`` writes how to reach the loopback sshd.
SSH_CONFIG = "/var/tmp/clusterjob-test/sshd/ssh_config"


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


def ssh_round_trips(
    folder: Path, prefix: str, jobs: int, host: str, config: str
) -> tuple[int, float]:
    """(ssh commands, seconds) of ``jobs`` cached ``submit()`` calls over ssh into one folder."""
    log = folder / "ssh-calls.log"
    log.write_text("")
    wrapper = folder / "counting-ssh"
    wrapper.write_text(f'#!/bin/sh\necho ssh >> "{log}"\nexec ssh "$@"\n')
    wrapper.chmod(0o755)
    close_all()  # a fresh master connection: its set-up is counted too
    before = len(log.read_text().splitlines())
    JobScript.cache_folder = str(folder / "ssh-cache")
    start = time.perf_counter()
    try:
        for i in range(jobs):
            JobScript(
                BODY, jobname=f"{prefix}-ssh{i}", backend="slurm", rootdir=str(folder / "ssh"),
                hold=True, stdout="/dev/null", remote=host, ssh=f"{wrapper} -F {config}",
                scp=f"scp -F {config}",
            ).submit(cache_id=f"ssh{i}")  # fmt: skip
    finally:
        JobScript.cache_folder = None
    seconds = time.perf_counter() - start
    commands = len(log.read_text().splitlines()) - before
    close_all()
    return commands, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="jobs per method")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--ssh-jobs", type=int, default=50, help="submit() over ssh (0: skip)")
    parser.add_argument("--ssh-host", default=os.environ.get("SSH_HOST", "cjtest"))
    parser.add_argument("--ssh-config", default=os.environ.get("SSH_CONFIG", SSH_CONFIG))
    parser.add_argument(
        "--folder", default=None, help="where scripts and cache go (default: a folder in $TMPDIR)"
    )
    args = parser.parse_args()
    prefix = f"cjbench{secrets.token_hex(3)}"
    per_round = args.jobs // args.rounds
    totals = {"raw sbatch loop": 0.0, "clusterjob": 0.0, "clusterjob + cache": 0.0}
    counter = 0
    ssh: tuple[int, float] | None = None
    try:
        with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
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
            if args.ssh_jobs:
                ssh = ssh_round_trips(folder, prefix, args.ssh_jobs, args.ssh_host, args.ssh_config)
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
    if ssh is not None:
        commands, seconds = ssh
        per_job = commands / args.ssh_jobs
        print(
            f"submit() over ssh: {args.ssh_jobs} cached jobs, {commands} ssh commands, "
            f"{seconds:.2f} s: {per_job:.2f} ssh round trips per job; "
            f"target <= 1.05: {'met' if per_job <= 1.05 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
