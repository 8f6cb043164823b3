"""The LSF backend: ``bsub < script``, ``bjobs -o``, ``bkill``."""

from __future__ import annotations

import functools
import logging
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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

from clusterjob_lsf.bjobs import STATUS_FORMAT, TAG_FORMAT, BjobsRecord, killed_by_user, parse_bjobs

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
        """``bkill <id>``."""
        return ["bkill", str(run.job_id)]

    # -- status ---------------------------------------------------------------

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """``bjobs -a -noheader -o "jobid stat exit_code exit_reason delimiter='|'" <id>...``.

        The same command serves running and finished jobs (so there is no
        ``finished`` query): ``-a`` includes jobs that finished recently
        (until mbatchd cleans them, after ``CLEAN_PERIOD``, one hour by default).
        """
        if finished:
            return None
        return ["bjobs", "-a", "-noheader", "-o", STATUS_FORMAT, *(str(run.job_id) for run in runs)]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status of each listed job; None for each of ``job_ids`` bjobs did not list.

        ``bjobs`` reports the jobs it does not know on stderr (``Job <1236>
        is not found``) and exits non-zero, and still lists the others: the
        listed records count whatever the exit code.
        """
        listed = {
            job_id: self.record_status(record)
            for job_id, record in parse_bjobs(result.stdout).items()
        }
        return {**dict.fromkeys(job_ids), **listed}

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

        Raises:
            SubmitError: if the result is neither a job listing nor LSF's
                "No job found" (on stderr), so that no job is provably absent.
        """
        listed = False
        found = []
        for line in output_lines(result.stdout):  # a window title glued to a line must not hide it
            job_id, sep, description = line.partition("|")
            if sep and job_id.strip().isdigit():
                listed = True
                if tag in description.split():
                    found.append(job_id.strip())
        if found or listed or _NO_JOBS.search(result.stderr) or _NO_JOBS.search(result.stdout):
            return found
        raise SubmitError(
            f"cannot tell whether the interrupted submission tagged {tag} reached LSF: "
            f"bjobs exited with {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-300:]!r}. "
            "Check with bjobs, then submit again with force=True"
        )
