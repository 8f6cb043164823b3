"""The ``local`` backend: jobs as detached processes on the submit host.

It lets a workflow run on a laptop with no scheduler, and is the backend the
tutorial uses. Jobs outlive the Python process that submitted them; their
state lives in files under the spool folder (``$CLUSTERJOB_LOCAL_SPOOL``,
default ``~/.cache/clusterjob/local``), so status survives any crash of the
workflow. The work is done by :mod:`clusterjob.backends.local_runner`, run
with the Python of the submit host (``python3`` on a remote). The runner uses
the standard library only and starts without the clusterjob package (each poll
starts it): by its file path here, and on a remote by the path of the runner
in the clusterjob-core installed there (see :func:`runner_on_a_remote`).

Resources: ``jobname``, ``stdout``/``stderr`` (default ``local-<id>.out`` in
the workdir, stderr merged into stdout), ``time`` (walltime: the job's
process group is killed and the job FAILED), ``nodes`` (only 1), ``ppn``,
``threads`` (exported as ``OMP_NUM_THREADS``), ``dependency``
(``afterok:ID:ID``, merged with the jobs of ``submit(after=...)``), ``queue``
and ``mem`` (accepted and ignored, so a cluster's INI file works unchanged).
Anything else raises :class:`ResourcesNotSupportedError`.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    CommandResult,
    ResourcesNotSupportedError,
    SubmissionContext,
)
from clusterjob.backends.output import find_job_id, output_lines
from clusterjob.errors import SubmitError
from clusterjob.hookspecs import hookimpl
from clusterjob.rendering import merged_value
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob.walltime import Walltime

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["LocalBackend", "clusterjob_backends", "runner_here", "runner_on_a_remote"]

#: The runner as a module (``python -m``, for a person; the backend runs it by path).
RUNNER_MODULE = "clusterjob.backends.local_runner"
#: The runner's file, which the backend runs (see :func:`runner_here`).
RUNNER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "local_runner.py")

#: What a remote's Python runs: the runner file of the clusterjob-core installed there,
#: found without importing the package (``find_spec`` of a top-level name imports nothing).
_RUN_INSTALLED_RUNNER = """\
import importlib.util, os, runpy, sys
spec = importlib.util.find_spec("clusterjob")
if spec is None or not spec.submodule_search_locations:
    sys.exit(f"the local backend needs clusterjob-core installed for {sys.executable} on "
             f"{os.uname().nodename}: pip install clusterjob-core")
folder = list(spec.submodule_search_locations)[0]
sys.argv[0] = os.path.join(folder, "backends", "local_runner.py")
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def runner_here() -> list[str]:
    """The runner on this machine: its file, run isolated (``-I``) and without site-packages."""
    return [sys.executable, "-I", "-S", RUNNER_PATH]


def runner_on_a_remote(python: str = "python3") -> list[str]:
    """The runner on a remote, by ``python``, from the clusterjob-core installed there."""
    return [python, "-c", _RUN_INSTALLED_RUNNER]


#: Resource -> header option understood by the runner.
_OPTIONS = {
    "jobname": "job-name",
    "stdout": "output",
    "stderr": "error",
    "time": "time",
    "threads": "threads",
    "dependency": "dependency",
}
_IGNORED = ("queue", "mem", "ppn", "nodes")

#: What the runner prints: ``submit`` the job ID alone on a line, ``status`` ``ID STATE`` lines.
_SUBMITTED = re.compile(r"\d+")
_STATUS_LINE = re.compile(r"(\d+) ([A-Z_]+)")
#: ... and ``ID exit-code N`` once the job ended (N negative: killed by signal -N).
_EXIT_CODE_LINE = re.compile(r"(\d+) exit-code (-?\d+)")


class LocalBackend(ClusterjobBackend):
    """Runs job scripts as detached local processes (see module docstring)."""

    name = "local"
    extension = "sh"
    prefix = "#LOCAL"
    commands = ("python -I -S local_runner.py",)  # what runner_here() runs
    resource_replacements = dict(_OPTIONS)
    job_vars = {
        "CLUSTERJOB_ID": "LOCAL_JOB_ID",
        "CLUSTERJOB_WORKDIR": "LOCAL_SUBMIT_DIR",
        "CLUSTERJOB_SUBMIT_HOST": "LOCAL_SUBMIT_HOST",
        "CLUSTERJOB_NAME": "LOCAL_JOB_NAME",
        "CLUSTERJOB_NODELIST": "LOCAL_JOB_NODELIST",
    }
    status_mapping = {
        "PENDING": PENDING,
        "RUNNING": RUNNING,
        "COMPLETED": COMPLETED,
        "CANCELLED": CANCELLED,
        "FAILED": FAILED,
    }

    @staticmethod
    def _runner(remote: str | None) -> list[str]:
        return runner_on_a_remote() if remote else runner_here()

    def cmd_submit(self, jobscript: JobScript) -> Command:
        # "--": the file name may start with "-"
        return [*self._runner(jobscript.remote), "submit", "--", jobscript.script_filename()]

    def get_job_id(self, response: str) -> str | None:
        """The number the runner printed alone on a line (see :func:`.output.find_job_id`)."""
        return find_job_id(response, _SUBMITTED)

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """The runner's ``status ID...``; None for ``finished``: the spool keeps finished jobs."""
        if finished:
            return None
        return [*self._runner(runs[0].remote), "status", *(str(r.job_id) for r in runs)]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status from the runner's ``ID STATE`` lines; other lines are skipped.

        A runner that failed (it could not read the spool) tells nothing: every job unknown.
        """
        statuses: dict[str, int | None] = dict.fromkeys(job_ids)
        if result.returncode != 0:
            return statuses
        for line in output_lines(result.stdout):
            match = _STATUS_LINE.fullmatch(line)
            if match:
                statuses[match.group(1)] = self.status_mapping.get(match.group(2))
        return statuses

    def parse_exit_codes(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int]:
        """Job ID -> the exit status of its script, from the runner's ``ID exit-code N`` lines."""
        if result.returncode != 0:
            return {}
        matches = (_EXIT_CODE_LINE.fullmatch(line) for line in output_lines(result.stdout))
        return {match.group(1): int(match.group(2)) for match in matches if match}

    def cmd_cancel(self, run: AsyncResult) -> Command:
        return [*self._runner(run.remote), "cancel", str(run.job_id)]

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """``#LOCAL --option=value`` lines for the runner, read with :func:`shlex.split`.

        The submission tag becomes ``--tag``; the jobs of ``after=`` join the
        ``dependency`` list.
        """
        for key, value in resources.items():
            if key not in _OPTIONS and key not in _IGNORED:
                raise ResourcesNotSupportedError(
                    f"the local backend does not support resource {key}={value!r}; it understands "
                    f"{', '.join(sorted([*_OPTIONS, *_IGNORED]))}"
                )
        if int(resources.get("nodes", 1)) != 1:
            raise ResourcesNotSupportedError(
                f"the local backend runs on one machine: nodes={resources['nodes']!r} "
                "is not supported"
            )
        options = {key: value for key, value in resources.items() if key in _OPTIONS}
        if resources.get("time") is not None:  # the runner reads whole seconds only
            options["time"] = Walltime.read(self.name, resources["time"]).seconds
        if context.tag:
            options["tag"] = context.tag
        if context.after:
            given = options.get("dependency")
            added = ":".join(context.after)
            options["dependency"] = (
                merged_value(given, [added], ":") if given else f"afterok:{added}"
            )
        return [
            f"{self.prefix} --{_OPTIONS.get(key, key)}={shlex.quote(str(value))}"
            for key, value in sorted(options.items())
            if value is not None and value is not False
        ]

    def generic_option(self, key: str) -> str | None:
        """None: the runner knows only its own options; no key is written by the documented rule."""
        return None

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """The runner's ``find-tag``, on the host that holds the spool (which keeps every job)."""
        return None if finished else [*self._runner(remote), "find-tag", tag]

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str]:
        """The IDs of the runner's ``ID TAG`` lines; other lines (a login banner) are not jobs.

        Raises:
            SubmitError: if the runner failed, so that no job is provably absent.
        """
        if result.returncode != 0:
            raise SubmitError(
                f"cannot tell whether a local job carries tag {tag}: the runner's find-tag "
                f"exited with {result.returncode}: {result.stderr.strip()[-500:]}. Check the spool "
                "($CLUSTERJOB_LOCAL_SPOOL), then submit again with force=True"
            )
        found = []
        for line in output_lines(result.stdout):
            words = line.split()
            if len(words) == 2 and words[0].isdigit() and words[1] == tag:
                found.append(words[0])
        return found


@hookimpl
def clusterjob_backends() -> list[ClusterjobBackend]:
    """Core's own plugin: the ``local`` backend."""
    return [LocalBackend()]
