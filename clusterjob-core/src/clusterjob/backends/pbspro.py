"""The documented path ``clusterjob.backends.pbspro``: re-exports the backend of ``clusterjob-pbs``.

The backend itself ships in its own distribution; this module only keeps
code written against the original documentation working where it is installed.
"""

from clusterjob.plugins import import_backend_distribution

_module = import_backend_distribution("clusterjob_pbs", "clusterjob-pbs", "pbspro")
PbsProBackend = _module.PbsProBackend

__all__ = ["PbsProBackend"]
