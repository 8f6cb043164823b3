"""LSF backend for clusterjob.

This module is the plugin registered under the ``clusterjob`` entry-point
group; installing ``clusterjob-lsf`` makes the ``lsf`` backend available to
``JobScript`` and keeps ``clusterjob.backends.lsf.LsfBackend`` and
``clusterjob.backends.lsf.time_to_minutes`` importable.
"""

from __future__ import annotations

from clusterjob import hookimpl
from clusterjob.backends import ClusterjobBackend
from clusterjob.walltime import time_to_minutes

from clusterjob_lsf.backend import LsfBackend

__all__ = ["LsfBackend", "clusterjob_backends", "time_to_minutes"]


@hookimpl
def clusterjob_backends() -> list[ClusterjobBackend]:
    """The ``lsf`` backend."""
    return [LsfBackend()]
