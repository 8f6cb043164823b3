"""The :class:`SlurmBackend`: job scripts for ``sbatch``, status from ``squeue`` and ``sacct``.

How a status is found (one poll cycle, any number of jobs):

1. ``squeue --states=all -j ID,ID,...`` asks the controller, which knows
   every job until ``MinJobAge`` (default 300 s) after it ended, including
   its final state. A job missing from the answer has left the queue.
2. For those, ``sacct`` (accounting) gives the final state. If accounting
   storage is disabled or down, ``sacct -c`` (the job completion log) is
   asked instead. A job neither knows is reported as unknown (None): core
   keeps its last status and says so; it is never taken as COMPLETED.

See :mod:`clusterjob_slurm.states` for the state mapping and how arrays are
aggregated, :mod:`clusterjob_slurm.queries` for the exact commands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    ResourcesNotSupportedError,
    format_option,
    is_dashed,
)
from clusterjob.backends.output import find_job_id
from clusterjob.errors import SubmitError
from clusterjob.utils import time_to_seconds

from clusterjob_slurm import queries
from clusterjob_slurm.states import STATUS_MAPPING

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["TAG_RESOURCE", "SlurmBackend", "TagLookupError"]

logger = logging.getLogger("clusterjob.slurm")

#: Resource key under which the submission tag travels to :meth:`SlurmBackend.resource_headers`,
#: which merges it into ``--comment`` (keeping a comment the user set).
TAG_RESOURCE = "clusterjob_tag"

#: What sbatch prints, and (``--parsable``, e.g. from a site's wrapper) ``123`` or ``123;cluster``.
_SUBMITTED = re.compile(r"Submitted batch job (\d+)(?: on cluster \S+)?")
_PARSABLE = re.compile(r"(\d+)(?:;\S+)?")
_DAYS_COLONS = re.compile(r"^(\d+):(\d+):(\d+):(\d+)$")
#: sbatch's one-letter options and their long names.
_SHORT_OPTIONS = {
    "A": "account", "a": "array", "B": "extra-node-info", "b": "begin", "C": "constraint",
    "c": "cpus-per-task", "D": "chdir", "d": "dependency", "e": "error", "F": "nodefile", "G": "gpus",
    "H": "hold", "i": "input", "J": "job-name", "k": "no-kill", "L": "licenses", "M": "clusters",
    "m": "distribution", "N": "nodes", "n": "ntasks", "O": "overcommit", "o": "output", "p": "partition",
    "Q": "quiet", "q": "qos", "S": "core-spec", "s": "oversubscribe", "t": "time", "v": "verbose",
    "W": "wait", "w": "nodelist", "x": "exclude",
}  # fmt: skip


class TagLookupError(SubmitError):
    """SLURM could not be asked whether a job carrying a submission tag exists.

    Raised instead of answering "no such job", which would submit the job a
    second time.
    """


def _quote_value(key: str, value: str) -> str:
    r"""``value`` as sbatch reads it from a ``#SBATCH`` line.

    sbatch splits such lines at whitespace, honours quotes and reads ``\\``
    as ``\`` and ``\"`` as ``"`` (checked on SLURM 22.05), so a value with
    spaces, quotes or backslashes is written in double quotes, escaped.
    """
    if "\n" in value or "\r" in value:
        raise ResourcesNotSupportedError(f"resource {key}={value!r}: a #SBATCH value cannot contain a line break")
    if not re.search(r"[\s'\"\\]", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def slurm_time(value: Any) -> str:
    """A walltime in a format ``--time`` accepts, from any format of :func:`clusterjob.utils.time_to_seconds`.

    SLURM's own formats pass unchanged; ``days:hours:minutes:seconds`` (which
    SLURM does not know) becomes ``days-hours:minutes:seconds``.
    """
    text = str(value).strip()
    try:
        time_to_seconds(text)
    except ValueError:
        raise ResourcesNotSupportedError(
            f"resource time={value!r} is not a walltime; use minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
        ) from None
    match = _DAYS_COLONS.match(text)
    if match:
        days, hours, minutes, seconds = match.groups()
        return f"{days}-{hours}:{minutes}:{seconds}"
    return text


class SlurmBackend(ClusterjobBackend):
    """SLURM Backend (``sbatch``, ``squeue``, ``sacct``, ``scancel``).

    Attributes:
        name: name of the backend (``'slurm'``).
        extension: extension of job scripts (``'slr'``).
        prefix: prefix of every resource header line (``'#SBATCH'``).
        status_mapping: SLURM state (long name, as ``squeue %T`` prints it)
            -> :mod:`clusterjob.status` code; every status query reads states
            through it, so a site subclass may change what a state means.
        resource_replacements: common resource key -> sbatch option.
        job_vars: core environment variable -> SLURM environment variable.
    """

    name = "slurm"
    extension = "slr"
    prefix = "#SBATCH"
    commands = ("sbatch", "squeue", "sacct", "scancel")
    # Plain class attributes, as in the documented base class (a site subclass may replace them).
    status_mapping = dict(STATUS_MAPPING)
    resource_replacements = {
        "jobname": "job-name",
        "queue": "partition",
        "time": "time",
        "mem": "mem",
        "stdout": "output",
        "stderr": "error",
        "nodes": "nodes",
        "ppn": "tasks-per-node",
        "threads": "cpus-per-task",
    }
    #: sbatch's one-letter options -> their long names (``sbatch --help``, SLURM 22.05), and
    #: ``--tasks-per-node``, which sbatch reads as ``--ntasks-per-node``.
    option_aliases = {
        **{f"-{letter}": f"--{name}" for letter, name in _SHORT_OPTIONS.items()},
        "--tasks-per-node": "--ntasks-per-node",
    }
    job_vars = {
        "CLUSTERJOB_ID": "SLURM_JOB_ID",
        "CLUSTERJOB_WORKDIR": "SLURM_SUBMIT_DIR",
        "CLUSTERJOB_SUBMIT_HOST": "SLURM_SUBMIT_HOST",
        "CLUSTERJOB_NAME": "SLURM_JOB_NAME",
        "CLUSTERJOB_NODELIST": "SLURM_JOB_NODELIST",
    }

    # -- submission -------------------------------------------------------------

    def cmd_submit(self, jobscript: JobScript) -> Command:
        """``sbatch <script>``, run in the job's workdir (so ``$SLURM_SUBMIT_DIR`` is that folder)."""
        filename = jobscript.script_filename()
        if filename.startswith("-"):
            filename = "./" + filename
        return ["sbatch", filename]

    def get_job_id(self, response: str) -> str | None:
        """The ID of the line ``Submitted batch job 123`` (or, only if there is none, of a ``--parsable`` ``123[;cluster]`` line).

        Login banners and escape sequences around it are skipped; two
        different IDs give None (see :func:`~clusterjob.backends.output.find_job_id`).
        """
        return find_job_id(response, _SUBMITTED, _PARSABLE)

    def cmd_cancel(self, run: AsyncResult) -> Command:
        return ["scancel", str(run.job_id)]

    # -- resources ----------------------------------------------------------------

    def resource_headers(self, jobscript: JobScript) -> list[str]:
        """One ``#SBATCH`` line per resource, sorted by resource key.

        Common keys go through :attr:`resource_replacements`; any other key by
        the documented rule (``contiguous=True`` -> ``--contiguous``,
        ``dependency='after:1'`` -> ``--dependency=after:1``, ``F='f'`` ->
        ``-F f``), with ``_`` in a long key read as ``-`` (``mail_type`` ->
        ``--mail-type``: no sbatch option has an underscore). ``time`` is
        checked and written in a format sbatch accepts. A value with spaces is
        quoted. The submission tag (:data:`TAG_RESOURCE`) is appended to
        ``comment``. A key given with its dashes is that sbatch option
        (``-A`` -> ``-A acct``, ``--qos`` -> ``--qos=high``, see
        :meth:`~clusterjob.backends.ClusterjobBackend.read_dashed_keys`).
        """
        resources = self.read_dashed_keys(jobscript.resources)
        tag = resources.pop(TAG_RESOURCE, None)
        if tag:
            user_comment = resources.get("comment")
            resources["comment"] = f"{user_comment} {tag}" if user_comment not in (None, False, True, "") else tag
        lines = []
        for key, value in sorted(resources.items()):
            if key == "time" and value not in (None, False):
                value = slurm_time(value)
            args = self.format_resource(key, value)
            if not args:
                continue
            if len(args) == 2:  # -X value
                args = [args[0], _quote_value(key, args[1])]
            elif "=" in args[0]:
                option, _, text = args[0].partition("=")
                args = [f"{option}={_quote_value(key, text)}"]
            lines.append(f"{self.prefix} {' '.join(args)}")
        return lines

    def format_resource(self, key: str, value: Any) -> list[str]:
        """sbatch arguments for one resource (see :meth:`resource_headers`)."""
        option = self.resource_replacements.get(key)
        if option is None:
            option = key.replace("_", "-") if len(key) > 1 and not is_dashed(key) else key
        return format_option(option, value)

    def generic_option(self, key: str) -> str | None:
        """``-X`` for a one-letter key, ``--long-name`` (``_`` read as ``-``) for a longer one."""
        return f"-{key}" if len(key) == 1 else "--" + key.replace("_", "-")

    def translated_keys(self) -> frozenset[str]:
        return super().translated_keys() | {TAG_RESOURCE}

    def dependency_resources(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """``--dependency=afterok:1:2``: start once all ``job_ids`` (arrays: all their tasks) completed."""
        return {"dependency": "afterok:" + ":".join(str(j) for j in job_ids)}

    # -- status -----------------------------------------------------------------

    def cmd_status(self, run: AsyncResult, finished: bool = False) -> Command:
        """``squeue`` for a job the controller still knows; ``sacct`` (finished=True) once it left."""
        if finished:
            return queries.sacct_command([run])
        return queries.squeue_command([str(run.job_id)])

    def get_status(self, response: str, finished: bool = False) -> int | None:
        """The status in the output of :meth:`cmd_status` (None: the output does not tell)."""
        statuses = self._statuses(response, finished)
        jobs = {job_id for job_id in statuses if job_id.isdigit()}
        if len(jobs) != 1:
            return None
        return statuses[jobs.pop()]

    def cmd_status_many(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """One ``squeue`` for all ``runs``; with finished=True one ``sacct`` for those that left the queue."""
        if not runs:
            return None
        if finished:
            return queries.sacct_command(runs)
        return queries.squeue_command([str(run.job_id) for run in runs])

    def get_status_many(
        self, response: str, runs: Sequence[AsyncResult], finished: bool = False
    ) -> Mapping[str, int | None]:
        statuses = self._statuses(response, finished)
        return {str(run.job_id): statuses.get(str(run.job_id)) for run in runs}

    def _statuses(self, response: str, finished: bool) -> dict[str, int | None]:
        """Status per job ID in squeue (or, finished, sacct) output, read by :attr:`status_mapping`."""
        if finished:
            return queries.finished_statuses(response, self.status_mapping)
        return queries.queue_statuses(response, self.status_mapping)

    # -- arrays -------------------------------------------------------------------

    def cmd_task_status(self, run: AsyncResult) -> Command | None:
        """The controller's and accounting's records of every task of the array ``run``."""
        return queries.task_status_command(str(run.job_id))

    def get_task_status(self, response: str, run: AsyncResult) -> dict[str, int]:
        """Task ID (``'1'``, ``'2'``, ...) -> status, for the tasks SLURM reports."""
        return queries.task_statuses(response, self.status_mapping)

    # -- crash safety ---------------------------------------------------------------

    def tag_resources(self, tag: str) -> dict[str, Any]:
        """Carry ``tag`` in the job's comment (merged with a ``comment`` the user set)."""
        return {TAG_RESOURCE: tag}

    def cmd_find_tag(self, tag: str, *, remote: str | None = None) -> Command | None:
        return queries.find_tag_command(tag)

    def get_job_ids_for_tag(self, response: str, tag: str) -> list[str]:
        """IDs of the jobs whose comment carries ``tag``; [] only if SLURM provably has none.

        Raises:
            TagLookupError: if the controller or accounting could not be asked.
        """
        found, error, complete = queries.tag_lookup(response, tag)
        if found:
            return found
        if error or not complete:
            reason = error or f"the lookup did not finish (output: {response.strip()[-500:]!r})"
            raise TagLookupError(
                f"cannot tell whether the interrupted submission with tag {tag} reached SLURM: {reason}. "
                f"Look for a job with this comment (squeue -o '%i %k'; sacct -o JobID,Comment), "
                "then remove the cache file or submit with force=True"
            )
        return []
