"""The documented path ``clusterjob.backends.lsf``: re-exports the backend of ``clusterjob-lsf``.

The backend itself ships in its own distribution; this module only keeps
code written against the original documentation working where it is installed.
"""

from clusterjob.plugins import import_backend_distribution

_module = import_backend_distribution("clusterjob_lsf", "clusterjob-lsf", "lsf")
LsfBackend = _module.LsfBackend
time_to_minutes = _module.time_to_minutes

__all__ = ["LsfBackend", "time_to_minutes"]
