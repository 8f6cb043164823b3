"""PBS family backends for clusterjob: ``pbs`` (TORQUE), ``pbspro`` (PBS Professional), ``lpbs``.

This module is the plugin registered under the ``clusterjob`` entry-point
group; installing ``clusterjob-pbs`` makes the three backends available to
``JobScript`` and keeps ``clusterjob.backends.pbs.PbsBackend`` (and
``pbspro``/``lpbs``) importable.
"""

from __future__ import annotations

from clusterjob import hookimpl
from clusterjob.backends import ClusterjobBackend

from clusterjob_pbs.backend import PbsBackend
from clusterjob_pbs.variants import LPbsBackend, PbsProBackend

__all__ = ["LPbsBackend", "PbsBackend", "PbsProBackend", "clusterjob_backends"]


@hookimpl
def clusterjob_backends() -> list[ClusterjobBackend]:
    """The ``pbs``, ``pbspro`` and ``lpbs`` backends."""
    return [PbsBackend(), PbsProBackend(), LPbsBackend()]
