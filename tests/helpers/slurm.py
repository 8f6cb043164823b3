"""What the real-SLURM tests share: leaving no job of theirs in the queue."""

from __future__ import annotations

import os
import subprocess


def cancel_jobs_named(prefix: str) -> None:
    """scancel every job of this user whose name starts with ``prefix`` (a test's teardown)."""
    lines = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j", "-u", str(os.getuid())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    ids = [line.split("|")[0] for line in lines if line.split("|")[-1].startswith(prefix)]
    if ids:
        subprocess.run(["scancel", *ids], check=False)
