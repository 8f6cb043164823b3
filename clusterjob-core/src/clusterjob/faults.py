"""Named points in ``submit()`` where the fault-injection tests kill the process.

``CLUSTERJOB_FAULT_INJECT=<point>`` makes the process SIGKILL itself when it
reaches that point, exactly like a crash or a closed laptop lid would stop it
there. The exactly-once tests rerun the workflow afterwards and count jobs.
``<point>@<n>`` dies the n-th time the process passes the point (e.g.
``during_cache_write@2``: the first write is a job's intent, the second its
result, after the scheduler accepted it). The check is one dictionary
lookup; without the variable nothing happens.
"""

from __future__ import annotations

import os
import signal

#: The points, in the order ``submit()`` passes them: ``after_write`` follows the
#: job script, ``after_upload`` all files. On a remote the files travel with the
#: submit command in one round trip, after the intent: there both points are
#: passed right after the intent's write (``during_cache_write``), before the
#: round trip.
POINTS: tuple[str, ...] = (
    "after_prologue",
    "after_write",
    "after_upload",
    "before_submit",
    "after_submit",
    "during_cache_write",
)

#: The points ``submit_all()`` passes, in order, for each batch of jobs it submits
#: together: the intents of the whole batch are durable (``after_intents``), its
#: scripts are written (``after_write``), the scheduler is called once per array
#: (``before_submit``, ``after_submit``), the results are written
#: (``during_cache_write``, once per cache file).
BATCH_POINTS: tuple[str, ...] = (
    "after_prologue",
    "after_intents",
    "after_write",
    "before_submit",
    "after_submit",
    "during_cache_write",
)


_passed: dict[str, int] = {}


def checkpoint(point: str) -> None:
    """Die here if the environment asks for it (see module docstring)."""
    wanted = os.environ.get("CLUSTERJOB_FAULT_INJECT")
    if not wanted:
        return
    name, _, nth = wanted.partition("@")
    if name != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] == (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
