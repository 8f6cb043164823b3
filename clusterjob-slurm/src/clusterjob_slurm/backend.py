"""The :class:`SlurmBackend`: job scripts for ``sbatch``, status from ``squeue`` and ``sacct``.

How a status is found (one poll cycle, any number of jobs):

1. ``squeue --states=all -j ID,ID,...`` asks the controller, which knows
   every job until ``MinJobAge`` (default 300 s) after it ended, including
   its final state. A job missing from the answer has left the queue.
2. For those, ``sacct`` (accounting) gives the final state. If accounting
   storage is disabled or down, ``sacct -c`` (the job completion log) is
   asked instead. A job neither knows is reported as unknown (None): core
   keeps its last status and says so; it is never taken as COMPLETED.

A job that ``submit_all`` packed into an array is known by its task's ID
(``123_4``, :meth:`SlurmBackend.task_job_id`) to all three commands and to
``scancel``, which then cancels that task alone. Both queries print pending
tasks folded into one record (``123_[4-9,12]``), which counts for each task.
A task cancelled while still folded leaves no record at all (SLURM 22.05): it
stays unknown unless its ``cancel()`` went through clusterjob, which records
CANCELLED.

See :mod:`clusterjob_slurm.states` for the state mapping and how arrays are
aggregated, :mod:`clusterjob_slurm.queries` for the exact commands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    CommandResult,
    ResourcesNotSupportedError,
    SubmissionContext,
    format_option,
    is_dashed,
)
from clusterjob.backends.output import find_job_id
from clusterjob.errors import SubmitError
from clusterjob.rendering import merged_value
from clusterjob.walltime import Walltime

from clusterjob_slurm import queries
from clusterjob_slurm.states import STATUS_MAPPING

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["SlurmBackend", "TagLookupError"]

logger = logging.getLogger("clusterjob.slurm")

#: What sbatch prints, and (``--parsable``, e.g. from a site's wrapper) ``123`` or ``123;cluster``.
_SUBMITTED = re.compile(r"Submitted batch job (\d+)(?: on cluster \S+)?")
_PARSABLE = re.compile(r"(\d+)(?:;\S+)?")
#: sbatch's one-letter options and their long names.
_SHORT_OPTIONS = {
    "A": "account", "a": "array", "B": "extra-node-info", "b": "begin", "C": "constraint",
    "c": "cpus-per-task", "D": "chdir", "d": "dependency", "e": "error", "F": "nodefile",
    "G": "gpus", "H": "hold", "i": "input", "J": "job-name", "k": "no-kill", "L": "licenses",
    "M": "clusters", "m": "distribution", "N": "nodes", "n": "ntasks", "O": "overcommit",
    "o": "output", "p": "partition", "Q": "quiet", "q": "qos", "S": "core-spec",
    "s": "oversubscribe", "t": "time", "v": "verbose", "W": "wait", "w": "nodelist",
    "x": "exclude",
}  # fmt: skip


class TagLookupError(SubmitError):
    """SLURM could not be asked whether a job carrying a submission tag exists.

    Raised instead of answering "no such job", which would submit the job a
    second time.
    """


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
    array_option: str | None = "--array"
    array_task_variable = "SLURM_ARRAY_TASK_ID"
    #: ``MaxArraySize`` defaults to 1001 (slurm.conf(5)): task indices 0 to 1000, so packed
    #: arrays, whose tasks start at 1, have at most 1000.
    max_array_size = 1000
    #: sbatch writes stderr into the ``--output`` file unless ``--error`` is given.
    stderr_follows_stdout = True
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
        """``sbatch <script>``, run in the job's workdir (``$SLURM_SUBMIT_DIR`` is that folder)."""
        filename = jobscript.script_filename()
        if filename.startswith("-"):
            filename = "./" + filename
        return ["sbatch", filename]

    def get_job_id(self, response: str) -> str | None:
        """The ID of the line ``Submitted batch job 123`` (or, only if there is none, of a
        ``--parsable`` line ``123[;cluster]``).

        Login banners and escape sequences around it are skipped; two
        different IDs give None (see :func:`~clusterjob.backends.output.find_job_id`).
        """
        return find_job_id(response, _SUBMITTED, _PARSABLE)

    def cmd_cancel(self, run: AsyncResult) -> Command:
        """``scancel ID``; for a task ID (``123_4``) SLURM cancels that task only."""
        return ["scancel", str(run.job_id)]

    # -- resources ----------------------------------------------------------------

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """One ``#SBATCH`` line per resource, sorted by resource key.

        Common keys go through :attr:`resource_replacements`; any other key by
        the documented rule (``contiguous=True`` -> ``--contiguous``,
        ``dependency='after:1'`` -> ``--dependency=after:1``, ``F='f'`` ->
        ``-F f``), with ``_`` in a long key read as ``-`` (``mail_type`` ->
        ``--mail-type``: no sbatch option has an underscore). ``time`` is
        checked and written in a format sbatch accepts. A value with spaces is
        quoted. The submission tag is appended to the job's comment, and the
        jobs of ``after=`` to its dependency list (``afterok:1:2``), keeping
        what the user set in either. A key given with its dashes is that
        sbatch option (``-A`` -> ``-A acct``, ``--qos`` -> ``--qos=high``, see
        :meth:`~clusterjob.backends.ClusterjobBackend.read_dashed_keys`).
        """
        if context.tag:
            self._add_to_option(resources, "--comment", context.tag, " ")
        if context.after:
            self._add_to_option(
                resources, "--dependency", "afterok:" + ":".join(context.after), ","
            )
        lines = []
        for key, value in sorted(resources.items()):
            if key == "time" and value is not None and value is not False:
                value = Walltime.read(self.name, value).days_with_dash()
            args = self.format_resource(key, value)
            if args:
                lines.append(f"{self.prefix} {' '.join(args)}")
        return lines

    def _add_to_option(
        self, resources: dict[str, Any], option: str, added: str, separator: str
    ) -> None:
        """Append ``added`` to the resource that sets ``option`` (the user's ``comment``, ``-d``,
        ...), or set it.

        Raises:
            ResourcesNotSupportedError: for a dependency list joined by ``?``
                (any one of): sbatch takes one kind of separator per list, and
                the jobs of ``after=`` must all have completed.
        """
        key = self.key_setting(resources, option) or option.lstrip("-")
        given = resources.get(key)
        if separator == "," and "?" in str(given or ""):
            raise ResourcesNotSupportedError(
                f"backend {self.name!r} cannot express submit(after=...) together with resource "
                f"{key}={given!r}: sbatch joins a dependency list with ',' (all) or '?' (any one), "
                "never both; write the whole condition in that resource instead of using after="
            )
        resources[key] = merged_value(given, [added], separator)

    def format_resource(self, key: str, value: Any) -> list[str]:
        """sbatch arguments for one resource, its value quoted (see :meth:`render_headers`)."""
        option = self.resource_replacements.get(key)
        if option is None:
            option = key.replace("_", "-") if len(key) > 1 and not is_dashed(key) else key
        return format_option(option, value, quote=lambda text: self.quote(key, text))

    def generic_option(self, key: str) -> str | None:
        """``-X`` for a one-letter key, ``--long-name`` (``_`` read as ``-``) for a longer one."""
        return f"-{key}" if len(key) == 1 else "--" + key.replace("_", "-")

    # -- status -----------------------------------------------------------------

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """One ``squeue`` for all ``runs``; with finished=True one ``sacct`` for those that left
        the queue."""
        if finished:
            return queries.sacct_command(runs)
        return queries.squeue_command([str(run.job_id) for run in runs])

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Status per job ID (and of every other job the output reports), by :attr:`status_mapping`.

        An array task asked about by its ID (``123_4``, see :meth:`task_job_id`)
        gets its own record's status, or that of the folded record of pending
        tasks that holds it (``123_[2-5,7]``). A failed query tells nothing:
        ``squeue`` fails for a lone purged ID (the job left the queue: ask
        ``sacct``), ``sacct`` when neither accounting nor the job completion
        log answers.
        """
        statuses: dict[str, int | None] = dict.fromkeys(job_ids)
        if result.returncode != 0:
            return statuses
        if finished:
            found = queries.finished_statuses(result, self.status_mapping)
        else:
            found = queries.queue_statuses(result.stdout, self.status_mapping)
        statuses.update(
            (job_id, status)
            for job_id, status in found.items()
            if job_id in statuses or job_id.isdigit()
        )
        return statuses

    def parse_exit_codes(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int]:
        """Exit status of the jobs and tasks that accounting says their script ended itself.

        Only ``sacct`` (``finished``) prints it: ExitCode ``3:0`` of a FAILED or
        COMPLETED record is 3. A job killed (signal, walltime, cancel) is left out.
        """
        if not finished or result.returncode != 0:
            return {}
        codes = queries.exit_codes(result.stdout)
        return {job_id: codes[job_id] for job_id in job_ids if job_id in codes}

    # -- arrays -------------------------------------------------------------------

    def task_job_id(self, array_id: str, task: int) -> str:
        """``123_4``: the ID squeue, sacct and scancel know task 4 of array 123 by."""
        return f"{array_id}_{task}"

    def cmd_task_status(self, run: AsyncResult) -> Command | None:
        """The controller's and accounting's records of every task of the array ``run``."""
        return queries.task_status_command(str(run.job_id))

    def get_task_status(self, response: str, run: AsyncResult) -> dict[str, int]:
        """Task ID (``'1'``, ``'2'``, ...) -> status, for the tasks SLURM reports."""
        return queries.task_statuses(response, self.status_mapping)

    # -- crash safety ---------------------------------------------------------------

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """The user's jobs and their comments: in the controller, then (``finished``) accounting."""
        return queries.accounting_tag_command() if finished else queries.queue_tag_command()

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str] | None:
        """IDs of the jobs whose comment carries ``tag``; None: not in the queue, ask accounting.

        [] only when accounting, which stores job comments, has none either.

        Raises:
            TagLookupError: if the controller or accounting could not be asked,
                or accounting does not store job comments.
        """
        found = queries.tag_hits(result.stdout, tag)
        if result.returncode != 0:
            what = "scontrol show config or sacct" if finished else "squeue"
            self._cannot_look_up(
                tag, f"{what} exited with {result.returncode}: {result.stderr.strip()[-500:]}"
            )
        if found or not finished:
            return found or None
        if not queries.accounting_stores_comments(result.stdout):
            self._cannot_look_up(
                tag,
                "accounting does not store job comments (needs AccountingStoreFlags=job_comment), "
                "so a job that left the queue cannot be found by its tag",
            )
        return []

    @staticmethod
    def _cannot_look_up(tag: str, reason: str) -> NoReturn:
        raise TagLookupError(
            f"cannot tell whether the interrupted submission with tag {tag} reached SLURM: "
            f"{reason}. Look for a job with this comment "
            "(squeue -o '%i %k'; sacct -o JobID,Comment), "
            "then remove the cache file or submit with force=True"
        )
