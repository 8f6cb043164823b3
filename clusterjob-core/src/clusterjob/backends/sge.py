"""The documented path ``clusterjob.backends.sge``: re-exports the backend of ``clusterjob-sge``.

The backend itself ships in its own distribution; this module only keeps
code written against the original documentation working where it is installed.
"""

from clusterjob.plugins import import_backend_distribution

_module = import_backend_distribution("clusterjob_sge", "clusterjob-sge", "sge")
SgeBackend = _module.SgeBackend

__all__ = ["SgeBackend"]
