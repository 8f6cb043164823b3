"""clusterjob plugin for SLURM: provides the ``slurm`` backend.

Installing the ``clusterjob-slurm`` distribution registers this module under
the ``clusterjob`` entry-point group; clusterjob then finds the backend by
name (``JobScript(..., backend='slurm')``), and the documented path
``clusterjob.backends.slurm.SlurmBackend`` works.
"""

from __future__ import annotations

from clusterjob import hookimpl
from clusterjob.backends import ClusterjobBackend

from clusterjob_slurm.backend import SlurmBackend, TagLookupError

__all__ = ["SlurmBackend", "TagLookupError", "clusterjob_backends"]


@hookimpl
def clusterjob_backends() -> list[ClusterjobBackend]:
    """The plugin's one backend: :class:`SlurmBackend` under the name ``slurm``."""
    return [SlurmBackend()]
