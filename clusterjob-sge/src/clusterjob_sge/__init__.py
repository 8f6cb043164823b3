"""clusterjob plugin for Grid Engine (SGE): the ``sge`` backend.

Installing the ``clusterjob-sge`` distribution registers this module under
the ``clusterjob`` entry-point group; clusterjob then offers the backend as
``JobScript(..., backend='sge')`` and at the documented path
``clusterjob.backends.sge.SgeBackend``.
"""

from __future__ import annotations

from clusterjob import hookimpl
from clusterjob.backends import ClusterjobBackend, ResourcesNotSupportedError

from clusterjob_sge.backend import SgeBackend

__all__ = ["ResourcesNotSupportedError", "SgeBackend", "clusterjob_backends"]


@hookimpl
def clusterjob_backends() -> list[ClusterjobBackend]:
    """The backends of this plugin: one :class:`SgeBackend`."""
    return [SgeBackend()]
