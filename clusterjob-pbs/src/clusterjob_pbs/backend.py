"""The PBS/TORQUE backend: ``qsub``, ``qstat -f``, ``qdel``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    ResourcesNotSupportedError,
    format_option,
    is_dashed,
    positive_int,
    resource_list_names,
)
from clusterjob.backends.output import clean_output, find_job_id
from clusterjob.errors import SubmitError
from clusterjob.status import COMPLETED, PENDING, RUNNING

from clusterjob_pbs.options import check_key, option_words, quote_value, walltime
from clusterjob_pbs.qstat import QstatJob, finished_status, parse_qstat_full, sequence_number

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["NODELIST_PREAMBLE", "TAG_KEY", "PbsBackend"]

logger = logging.getLogger("clusterjob.pbs")

#: Resource key under which :meth:`PbsBackend.tag_resources` puts the tag.
TAG_KEY = "clusterjob_tag"

#: First body line when the body uses ``$CLUSTERJOB_NODELIST``: PBS has no
#: variable holding the host names, only ``$PBS_NODEFILE``, a file with one
#: line per allocated slot. This defines the variable as the comma-separated
#: list of distinct host names, in allocation order.
NODELIST_PREAMBLE = (
    "CLUSTERJOB_NODELIST=$(awk '!seen[$0]++' \"$PBS_NODEFILE\" 2>/dev/null | paste -sd, -)"
)
_NODELIST_USE = re.compile(r"\$\{?CLUSTERJOB_NODELIST(?![A-Za-z0-9_])")

#: A job ID as ``qsub`` prints it, alone on a line: ``123.server``, ``123[].server``, ``123``.
_JOB_ID = re.compile(r"\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.\-]+)?")

#: States after which a job never changes again (TORQUE C, PBS Pro F, PBS Pro subjob X).
FINISHED_STATES = frozenset("CFX")


class PbsBackend(ClusterjobBackend):
    """PBS/TORQUE backend.

    Attributes:
        name: ``'pbs'``.
        extension: ``'pbs'``.
        prefix: ``'#PBS'``.
        status_mapping: single-letter PBS ``job_state`` -> clusterjob status
            code, for every state TORQUE and PBS Pro document. Finished states
            (C, F, X) map to COMPLETED here and are refined from the exit
            status by :func:`clusterjob_pbs.qstat.finished_status`.
        resource_replacements: common resource keys that are single ``qsub``
            options (``jobname`` -> ``-N`` …). ``time``, ``nodes``, ``ppn``,
            ``threads`` and ``mem`` become ``-l`` resources.
        job_vars: core variables -> PBS variables. ``$CLUSTERJOB_NODELIST`` is
            not a mapping: see :data:`NODELIST_PREAMBLE`.
        qsub, qstat, qdel: the commands (LPBS uses ``lqsub`` …).
        history_option: ``qstat`` option that includes finished jobs (``-x``
            on PBS Pro); TORQUE has none, see :meth:`cmd_status`.
        tag_variable: environment variable that carries the crash-recovery
            tag (``qsub -v``), or None for no tag (the default here, see
            :meth:`tag_resources`).
    """

    name = "pbs"
    extension = "pbs"
    prefix = "#PBS"
    qsub = "qsub"
    qstat = "qstat"
    qdel = "qdel"
    commands = ("qsub", "qstat", "qdel")
    history_option: str | None = None
    tag_variable: str | None = None
    #: The ``-l`` resource each layout key is written into (see :meth:`node_resources`).
    layout_resources: ClassVar[Mapping[str, str]] = {
        "nodes": "nodes",
        "ppn": "nodes",
        "threads": "nodes",
        "mem": "mem",
    }

    status_mapping = {
        "Q": PENDING,  # queued, eligible to run or be routed
        "H": PENDING,  # held
        "W": PENDING,  # waiting for its execution time (qsub -a) / failed stage-in
        "T": PENDING,  # in transit to a new location
        "M": PENDING,  # PBS Pro: moved to another server (its new ID is not known here)
        "R": RUNNING,  # running
        "E": RUNNING,  # exiting after having run: the exit status is not final yet
        "S": RUNNING,  # suspended by the server (has started, keeps its allocation)
        "U": RUNNING,  # PBS Pro: suspended because the workstation is busy
        "B": RUNNING,  # PBS Pro array job: at least one subjob has started
        "C": COMPLETED,  # TORQUE: completed after having run (refined by the exit status)
        "F": COMPLETED,  # PBS Pro (qstat -x): finished (refined by substate/Exit_status)
        "X": COMPLETED,  # PBS Pro subjob: finished/expired (refined likewise)
    }
    resource_replacements = {"jobname": "N", "queue": "q", "stdout": "o", "stderr": "e"}
    job_vars = {
        "CLUSTERJOB_ID": "PBS_JOBID",
        "CLUSTERJOB_WORKDIR": "PBS_O_WORKDIR",
        "CLUSTERJOB_SUBMIT_HOST": "PBS_O_HOST",
        "CLUSTERJOB_NAME": "PBS_JOBNAME",
    }

    # -- submission -----------------------------------------------------------

    def cmd_submit(self, jobscript: JobScript) -> Command:
        """``qsub [-o stdout] [-e stderr] <script>``.

        ``-o``/``-e`` are given on the command line as well as in the header:
        SLURM's TORQUE wrappers ignore them in the header (they pass their
        own defaults to ``sbatch``); real PBS takes either.
        """
        cmd = [self.qsub]
        for key in ("stdout", "stderr"):
            value = jobscript.resources.get(key)
            if value:
                cmd += [f"-{self.resource_replacements[key]}", str(value)]
        cmd.append(jobscript.filename or jobscript.script_filename())
        return cmd

    def get_job_id(self, response: str) -> str | None:
        """The job ID ``qsub`` printed alone on a line (``123.server``, ``123[].server``, ``123``).

        Login banners, blank lines and escape sequences around it are
        skipped; two lines that are job IDs give None (see
        :func:`~clusterjob.backends.output.find_job_id`).
        """
        return find_job_id(response, _JOB_ID)

    def cmd_cancel(self, run: AsyncResult) -> Command:
        """``qdel <id>``."""
        return [self.qdel, str(run.job_id)]

    # -- status ---------------------------------------------------------------

    def cmd_status(self, run: AsyncResult, finished: bool = False) -> Command:
        """``qstat -f <id>``; with ``finished=True`` try ``qstat -x -f <id>`` first.

        The documented PBS backend assumes ``qstat -x`` shows running and
        finished jobs. That holds for PBS Pro (job history). TORQUE's ``-x``
        means XML output of the same jobs, and SLURM's TORQUE wrappers reject
        it. So a running job is asked with plain ``-f`` (understood by all),
        and a job that has left that answer is asked with ``-x -f``, falling
        back to ``-f`` if ``-x`` fails (run through ``sh -c``; the job ID is a
        positional parameter, never part of the script text).
        """
        return self._qstat([str(run.job_id)], finished)

    def cmd_status_many(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """One ``qstat -f id1 id2 …`` for many jobs (see :meth:`cmd_status`)."""
        return self._qstat([str(run.job_id) for run in runs], finished)

    def _qstat(self, job_ids: list[str], finished: bool) -> Command:
        if self.history_option:
            return [self.qstat, self.history_option, "-f", *job_ids]
        if not finished:
            return [self.qstat, "-f", *job_ids]
        script = f'{self.qstat} -x -f "$@" 2>/dev/null || {self.qstat} -f "$@"'
        return ["sh", "-c", script, self.qstat, *job_ids]

    def get_status(self, response: str, finished: bool = False) -> int | None:
        """The status of the (one) job in ``qstat -f`` output, or None if it is not there."""
        jobs = parse_qstat_full(response)
        if not jobs:
            return None
        return self.job_status(jobs[0])

    def get_status_many(
        self, response: str, runs: Sequence[AsyncResult], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status for each run in ``qstat -f`` output (None if absent)."""
        by_number = {sequence_number(job.job_id): job for job in parse_qstat_full(response)}
        result: dict[str, int | None] = {}
        for run in runs:
            job = by_number.get(sequence_number(str(run.job_id)))
            result[str(run.job_id)] = None if job is None else self.job_status(job)
        return result

    def job_status(self, job: QstatJob) -> int | None:
        """Status code of one qstat record: ``status_mapping``, refined for finished jobs."""
        state = job.state
        if state is None:
            return self.stateless_status(job)
        code = self.status_mapping.get(state)
        if code is None:
            logger.warning("job %s has job_state %r, which clusterjob does not know", job.job_id, state)
            return None
        if state in FINISHED_STATES:
            return finished_status(job)
        if state == "M":
            logger.warning(
                "job %s was moved to another server (job_state M); clusterjob cannot follow it there",
                job.job_id,
            )
        return code

    def stateless_status(self, job: QstatJob) -> int | None:
        """Status of a record without ``job_state`` (none in PBS itself; see LPBS)."""
        logger.warning("qstat output for job %s has no job_state", job.job_id)
        return None

    # -- resources -------------------------------------------------------------

    def resource_headers(self, jobscript: JobScript) -> list[str]:
        """``#PBS`` lines for the job's resources.

        ``jobname`` -> ``-N``, ``queue`` -> ``-q``, ``time`` -> ``-l
        walltime=HH:MM:SS``, ``nodes``/``ppn``/``threads``/``mem`` -> see
        :meth:`node_resources`, ``stdout``/``stderr`` -> ``-o``/``-e``,
        ``depend`` (from ``after=``) -> ``-W depend=…`` (merged with a ``W``
        resource), :data:`TAG_KEY` -> ``-v`` (merged with a ``v`` resource).
        Any other key: a single letter is the ``qsub`` option ``-X value``
        (``-X`` for True); a longer key is a resource ``-l key=value``
        (``-l key=true`` for True), since ``qsub`` has no long options.
        Options come first, then resources, each sorted by key.
        False/None values are left out. A key given with its dashes is that
        ``qsub`` option, never a ``-l`` resource: ``-A = acct`` -> ``-A acct``,
        ``-l = mem=2gb`` -> ``-l mem=2gb`` (see
        :meth:`~clusterjob.backends.ClusterjobBackend.read_dashed_keys`).
        """
        resources = {
            k: v for k, v in self.read_dashed_keys(jobscript.resources).items() if v is not None and v is not False
        }
        lines: list[str] = []

        def add(*words: str) -> None:
            lines.append(" ".join([self.prefix, *words]))

        if "jobname" in resources:
            name = str(resources.pop("jobname"))
            if not name or any(c.isspace() for c in name):
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express jobname={name!r}: PBS job names "
                    "must be non-empty and contain no whitespace"
                )
            add(f"-{self.resource_replacements['jobname']}", quote_value(name))
        if "queue" in resources:
            add(f"-{self.resource_replacements['queue']}", quote_value(resources.pop("queue")))
        if "time" in resources:
            add("-l", f"walltime={walltime(self.name, resources.pop('time'))}")
        for item in self.node_resources(resources):
            add("-l", item)
        for key in ("stdout", "stderr"):
            if key in resources:
                add(f"-{self.resource_replacements[key]}", quote_value(resources.pop(key)))
        attributes = [str(resources.pop("W"))] if "W" in resources else []
        if "depend" in resources:
            attributes.append(f"depend={resources.pop('depend')}")
        if attributes:
            add("-W", quote_value(",".join(attributes)))
        variables = [str(resources.pop("v"))] if "v" in resources else []
        if TAG_KEY in resources:
            tag = resources.pop(TAG_KEY)
            if self.tag_variable:
                variables.append(f"{self.tag_variable}={tag}")
        if variables:
            add("-v", quote_value(",".join(variables)))
        for key, value in sorted(resources.items(), key=lambda item: (len(item[0]) > 1 and not is_dashed(item[0]), item[0])):
            if is_dashed(key):
                add(*format_option(key, value, quote=quote_value))
                continue
            check_key(self.name, key, value)
            if len(key) == 1:
                add(*option_words(key, value))
            else:
                add("-l", quote_value(f"{key}={'true' if value is True else value}"))
        return lines

    def generic_option(self, key: str) -> str | None:
        """``-X`` for a one-letter key; None for a longer one, which is a ``-l`` resource."""
        return f"-{key}" if len(key) == 1 else None

    def translated_keys(self) -> frozenset[str]:
        return super().translated_keys() | {"depend", TAG_KEY}

    def options_set_by(self, key: str, value: Any) -> set[str]:
        """Options and ``-l`` resources (``'-l walltime'``) of ``key``; ``depend`` and the tag merge into -W/-v."""
        if key in ("l", "-l"):
            return {f"-l {name}" for name in resource_list_names(value)}
        if key == "time":
            return {"-l walltime"}
        if key in self.layout_resources:
            return {f"-l {self.layout_resources[key]}"}
        if not is_dashed(key) and key not in self.translated_keys() and len(key) > 1:
            return {f"-l {key}"}
        return super().options_set_by(key, value)

    def node_resources(self, resources: dict[str, Any]) -> list[str]:
        """TORQUE ``-l`` items for ``nodes``, ``ppn``, ``threads``, ``mem`` (popped from ``resources``).

        ``nodes=N:ppn=C`` where C = ppn*threads is the number of cores per
        node (TORQUE's ``ppn`` counts cores, clusterjob's counts processes).
        ``mem`` (MB per node) becomes ``mem=<mem*nodes>mb``: TORQUE's ``mem``
        is the job's total memory.
        """
        nodes, ppn, threads, mem = self._pop_layout(resources)
        items = []
        if (nodes, ppn, threads) != (None, None, None):
            items.append(f"nodes={nodes or 1}:ppn={(ppn or 1) * (threads or 1)}")
        if mem is not None:
            items.append(f"mem={mem * (nodes or 1)}mb")
        return items

    def _pop_layout(self, resources: dict[str, Any]) -> tuple[int | None, int | None, int | None, int | None]:
        values: list[int | None] = []
        for key in ("nodes", "ppn", "threads", "mem"):
            value = resources.pop(key, None)
            if value is not None and key == "mem":
                try:
                    values.append(positive_int(self.name, key, value))
                except ResourcesNotSupportedError:
                    raise ResourcesNotSupportedError(
                        f"backend {self.name!r} cannot express mem={value!r}: mem is the memory "
                        "per node in MB, a positive integer"
                    ) from None
            else:
                values.append(None if value is None else positive_int(self.name, key, value))
        return values[0], values[1], values[2], values[3]

    def replace_body_vars(self, body: str) -> str:
        """Map ``$CLUSTERJOB_*`` to PBS variables; define ``CLUSTERJOB_NODELIST`` if used.

        See :data:`NODELIST_PREAMBLE` for why the node list is a line of shell
        and not a variable mapping.
        """
        body = super().replace_body_vars(body)
        if _NODELIST_USE.search(body):
            body = NODELIST_PREAMBLE + "\n" + body
        return body

    # -- dependencies and crash-recovery tags ----------------------------------

    def dependency_resources(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """``-W depend=afterok:id1:id2``: start only after all jobs completed successfully."""
        if not job_ids:
            return {}
        return {"depend": "afterok:" + ":".join(str(j) for j in job_ids)}

    def tag_resources(self, tag: str) -> dict[str, Any]:
        """``-v <tag_variable>=<tag>`` if :attr:`tag_variable` is set, else nothing.

        Off for ``pbs``: the TORQUE-compatible ``qstat`` of SLURM
        (``slurm-wlm-torque``) shows no ``Variable_List``, and there a ``-v``
        directive replaces the job's inherited environment with a login
        environment. Set ``tag_variable = "CLUSTERJOB_TAG"`` (e.g. in a
        subclass) on a real TORQUE server to enable crash recovery.
        """
        if not self.tag_variable:
            return {}
        return {TAG_KEY: tag}

    def cmd_find_tag(self, tag: str, *, remote: str | None = None) -> Command | None:
        """``qstat [-x] -f`` for all jobs, between the user's name and qstat's exit status.

        The exit status makes "no job carries the tag" provable; the user name
        tells which listed jobs could be ours (PBS shows ``Variable_List`` of
        other users' jobs only to managers).
        """
        if not self.tag_variable:
            return None
        history = f" {self.history_option}" if self.history_option else ""
        return [
            "sh", "-c",
            f'echo "qstat user: $(id -un)"; {self.qstat}{history} -f; echo "qstat exit status: $?"',
        ]  # fmt: skip

    def get_job_ids_for_tag(self, response: str, tag: str) -> list[str]:
        """IDs of the jobs whose ``Variable_List`` has ``<tag_variable>=<tag>``.

        Raises:
            SubmitError: if the output cannot prove that no job carries the
                tag (``qstat`` failed, or shows no ``Variable_List``).
        """
        response = clean_output(response)  # a window title glued to the "qstat user" line
        jobs = parse_qstat_full(response)
        variable = self.tag_variable or ""
        found = [job.job_id for job in jobs if job.variables().get(variable) == tag]
        if found:
            return found
        status = re.search(r"qstat exit status: (\d+)", response)
        user = re.search(r"^qstat user: (\S+)$", response, re.MULTILINE)
        blind = [
            job.job_id
            for job in jobs
            if job.get("variable_list") is None
            and (user is None or (job.get("Job_Owner") or user.group(1)).split("@")[0] == user.group(1))
        ]
        if status is None or status.group(1) != "0" or blind:
            reason = (
                f"qstat shows no Variable_List for job(s) {', '.join(blind[:5])}"
                if blind and status is not None and status.group(1) == "0"
                else f"qstat failed ({response.strip()[-300:]!r})"
            )
            raise SubmitError(
                f"cannot tell whether the interrupted submission tagged {tag} reached the "
                f"scheduler: {reason}. Check with qstat, then submit again with force=True"
            )
        return []
