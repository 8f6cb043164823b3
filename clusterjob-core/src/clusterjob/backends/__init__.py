"""The backend interface: stateless translators between a job and a scheduler.

A backend never talks to a machine itself. It turns a
:class:`~clusterjob.JobScript` into header lines and command lines, and turns a
scheduler's output back into :mod:`clusterjob.status` codes. The transport
(:mod:`clusterjob.transport`) runs the commands, locally or over SSH, so every
backend works remotely without knowing it.

The interface is :class:`ClusterjobBackend` (:mod:`~clusterjob.backends.interface`),
made of parts with one job each: :mod:`~clusterjob.backends.status_query`,
:mod:`~clusterjob.backends.tag_lookup`, :mod:`~clusterjob.backends.options`,
:mod:`~clusterjob.backends.variables` and :mod:`~clusterjob.backends.overrides`.
This module gathers the names backends import.

Backends are provided by plugins (see :mod:`clusterjob.hookspecs`). The
documented module paths ``clusterjob.backends.slurm`` etc. keep working when
the corresponding distribution (``clusterjob-slurm`` …) is installed.
"""

from __future__ import annotations

from clusterjob.backends.interface import ClusterjobBackend
from clusterjob.backends.variables import CORE_VARIABLES
from clusterjob.commands import Command, CommandResult
from clusterjob.errors import ResourcesNotSupportedError
from clusterjob.rendering import (
    SubmissionContext,
    dashed_key_problem,
    format_option,
    is_dashed,
    positive_int,
    resource_list_names,
)

__all__ = [
    "CORE_VARIABLES",
    "ClusterjobBackend",
    "Command",
    "CommandResult",
    "ResourcesNotSupportedError",
    "SubmissionContext",
    "dashed_key_problem",
    "format_option",
    "is_dashed",
    "positive_int",
    "resource_list_names",
]
