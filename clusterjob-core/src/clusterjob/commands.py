"""What a command is, and what it answered: the currency between backends and the transport.

A backend returns :data:`Command` values and reads :class:`CommandResult`
values; the transport (:mod:`clusterjob.transport`) turns the one into the
other, locally or over SSH. Both live here, below the backend interface and
the transport, so that each can use them without importing the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

__all__ = ["Command", "CommandResult"]

#: A command as accepted by :func:`subprocess.Popen`: argument list, or a shell string.
Command = Union[Sequence[str], str]


@dataclass(frozen=True)
class CommandResult:
    """How a command ended and what it printed: the whole answer a parser reads.

    Parsers get all of it, so that "the command failed" (``returncode``, and
    why on ``stderr``) is never mistaken for "the output lists no job".
    """

    returncode: int
    stdout: str = ""
    stderr: str = ""
    #: The command that ran (for messages).
    cmd: Command = ""
