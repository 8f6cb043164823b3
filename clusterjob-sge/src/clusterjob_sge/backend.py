"""The Grid Engine backend: qsub, qstat, qacct and qdel command lines and their answers.

Verified against Son of Grid Engine 8.1.9 (Debian's ``gridengine-*``
packages); the commands and output formats used here are common to the Sun,
Open, Son of and Univa/Altair Grid Engine lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    CommandResult,
    SubmissionContext,
)
from clusterjob.backends.output import find_job_id
from clusterjob.errors import ClusterjobError, SubmitError

from clusterjob_sge.parsing import (
    STATUS_MAPPING,
    AccountingRecord,
    latest_task_records,
    listed_jobs,
    listed_tasks,
    parse_qacct,
    parse_qstat_j_blocks,
    parse_qstat_xml_entries,
    qacct_status,
)
from clusterjob_sge.resources import (
    HANDLED_KEYS,
    JOB_NUMBER,
    TAG_CONTEXT,
    sge_options,
    sge_options_set_by,
)

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["SgeBackend"]

logger = logging.getLogger("clusterjob.sge")

#: ``qsub -terse`` prints ``123`` (``123.1-3:1`` for an array job).
_TERSE_ID = re.compile(r"(\d+)(?:\.\d+-\d+:\d+)?")
#: Without ``-terse`` (or from a wrapper): ``Your job 123 ("name") has been submitted``
#: (``Your job-array 123.1-3:1 ("name") has been submitted`` for an array job).
_VERBOSE_ID = re.compile(r"Your job(?:-array)? (\d+)(?:\.\S+)? \(.*\) has been submitted")
#: The ID of one task of an array job (:meth:`SgeBackend.task_job_id`): ``123.4``.
_TASK_ID = re.compile(r"(\d+)\.(\d+)")

# qacct takes one job per call: one shell runs it for each job (the numbers are
# arguments of sh, never part of the script text). Each record names its job.
_ACCOUNTING_MANY = 'for id in "$@"; do qacct -j "$id"; done'
#: What qstat -j and qacct say when they found no job, as opposed to failing
#: (then Grid Engine's communication library says ``error: commlib``).
_NO_JOBS = {False: "Following jobs do not exist", True: "not found"}


class SgeBackend(ClusterjobBackend):
    """Grid Engine (SGE, Son of Grid Engine, Open Grid Scheduler, Univa/Altair GE).

    Attributes:
        name: ``'sge'``.
        extension: ``'sge'`` (job scripts are written as ``<jobname>.sge``).
        prefix: ``'#$'``, the directive prefix qsub reads in the script.
        resource_replacements: common resource key -> qsub option or resource
            name: ``jobname`` -> ``-N``, ``queue`` -> ``-q``, ``stdout`` ->
            ``-o``, ``stderr`` -> ``-e``; ``time`` -> the ``-l`` resource
            ``h_rt`` and ``mem`` -> the ``-l`` resource ``h_vmem`` (per slot).
            A site that limits memory with another complex (``h_rss``,
            ``mem_free``) changes ``resource_replacements['mem']``.
        job_vars: core variable -> Grid Engine variable: ``CLUSTERJOB_ID`` ->
            ``JOB_ID``, ``CLUSTERJOB_WORKDIR`` -> ``SGE_O_WORKDIR``,
            ``CLUSTERJOB_SUBMIT_HOST`` -> ``SGE_O_HOST``, ``CLUSTERJOB_NAME``
            -> ``JOB_NAME``, ``CLUSTERJOB_NODELIST`` -> ``HOSTNAME`` (set by
            the execution daemon to the job's master host; for a job spread
            over several hosts the full list is only in the file
            ``$PE_HOSTFILE``).
        status_mapping: every qstat(1) job state documented in sge_status(5)
            -> clusterjob status code (states not listed are classified by
            their letters, see :func:`clusterjob_sge.parsing.state_to_status`).
        default_pe: the parallel environment for a job with ``ppn*threads >
            1`` slots on one host; it must have ``allocation_rule $pe_slots``
            (``qconf -sp smp``). A job may name another with the ``pe`` resource.
    """

    name = "sge"
    array_option: str | None = "-t"
    array_task_variable: ClassVar[str | None] = "SGE_TASK_ID"
    #: ``max_aj_tasks`` of sge_conf(5), 75000 by default (``qconf -sconf | grep max_aj_tasks``).
    max_array_size: ClassVar[int] = 75000
    extension = "sge"
    prefix = "#$"
    commands = ("qsub", "qstat", "qacct", "qdel")
    resource_replacements: dict[str, str] = {
        "jobname": "N",
        "queue": "q",
        "stdout": "o",
        "stderr": "e",
        "time": "h_rt",
        "mem": "h_vmem",
    }
    job_vars: dict[str, str] = {
        "CLUSTERJOB_ID": "JOB_ID",
        "CLUSTERJOB_WORKDIR": "SGE_O_WORKDIR",
        "CLUSTERJOB_SUBMIT_HOST": "SGE_O_HOST",
        "CLUSTERJOB_NAME": "JOB_NAME",
        "CLUSTERJOB_NODELIST": "HOSTNAME",
    }
    status_mapping: dict[str, int] = dict(STATUS_MAPPING)
    default_pe: str | None = "smp"
    #: A value with blanks is put in double quotes (qsub strips them); qsub reads no escapes
    #: inside them, so one that also holds a double quote cannot be written.
    plain_value = re.compile(r"\S+")
    quote_escapes = False

    # -- submission -----------------------------------------------------------

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """``#$`` lines for the job's resources (see the README for every rule).

        The tag becomes the account string and job context, the jobs of
        ``after=`` a ``-hold_jid`` list (see :func:`~clusterjob_sge.resources.sge_options`).
        Grid Engine releases such a hold when a job ends *in any way*, failure
        included; only a job that exits with code 100 (and stays in error
        state) keeps its dependents waiting. This is weaker than "after they
        succeeded"; see the README.

        Raises:
            ResourcesNotSupportedError: naming the key Grid Engine cannot
                express (e.g. ``nodes=2`` without a suitable ``pe``).
        """
        options = sge_options(self, resources, context, jobscript.shell)
        return [f"{self.prefix} {' '.join(args)}" for args in options]

    def generic_option(self, key: str) -> str | None:
        """``-key``, whatever its length: qsub's options all take one dash."""
        return f"-{key}"

    def translated_keys(self) -> frozenset[str]:
        return super().translated_keys() | HANDLED_KEYS

    def options_set_by(self, key: str, value: Any) -> set[str]:
        """See :func:`clusterjob_sge.resources.sge_options_set_by` (``-l`` resources, ``-pe``)."""
        options = sge_options_set_by(self, key, value)
        return super().options_set_by(key, value) if options is None else options

    def cmd_submit(self, jobscript: JobScript) -> list[str]:
        """``qsub -terse <script>``; every option is in the script's ``#$`` lines.

        Run in the job's folder (rootdir/workdir), where the script was written.
        """
        filename = jobscript.filename or jobscript.script_filename()
        return ["qsub", "-terse", filename]

    def get_job_id(self, response: str) -> str | None:
        """The job number from qsub's output (an array job's number without its task range).

        The ``Your job 123 (...) has been submitted`` line if there is one,
        else the ``-terse`` line; login banners, blank lines and escape
        sequences are skipped, and two different numbers give None (see
        :func:`~clusterjob.backends.output.find_job_id`).
        """
        return find_job_id(response, _VERBOSE_ID, _TERSE_ID)

    def cmd_cancel(self, run: AsyncResult) -> list[str]:
        """``qdel <job number>``, or ``qdel 123.4`` for one task of an array (that task only)."""
        task = _TASK_ID.fullmatch(str(run.job_id or "").strip())
        return ["qdel", task.group(0) if task else self._job_number(run.job_id)]

    def task_job_id(self, array_id: str, task: int) -> str:
        """``123.4``: how qstat, qacct and qdel name task 4 of array job 123."""
        return f"{self._job_number(array_id)}.{task}"

    # -- status ---------------------------------------------------------------

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """The ``qstat -xml`` listing of queued jobs; ``qacct -j`` for each job that left the queue.

        ``qstat -j`` does not show a job's state, so the state comes from the
        listing of all jobs.
        """
        if not finished:
            return ["qstat", "-xml"]
        numbers = dict.fromkeys(self._job_number(run.job_id) for run in runs)
        return ["sh", "-c", _ACCOUNTING_MANY, "sh", *numbers]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status (or None) for every job the result of :meth:`status_command` reports.

        Listing: the job's state (None if it is not listed: it has left the
        queue, and clusterjob asks qacct; every job None if qstat failed). A
        task ID (``123.4``) gets the state of the entry that lists the task:
        qstat shows a running task on its own line and pending ones together
        (``1-4:1``, ``3,4``).
        qacct: COMPLETED, FAILED or CANCELLED from ``failed`` and
        ``exit_status`` (None while the record is not written yet, "job id N
        not found" on stderr, which takes 1-3 s, or for a job deleted before
        it ran: such a job has no record at all); of the task's own record for
        a task ID.
        """
        if finished:
            records = parse_qacct(result.stdout)
            reported = {
                number: qacct_status(records, number) for number in {r.jobnumber for r in records}
            }
            return {
                **reported,
                **{j: qacct_status(records, *self._number_and_task(j)) for j in job_ids},
            }
        entries = (
            parse_qstat_xml_entries(result.stdout, self.status_mapping)
            if result.returncode == 0
            else None
        )
        if entries is None:
            return dict.fromkeys(job_ids)
        listing = listed_jobs(entries)
        tasks = listed_tasks(entries) if any(_TASK_ID.fullmatch(j) for j in job_ids) else {}
        asked = {}
        for job_id in job_ids:
            number, task = self._number_and_task(job_id)
            asked[job_id] = listing.get(number) if task is None else tasks.get((number, task))
        return {**listing, **asked}

    def parse_exit_codes(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int]:
        """The job script's exit status from qacct, for a job or task that ended on its own.

        Only where qacct's ``failed`` is 0: otherwise Grid Engine ended the
        job (a limit, qdel: ``exit_status`` is then the signal's 128+N, not the
        script's). A whole array job (its number, several task records) has no
        one exit status here; its tasks' markers give it.
        """
        if not finished:
            return {}
        records = parse_qacct(result.stdout)
        codes = {}
        for job_id in job_ids:
            counted = latest_task_records(records, *self._number_and_task(job_id))
            if len(counted) == 1 and _ended_on_its_own(counted[0]):
                codes[job_id] = counted[0].exit_status
        return codes

    # -- crash safety: the tag rides as account string (-A, kept in qacct) and job context (-ac) --

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """``qstat -j '*'`` (queued jobs: their account and context), or with ``finished``
        ``qacct -A <tag>`` (ended jobs)."""
        return ["qacct", "-A", tag, "-j", "*"] if finished else ["qstat", "-j", "*"]

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str] | None:
        """Job numbers carrying ``tag``; None: none queued (ask qacct); []: qacct has none either.

        Raises:
            SubmitError: when a query failed, so that the absence of the
                tag is not proven (the caller must not submit again).
        """
        name = "qacct" if finished else "qstat"
        if result.returncode != 0:
            text = f"{result.stdout}\n{result.stderr}"
            if _NO_JOBS[finished] not in text or "error: commlib" in text:
                raise _tag_lookup_failed(
                    tag, f"{name} exited with {result.returncode}: {text.strip()[-500:]}"
                )
            return [] if finished else None
        if finished:
            found = [r.jobnumber for r in parse_qacct(result.stdout) if r.account == tag]
        else:
            found = [
                block["job_number"]
                for block in parse_qstat_j_blocks(result.stdout)
                if block.get("account") == tag
                or f"{TAG_CONTEXT}={tag}"
                in [item.strip() for item in block.get("context", "").split(",")]
            ]
        return list(dict.fromkeys(found)) if found or finished else None

    # -- helpers ----------------------------------------------------------------

    def _number_and_task(self, job_id: str) -> tuple[str, str | None]:
        """``("123", "4")`` for the task ID ``123.4``; ``("123", None)`` for a job number."""
        task = _TASK_ID.fullmatch(job_id.strip())
        if task:
            return task.group(1), task.group(2)
        return self._job_number(job_id), None

    def _job_number(self, job_id: Any) -> str:
        """The numeric job number of a job ID (``123`` or ``123.1-3:1``)."""
        match = JOB_NUMBER.match(str(job_id or "").strip())
        if not match:
            raise ClusterjobError(f"{job_id!r} is not a Grid Engine job number")
        return match.group(1)


def _ended_on_its_own(record: AccountingRecord) -> bool:
    """Whether the record's ``exit_status`` is the job script's (Grid Engine did not end it)."""
    return record.failed == 0 and record.status is not None


def _tag_lookup_failed(tag: str, reason: str) -> SubmitError:
    """The error of a tag lookup that cannot prove whether a job carries ``tag``."""
    return SubmitError(
        f"cannot tell whether a Grid Engine job carries tag {tag!r}: {reason}. "
        f"Look for a job with this account or context (qstat -j '*'; qacct -A {tag} -j '*'), "
        "then remove the cache file or submit with force=True"
    )
