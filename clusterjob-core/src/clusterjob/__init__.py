"""Abstraction for job scripts and cluster schedulers (SLURM, PBS/TORQUE, PBS Pro, LSF, SGE, local).

To see debug messages::

    import logging
    logging.basicConfig(level=logging.DEBUG)
"""

from __future__ import annotations

import logging

from clusterjob.aio import as_completed_async
from clusterjob.async_result import AsyncResult
from clusterjob.batch import submit_all
from clusterjob.hookspecs import hookimpl
from clusterjob.jobscript import JobScript
from clusterjob.polling import as_completed, wait_all

__all__ = [
    "AsyncResult",
    "JobScript",
    "__version__",
    "as_completed",
    "as_completed_async",
    "hookimpl",
    "submit_all",
    "wait_all",
]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("clusterjob-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

logging.getLogger("clusterjob").addHandler(logging.NullHandler())
