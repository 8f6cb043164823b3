"""The Grid Engine backend: qsub, qstat, qacct and qdel command lines and their answers.

Verified against Son of Grid Engine 8.1.9 (Debian's ``gridengine-*``
packages); the commands and output formats used here are common to the Sun,
Open, Son of and Univa/Altair Grid Engine lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from clusterjob.backends import ClusterjobBackend, ResourcesNotSupportedError
from clusterjob.backends.output import find_job_id
from clusterjob.errors import ClusterjobError, SubmitError

from clusterjob_sge.parsing import (
    MARKER,
    STATUS_MAPPING,
    parse_qacct,
    parse_qstat_j_blocks,
    parse_qstat_xml,
    qacct_status,
    split_marked_sections,
)
from clusterjob_sge.resources import (
    AFTER_KEY,
    HANDLED_KEYS,
    TAG_CONTEXT,
    TAG_KEY,
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
_JOB_NUMBER = re.compile(r"^(\d+)(?:\.[\d:,-]+)?$")

# The status query for one job prints the job's number before the listing, so
# that get_status (which receives only the output) knows which job to read.
# The ID is an argument of sh, never part of the script text.
_STATUS_ONE = f'echo "{MARKER}$1"; exec qstat -xml'
_ACCOUNTING_MANY = f'for id in "$@"; do echo "{MARKER}$id"; qacct -j "$id"; done'
# Both queries of the tag search, with their exit codes and error messages on
# stdout: only a clean "there is none" from both counts as proof.
_FIND_TAG = (
    'echo "clusterjob-sge section qstat"; qstat -j "*" 2>&1; echo "clusterjob-sge exit $?"; '
    'echo "clusterjob-sge section qacct"; qacct -A "$1" -j "*" 2>&1; echo "clusterjob-sge exit $?"'
)
_SECTION = re.compile(r"^clusterjob-sge section (\w+)$")
_EXIT = re.compile(r"^clusterjob-sge exit (\d+)$")


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

    # -- submission -----------------------------------------------------------

    def resource_headers(self, jobscript: JobScript) -> list[str]:
        """``#$`` lines for the job's resources (see the README for every rule).

        Raises:
            ResourcesNotSupportedError: naming the key Grid Engine cannot
                express (e.g. ``nodes=2`` without a suitable ``pe``).
        """
        return [f"{self.prefix} {' '.join(args)}" for args in sge_options(self, jobscript)]

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
        """``qdel <job number>``."""
        return ["qdel", self._job_number(run.job_id)]

    # -- status ---------------------------------------------------------------

    def cmd_status(self, run: AsyncResult, finished: bool = False) -> list[str]:
        """The qstat listing while the job is known, ``qacct -j`` once it left the queue.

        ``qstat -j`` does not show a job's state, so the state comes from the
        ``qstat -xml`` listing; the job number is echoed before it (through
        ``sh -c``, with the number as an argument) because
        :meth:`get_status` only sees the output.
        """
        number = self._job_number(run.job_id)
        if finished:
            return ["qacct", "-j", number]
        return ["sh", "-c", _STATUS_ONE, "sh", number]

    def get_status(self, response: str, finished: bool = False) -> int | None:
        """Status from :meth:`cmd_status` output; None while it does not tell.

        Listing: the job's state (None if it is not listed: it has left the
        queue, and the caller asks qacct). qacct: COMPLETED, FAILED or
        CANCELLED from ``failed`` and ``exit_status`` (None while the record
        is not written yet, "job id N not found", which takes 1-3 s, or for
        a job deleted before it ran: such a job has no record at all).
        """
        if finished:
            return qacct_status(parse_qacct(response))
        sections = split_marked_sections(response)
        if len(sections) != 1:
            return None
        ((number, listing),) = sections.items()
        states = parse_qstat_xml(listing, self.status_mapping)
        return None if states is None else states.get(number)

    def cmd_status_many(self, runs: Sequence[AsyncResult], finished: bool = False) -> list[str]:
        """One command for many jobs: ``qstat -xml``, or one qacct per job in one shell."""
        if not finished:
            return ["qstat", "-xml"]
        numbers = [self._job_number(run.job_id) for run in runs]
        return ["sh", "-c", _ACCOUNTING_MANY, "sh", *numbers]

    def get_status_many(
        self, response: str, runs: Sequence[AsyncResult], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status (or None) from :meth:`cmd_status_many` output."""
        statuses: dict[str, int | None] = {}
        if finished:
            sections = split_marked_sections(response)
            for run in runs:
                text = sections.get(self._job_number(run.job_id))
                statuses[str(run.job_id)] = (
                    None if text is None else qacct_status(parse_qacct(text))
                )
            return statuses
        listing = parse_qstat_xml(response, self.status_mapping)
        for run in runs:
            statuses[str(run.job_id)] = (
                None if listing is None else listing.get(self._job_number(run.job_id))
            )
        return statuses

    # -- dependencies and crash safety ------------------------------------------

    def dependency_resources(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """``-hold_jid ID,ID``: start after the jobs ended.

        Grid Engine releases the hold when a job ends *in any way*, failure
        included; only a job that exits with code 100 (and stays in error
        state) keeps its dependents waiting. This is weaker than "after they
        succeeded"; see the README.
        """
        numbers = []
        for job_id in job_ids:
            match = _JOB_NUMBER.match(str(job_id).strip())
            if not match:
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express resource after={list(job_ids)!r}: "
                    f"{job_id!r} is not a Grid Engine job number"
                )
            numbers.append(match.group(1))
        return {AFTER_KEY: numbers}

    def tag_resources(self, tag: str) -> dict[str, Any]:
        """The tag rides as account string (``-A``, kept in qacct) and job context (``-ac``)."""
        return {TAG_KEY: tag}

    def cmd_find_tag(self, tag: str, *, remote: str | None = None) -> list[str]:
        """``qstat -j '*'`` (queued jobs: account and context) and ``qacct -A <tag>`` (ended jobs)."""
        return ["sh", "-c", _FIND_TAG, "sh", tag]

    def get_job_ids_for_tag(self, response: str, tag: str) -> list[str]:
        """Job numbers carrying ``tag``; [] only when both queries answered cleanly.

        Raises:
            SubmitError: when a query failed, so that the absence of the
                tag is not proven (the caller must not submit again).
        """
        sections = _tag_sections(response)
        found: list[str] = []
        for name, no_jobs in (("qstat", "Following jobs do not exist"), ("qacct", "not found")):
            if name not in sections:
                raise _tag_lookup_failed(tag, f"no {name} answer in {response!r}")
            code, text = sections[name]
            if code != 0:
                if no_jobs in text and "error: commlib" not in text:
                    continue
                raise _tag_lookup_failed(tag, f"{name} exited with {code}: {text.strip()[-500:]}")
            if name == "qstat":
                for block in parse_qstat_j_blocks(text):
                    context = [item.strip() for item in block.get("context", "").split(",")]
                    if block.get("account") == tag or f"{TAG_CONTEXT}={tag}" in context:
                        found.append(block["job_number"])
            else:
                found.extend(r.jobnumber for r in parse_qacct(text) if r.account == tag)
        return list(dict.fromkeys(found))

    # -- helpers ----------------------------------------------------------------

    def _job_number(self, job_id: Any) -> str:
        """The numeric job number of a job ID (``123`` or ``123.1-3:1``)."""
        match = _JOB_NUMBER.match(str(job_id or "").strip())
        if not match:
            raise ClusterjobError(f"{job_id!r} is not a Grid Engine job number")
        return match.group(1)


def _tag_lookup_failed(tag: str, reason: str) -> SubmitError:
    """The error of a tag lookup that cannot prove whether a job carries ``tag``."""
    return SubmitError(
        f"cannot tell whether a Grid Engine job carries tag {tag!r}: {reason}. Look for a job with this "
        f"account or context (qstat -j '*'; qacct -A {tag} -j '*'), then remove the cache file or submit "
        "with force=True"
    )


def _tag_sections(response: str) -> dict[str, tuple[int, str]]:
    sections: dict[str, tuple[int, str]] = {}
    name: str | None = None
    lines: list[str] = []
    for line in response.splitlines():
        section = _SECTION.match(line)
        if section:
            name, lines = section.group(1), []
            continue
        code = _EXIT.match(line)
        if code and name is not None:
            sections[name] = (int(code.group(1)), "\n".join(lines))
            name = None
            continue
        lines.append(line)
    return sections
