"""The documented path ``clusterjob.backends.slurm``: the backend of ``clusterjob-slurm``.

The backend itself ships in its own distribution; this module only keeps
code written against the original documentation working where it is installed.
"""

from clusterjob.plugins import import_backend_distribution

_module = import_backend_distribution("clusterjob_slurm", "clusterjob-slurm", "slurm")
SlurmBackend = _module.SlurmBackend

__all__ = ["SlurmBackend"]
