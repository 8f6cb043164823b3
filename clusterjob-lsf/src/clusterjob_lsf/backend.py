"""The LSF backend: ``bsub < script``, ``bjobs -o``, ``bkill``."""

from __future__ import annotations

import functools
import logging
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    CommandResult,
    ResourcesNotSupportedError,
    SubmissionContext,
    format_option,
    is_dashed,
    positive_int,
)
from clusterjob.backends.output import find_job_id, output_lines
from clusterjob.errors import SubmitError
from clusterjob.rendering import cannot_express, megabytes, merged_value
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob.walltime import Walltime

from clusterjob_lsf.bjobs import (
    STATUS_FORMAT,
    TAG_FORMAT,
    BjobsRecord,
    array_id,
    killed_by_user,
    parse_bjobs,
    parse_job_id,
)

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["LsfBackend"]

logger = logging.getLogger("clusterjob.lsf")

#: What a ``bsub`` option name may be.
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

#: bsub's line ``Job <123> is submitted to [default] queue <normal>.`` (the tail varies with the
#: options).
_SUBMITTED = re.compile(r"Job <(\d+)> is submitted\b.*")
_NO_JOBS = re.compile(r"No (?:unfinished |matching )?job found", re.IGNORECASE)
#: What LSF refuses in the name of a job array (IBM Spectrum LSF 10.1, "Job arrays": a-z A-Z
#: 0-9 . - _), and the most characters of the whole ``name[index_list]`` specification.
_NOT_IN_ARRAY_NAME = re.compile(r"[^A-Za-z0-9._-]")
_MAX_ARRAY_SPEC = 255


class LsfBackend(ClusterjobBackend):
    """LSF backend.

    Attributes:
        name: ``'lsf'``.
        extension: ``'lsf'``.
        prefix: ``'#BSUB'``.
        status_mapping: LSF job states (``bjobs`` STAT) -> clusterjob status
            codes, for every state IBM documents. EXIT is refined: a job
            killed by its owner or an administrator is CANCELLED.
        resource_replacements: common resource keys that are single ``bsub``
            options (``jobname`` -> ``-J``, ``time`` -> ``-W`` in minutes …).
            ``nodes``, ``ppn``, ``threads`` and ``mem`` become ``-n`` and ``-R``.
        job_vars: core variables -> LSF variables.
    """

    name = "lsf"
    array_task_variable: ClassVar[str | None] = "LSB_JOBINDEX"
    #: MAX_JOB_ARRAY_SIZE of lsb.params: 1000 by default (bsub -J), also the largest index.
    max_array_size: ClassVar[int] = 1000
    #: ``bsub -o`` without ``-e``: the job's stderr goes to the output file too (bsub -o).
    stderr_follows_stdout: ClassVar[bool] = True
    extension = "lsf"
    prefix = "#BSUB"
    commands = ("bsub", "bjobs", "bkill")
    #: ``bsub`` reads embedded options like a command line: values with spaces, brackets or
    #: shell characters are double-quoted, as in IBM's examples (``#BSUB -R "span[ptile=4]"``).
    plain_value = re.compile(r"[A-Za-z0-9_.,:=/@%+\-]+")
    status_mapping = {
        "PEND": PENDING,  # waiting to be scheduled
        "PSUSP": PENDING,  # suspended by its owner or an administrator while pending
        "WAIT": PENDING,  # chunk job member waiting to run
        "PROV": PENDING,  # dispatched to a host that is being provisioned
        "RUN": RUNNING,  # running
        "USUSP": RUNNING,  # suspended by its owner or an administrator while running
        "SSUSP": RUNNING,  # suspended by LSF (load, run windows) while running
        "UNKWN": RUNNING,  # mbatchd lost contact with the execution host; the job was running
        "ZOMBI": RUNNING,  # being killed on an unreachable host; becomes EXIT later
        "DONE": COMPLETED,  # exited with status 0
        "EXIT": FAILED,  # exited non-zero or was killed (bkill: CANCELLED, see get_status)
    }
    resource_replacements = {
        "jobname": "J",
        "queue": "q",
        "stdout": "o",
        "stderr": "e",
        "time": "W",
    }
    job_vars = {
        "CLUSTERJOB_ID": "LSB_JOBID",
        "CLUSTERJOB_WORKDIR": "LS_SUBCWD",
        "CLUSTERJOB_SUBMIT_HOST": "LSB_SUB_HOST",
        "CLUSTERJOB_NAME": "LSB_JOBNAME",
        "CLUSTERJOB_NODELIST": "LSB_HOSTS",
    }

    # -- submission -----------------------------------------------------------

    def cmd_submit(self, jobscript: JobScript) -> Command:
        """``bsub < <script>``: a string, since the script is piped into ``bsub``.

        Piping makes ``bsub`` read the ``#BSUB`` lines (it does not when the
        script is an argument). The file name is quoted with :func:`shlex.quote`.
        """
        return f"bsub < {shlex.quote(jobscript.filename or jobscript.script_filename())}"

    def get_job_id(self, response: str) -> str | None:
        """The ID of the line ``Job <123> is submitted to queue <normal>.``

        Site banners (``[I] possible CPU types = ...``), blank lines and
        escape sequences around it are skipped; two different IDs give None
        (see :func:`~clusterjob.backends.output.find_job_id`).
        """
        return find_job_id(response, _SUBMITTED)

    def cmd_cancel(self, run: AsyncResult) -> Command:
        """``bkill <id>``; ``bkill 1240[3]`` kills that element of the array only."""
        return ["bkill", str(run.job_id)]

    # -- arrays (``clusterjob.submit_all``) ---------------------------------------

    def array_resources(self, resources: dict[str, Any], first: int, last: int) -> dict[str, Any]:
        """The job name becomes the array's ``name[first-last]`` (``#BSUB -J "name[1-10]"``).

        LSF has no array option: the index list is part of the name. Characters
        an array name may not hold become ``_``, and the name is shortened so that
        the whole specification keeps to LSF's 255 characters.
        """
        indices = f"[{first}-{last}]"
        name = _NOT_IN_ARRAY_NAME.sub("_", str(resources.get("jobname") or "array"))
        resources["jobname"] = name[: _MAX_ARRAY_SPEC - len(indices)] + indices
        return resources

    def task_job_id(self, array_id: str, task: int) -> str:
        """``1240[3]``: how bjobs and bkill name element 3 of job array 1240."""
        return f"{array_id}[{task}]"

    # -- status ---------------------------------------------------------------

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """``bjobs -a -noheader -o <STATUS_FORMAT> <id>...``: ID, state, exit code, reason, name.

        The same command serves running and finished jobs (so there is no
        ``finished`` query): ``-a`` includes jobs that finished recently
        (until mbatchd cleans them, after ``CLEAN_PERIOD``, one hour by default).
        Elements of an array (``1240[3]``) are asked for by the array's ID,
        once: bjobs then lists each element.
        """
        if finished:
            return None
        job_ids = dict.fromkeys(array_id(str(run.job_id)) for run in runs)
        return ["bjobs", "-a", "-noheader", "-o", STATUS_FORMAT, *job_ids]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status of each listed job; None for each of ``job_ids`` bjobs did not list.

        ``bjobs`` reports the jobs it does not know on stderr (``Job <1236>
        is not found``) and exits non-zero, and still lists the others: the
        listed records count whatever the exit code. An array's own ID gets
        one status for all its elements (:func:`_array_status`).
        """
        listed = {
            job_id: self.record_status(record)
            for job_id, record in parse_bjobs(result.stdout).items()
        }
        elements: dict[str, list[int | None]] = {}
        for job_id, status in listed.items():
            if job_id != array_id(job_id):
                elements.setdefault(array_id(job_id), []).append(status)
        arrays = {job_id: _array_status(statuses) for job_id, statuses in elements.items()}
        return {**dict.fromkeys(job_ids), **arrays, **listed}

    def record_status(self, record: BjobsRecord) -> int | None:
        """Status code of one ``bjobs`` record: ``status_mapping``, EXIT refined."""
        code = self.status_mapping.get(record.stat)
        if code is None:
            logger.warning(
                "LSF job %s has state %r, which clusterjob does not know",
                record.job_id,
                record.stat,
            )
            return None
        if code == FAILED and killed_by_user(record):
            return CANCELLED
        return code

    # -- resources -------------------------------------------------------------

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """``#BSUB`` lines for the job's resources.

        ``jobname`` -> ``-J``, ``queue`` -> ``-q``, ``time`` -> ``-W <minutes>``
        (rounded up), ``nodes``/``ppn``/``threads`` -> ``-n <nodes*ppn*threads>``
        and ``-R "span[ptile=<ppn*threads>]"``, ``mem`` (MB per node) -> ``-R
        "rusage[mem=<mem>]"`` (LSF reserves rusage memory per host by default;
        the unit is the cluster's LSF_UNIT_FOR_LIMITS, MB by default),
        ``stdout``/``stderr`` -> ``-o``/``-e``, the jobs of ``after=`` ->
        ``-w "done(1) && done(2)"`` (and-ed with a ``w`` resource), the
        submission tag -> ``-Jd`` (appended to a ``Jd`` resource). Any other key is the ``bsub``
        option ``-key value`` (``-key`` for True), whatever its length, since
        ``bsub`` has only single-dash options. False/None are left out. A key
        given with its dashes is that ``bsub`` option (``-P = proj`` -> ``-P
        proj``, see :meth:`~clusterjob.backends.ClusterjobBackend.read_dashed_keys`).
        """
        resources = {k: v for k, v in resources.items() if v is not None and v is not False}
        lines: list[str] = []
        repl = self.resource_replacements

        def add(*words: str) -> None:
            lines.append(" ".join([self.prefix, *words]))

        for key in ("jobname", "queue"):
            if key in resources:
                add(f"-{repl[key]}", self.quote(key, resources.pop(key)))
        if "time" in resources:
            add(f"-{repl['time']}", str(Walltime.read(self.name, resources.pop("time")).minutes()))
        slots, requirements = self._layout(resources)
        if slots is not None:
            add("-n", str(slots))
        if requirements:
            add("-R", self.quote("R", " ".join(requirements), force=True))
        for key in ("stdout", "stderr"):
            if key in resources:
                add(f"-{repl[key]}", self.quote(key, resources.pop(key)))
        condition = f"({resources.pop('w')})" if "w" in resources else None
        condition = merged_value(condition, [f"done({job_id})" for job_id in context.after], " && ")
        if condition is not None:
            add("-w", self.quote("w", condition, force=True))
        description = merged_value(
            resources.pop("Jd", None), [context.tag] if context.tag else [], " "
        )
        if description is not None:
            add("-Jd", self.quote("Jd", description))
        for key, value in sorted(resources.items()):
            if is_dashed(key):
                add(*format_option(key, value, quote=functools.partial(self.quote, key)))
            elif not _KEY.fullmatch(key):
                raise cannot_express(
                    self.name,
                    key,
                    value,
                    "a bsub option name must start with a letter and contain only letters, digits "
                    "and '_'",
                )
            else:
                add(f"-{key}", *([] if value is True else [self.quote(key, value)]))
        return lines

    def generic_option(self, key: str) -> str | None:
        """``-key``, whatever its length: bsub's options all take one dash."""
        return f"-{key}"

    def options_set_by(self, key: str, value: Any) -> set[str]:
        """nodes/ppn/threads set ``-n``; the rest as the base class says (``-R`` sections merge)."""
        if key in ("nodes", "ppn", "threads"):
            return {"-n"}
        return super().options_set_by(key, value)

    def _layout(self, resources: dict[str, Any]) -> tuple[int | None, list[str]]:
        """``-n`` slots and ``-R`` sections for nodes/ppn/threads/mem (popped) and a user ``R``."""
        user = str(resources.pop("R")).strip() if "R" in resources else ""
        counts = {key: resources.pop(key, None) for key in ("nodes", "ppn", "threads")}
        mem = resources.pop("mem", None)
        requirements = [user] if user else []
        slots = None
        if any(value is not None for value in counts.values()):
            nodes, ppn, threads = (
                1 if value is None else positive_int(self.name, key, value)
                for key, value in counts.items()
            )
            if "span[" in user:
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express nodes/ppn/threads together with a span "
                    f"section in R={user!r}: give either"
                )
            slots = nodes * ppn * threads
            requirements.append(f"span[ptile={ppn * threads}]")
        if mem is not None:
            per_node = megabytes(self.name, mem)
            if "rusage[" in user:
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express mem={mem!r} together with an rusage "
                    f"section in R={user!r}: put mem into that rusage section"
                )
            requirements.append(f"rusage[mem={per_node}]")
        return slots, requirements

    # -- crash-recovery tags (the tag is the job description, bsub -Jd) ----------

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """The user's recent jobs and their descriptions (one lookup: ``-a`` lists ended ones)."""
        return None if finished else ["bjobs", "-a", "-noheader", "-o", TAG_FORMAT]

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str]:
        """IDs of the jobs whose description contains ``tag`` as a word.

        A job array is listed once per element, all with the array's
        description: its ID comes once, without an index (``1240``, also where
        ``LSB_BJOBS_DISPLAY_ENH=Y`` prints ``1240[3]``).

        Raises:
            SubmitError: if the result is neither a job listing nor LSF's
                "No job found" (on stderr), so that no job is provably absent.
        """
        listed = False
        found = []
        for line in output_lines(result.stdout):  # a window title glued to a line must not hide it
            job_id, sep, description = line.partition("|")
            parsed = parse_job_id(job_id)
            if sep and parsed:
                listed = True
                if tag in description.split():
                    found.append(parsed[0])
        if found or listed or _NO_JOBS.search(result.stderr) or _NO_JOBS.search(result.stdout):
            return list(dict.fromkeys(found))
        raise SubmitError(
            f"cannot tell whether the interrupted submission tagged {tag} reached LSF: "
            f"bjobs exited with {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-300:]!r}. "
            "Check with bjobs, then submit again with force=True"
        )


def _array_status(statuses: list[int | None]) -> int | None:
    """One status for the elements of a job array: running or pending while any is; once all
    ended, FAILED if any failed, else CANCELLED if any was killed, else COMPLETED."""
    for status in (RUNNING, PENDING, None, FAILED, CANCELLED):
        if status in statuses:
            return status
    return COMPLETED
