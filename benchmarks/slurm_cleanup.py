"""Shared by the SLURM benchmarks: leave no job of theirs in the queue."""

from __future__ import annotations

import os
import subprocess


def cancel_prefix(prefix: str) -> int:
    """scancel every job of ours whose name starts with ``prefix``; return how many."""
    lines = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j", "-u", str(os.getuid())],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    ids = [line.split("|")[0] for line in lines if line.split("|", 1)[-1].startswith(prefix)]
    for start in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[start : start + 500]], check=False)
    return len(ids)
