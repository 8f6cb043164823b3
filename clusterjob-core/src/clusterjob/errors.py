"""Exceptions raised by clusterjob.

Every error clusterjob raises on its own account derives from
:class:`ClusterjobError`, so a workflow can catch them in one place. Where the
documented API promises a built-in exception (``ValueError``,
``AttributeError``, ``TypeError``, ``subprocess.CalledProcessError``), the
class also derives from that built-in, so code written against the original
documentation keeps working.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class ClusterjobError(Exception):
    """Base class of all errors raised by clusterjob itself."""


class ConfigError(ClusterjobError, ValueError):
    """An INI file (or a value set from one) is invalid; the message names file, section and key."""


class BackendNotInstalledError(ClusterjobError, KeyError):
    """A job asks for a backend that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class PluginError(ClusterjobError, TypeError):
    """A plugin returned something that is not a usable backend, or a duplicate name."""


class CacheError(ClusterjobError):
    """A cache file cannot be read or does not belong to clusterjob; the file is left untouched."""


class SchedulerError(ClusterjobError, subprocess.CalledProcessError):
    """A scheduler (or ssh/scp) command failed.

    Keeps the command, return code, stdout and stderr, so that the message a
    user sees tells what was run and what the scheduler answered.
    """

    def __init__(
        self,
        returncode: int,
        cmd: Sequence[str] | str,
        output: str = "",
        stderr: str = "",
        remote: str | None = None,
    ) -> None:
        subprocess.CalledProcessError.__init__(self, returncode, cmd, output, stderr)
        self.remote = remote

    def __str__(self) -> str:
        cmd = self.cmd if isinstance(self.cmd, str) else " ".join(str(c) for c in self.cmd)
        where = f" on {self.remote}" if self.remote else ""
        text = f"command {cmd!r}{where} failed with exit code {self.returncode}"
        details = (self.stderr or self.output or "").strip()
        if details:
            text += ": " + details[-2000:]
        return text


class TransientTransportError(SchedulerError):
    """ssh could not reach the remote (exit 255, connection refused/reset).

    Never a statement about the job: pollers retry and keep the last known status.
    """


class ResourcesNotSupportedError(ClusterjobError):
    """A backend is unable to encode a resource requirement.

    The message names the resource key (and value) the backend cannot express.
    """


class SubmitError(ClusterjobError):
    """Submission did not produce a job ID; nothing is cached as submitted."""
