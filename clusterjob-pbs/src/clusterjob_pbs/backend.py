"""The PBS/TORQUE backend: ``qsub``, ``qstat -f``, ``qdel``."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from clusterjob.backends import (
    ClusterjobBackend,
    Command,
    CommandResult,
    ResourcesNotSupportedError,
    SubmissionContext,
    format_option,
    is_dashed,
    positive_int,
    resource_list_names,
)
from clusterjob.backends.output import clean_output, find_job_id
from clusterjob.errors import SubmitError
from clusterjob.rendering import cannot_express, megabytes, merged_value
from clusterjob.status import COMPLETED, PENDING, RUNNING
from clusterjob.walltime import Walltime

from clusterjob_pbs.qstat import (
    QstatJob,
    array_of_subjob,
    finished_status,
    parse_qstat_full,
    sequence_number,
    subjob_id,
)

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["NODELIST_PREAMBLE", "PbsBackend"]

logger = logging.getLogger("clusterjob.pbs")

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

#: What a ``-l`` resource name or ``qsub`` option name may be.
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")

#: A user name as ``id -un`` prints it (a banner line has spaces).
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]*\$?")

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
            tag (``qsub -v``), or None for no tag. None for ``pbs``: the
            TORQUE-compatible ``qstat`` of SLURM (``slurm-wlm-torque``) shows
            no ``Variable_List``, and there a ``-v`` directive replaces the
            job's inherited environment with a login environment. Set
            ``tag_variable = "CLUSTERJOB_TAG"`` (e.g. in a subclass) on a real
            TORQUE server to enable crash recovery.
        array_task_variable: the variable with an array task's index, which
            ``submit_all`` needs to pack jobs into one array. None for ``pbs``:
            on SLURM's TORQUE wrappers ``qsub -t 1-N`` does submit an array
            (its tasks see only ``SLURM_ARRAY_TASK_ID``), but ``qstat`` knows
            no task by an array-style ID (it matches SLURM's own job IDs
            only) and ``qdel 123_4`` or ``qdel 123[4]`` deletes the whole
            array (the wrapper reads the ID as the number 123), so a task
            could be neither watched nor cancelled alone; jobs are submitted
            one by one. Set ``array_task_variable = "PBS_ARRAYID"`` (with
            :attr:`tag_variable`, in a subclass) on a real TORQUE server:
            :meth:`task_job_id`, :attr:`max_array_size` and
            :meth:`array_resources` follow TORQUE's arrays.
        max_array_size: 300, TORQUE's default ``idle_slot_limit`` (TORQUE 6.1
            Administrator Guide, server parameters): the server creates at most
            that many queued tasks of an array at once, so in arrays of up to
            300 tasks every task has its own ``qstat`` record from the start.
            The server's own ``max_job_array_size`` has no default limit.
    """

    name = "pbs"
    array_option: str | None = "-t"
    extension = "pbs"
    prefix = "#PBS"
    qsub = "qsub"
    qstat = "qstat"
    qdel = "qdel"
    commands = ("qsub", "qstat", "qdel")
    history_option: str | None = None
    tag_variable: str | None = None
    array_task_variable: ClassVar[str | None] = None
    max_array_size: ClassVar[int] = 300
    #: Whether the server appends ``-<k>`` to an array's ``-o``/``-e`` paths for its task k
    #: (TORQUE, server ``job_clone``); PBS Professional keeps them as given.
    indexes_array_output_paths: ClassVar[bool] = True
    #: ``qsub`` splits directive lines like a shell command line: other values are double-quoted.
    plain_value = re.compile(r"[A-Za-z0-9_.,:=/@%+\-\[\]]+")
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
        own defaults to ``sbatch``); real PBS takes either. They are read from
        the resources as the header has them: prepared (a site backend's
        default ``stdout``) and with dashed keys read (``-o = job.out``).
        """
        resources = self.header_resources(jobscript)
        cmd = [self.qsub]
        for key in ("stdout", "stderr"):
            option = self.resource_replacements[key]
            value = resources.get(key) or resources.get(option)
            if value:
                cmd += [f"-{option}", str(value)]
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
        """``qdel <id>``; for an array task (``123[4].server``) that task only."""
        return [self.qdel, str(run.job_id)]

    def array_resources(self, resources: dict[str, Any], first: int, last: int) -> dict[str, Any]:
        """The array option (``-t first-last``); a ``/dev/null`` output left to the default.

        Where :attr:`indexes_array_output_paths` (TORQUE), the ``/dev/null``
        an array gets when its jobs name their own files would become
        ``/dev/null-<k>``, which task k cannot write (TORQUE keeps such output
        as undelivered and mails the owner). Without ``-o``/``-e``, task k
        writes ``<name>.o<seq>-<k>`` in the submit folder, empty but for what
        a job writes before its own redirection.
        """
        resources = super().array_resources(resources, first, last)
        if self.indexes_array_output_paths:
            for key in ("stdout", "stderr"):
                if resources.get(key) == "/dev/null":
                    del resources[key]
        return resources

    def task_job_id(self, array_id: str, task: int) -> str:
        """``123[4].server``: task 4 of the array that ``qsub`` printed as ``123[].server``.

        TORQUE and PBS Professional name an array's tasks so, and ``qstat``
        and ``qdel`` take that name for one task (see
        :func:`~clusterjob_pbs.qstat.subjob_id`).

        Raises:
            SubmitError: if ``array_id`` has no ``[]``: that ``qsub`` did not
                answer as TORQUE or PBS Professional do for an array (SLURM's
                TORQUE wrappers print a bare number), so its tasks cannot be named.
        """
        own_id = subjob_id(array_id, task)
        if own_id is None:
            raise SubmitError(
                f"{self.qsub} printed {array_id!r} for an array job, not an array ID such as "
                f"'123[].server': backend {self.name!r} cannot name its tasks (SLURM's TORQUE "
                "wrappers answer so; use the 'slurm' backend there). Check the jobs with qstat; "
                "submit_all(..., pack=False) submits them one by one"
            )
        return own_id

    # -- status ---------------------------------------------------------------

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """One ``qstat -f id1 id2 …``; with ``finished=True`` try ``qstat -x -f …`` first.

        The documented PBS backend assumes ``qstat -x`` shows running and
        finished jobs. That holds for PBS Pro (job history). TORQUE's ``-x``
        means XML output of the same jobs, and SLURM's TORQUE wrappers reject
        it. So a running job is asked with plain ``-f`` (understood by all),
        and a job that has left that answer is asked with ``-x -f``, falling
        back to ``-f`` if ``-x`` fails (run through ``sh -c``; the job IDs are
        positional parameters, never part of the script text).
        """
        return self._qstat([str(run.job_id) for run in runs], finished)

    def _qstat(self, job_ids: list[str], finished: bool) -> Command:
        if self.history_option:
            return [self.qstat, self.history_option, "-f", *job_ids]
        if not finished:
            return [self.qstat, "-f", *job_ids]
        script = f'{self.qstat} -x -f "$@" 2>/dev/null || {self.qstat} -f "$@"'
        return ["sh", "-c", script, self.qstat, *job_ids]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Job ID -> status of each listed job, and None for each of ``job_ids`` that is not listed.

        ``qstat`` exits non-zero when a job it is asked about is unknown to
        the server (``Unknown Job Id``) and still lists the others, so the
        listed records count whatever the exit code; a job not listed is
        unknown (a failed ``qstat`` lists none). Runs are matched to records
        by :func:`~clusterjob_pbs.qstat.sequence_number`.
        """
        listed = {job.job_id: self.job_status(job) for job in parse_qstat_full(result.stdout)}
        by_number = {sequence_number(job_id): status for job_id, status in listed.items()}
        return {**listed, **{job_id: by_number.get(sequence_number(job_id)) for job_id in job_ids}}

    def job_status(self, job: QstatJob) -> int | None:
        """Status code of one qstat record: ``status_mapping``, refined for finished jobs."""
        state = job.state
        if state is None:
            return self.stateless_status(job)
        code = self.status_mapping.get(state)
        if code is None:
            logger.warning(
                "job %s has job_state %r, which clusterjob does not know", job.job_id, state
            )
            return None
        if state in FINISHED_STATES:
            return finished_status(job)
        if state == "M":
            logger.warning(
                "job %s was moved to another server (job_state M); "
                "clusterjob cannot follow it there",
                job.job_id,
            )
        return code

    def stateless_status(self, job: QstatJob) -> int | None:
        """Status of a record without ``job_state`` (none in PBS itself; see LPBS)."""
        logger.warning("qstat output for job %s has no job_state", job.job_id)
        return None

    # -- resources -------------------------------------------------------------

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """``#PBS`` lines for the job's resources.

        ``jobname`` -> ``-N``, ``queue`` -> ``-q``, ``time`` -> ``-l
        walltime=HH:MM:SS``, ``nodes``/``ppn``/``threads``/``mem`` -> see
        :meth:`node_resources`, ``stdout``/``stderr`` -> ``-o``/``-e``, the
        jobs of ``after=`` -> ``-W depend=afterok:…`` (merged with a ``W``
        resource), the submission tag -> ``-v <tag_variable>=<tag>`` (merged
        with a ``v`` resource; only with :attr:`tag_variable`).
        Any other key: a single letter is the ``qsub`` option ``-X value``
        (``-X`` for True); a longer key is a resource ``-l key=value``
        (``-l key=true`` for True), since ``qsub`` has no long options.
        Options come first, then resources, each sorted by key.
        False/None values are left out. A key given with its dashes is that
        ``qsub`` option, never a ``-l`` resource: ``-A = acct`` -> ``-A acct``,
        ``-l = mem=2gb`` -> ``-l mem=2gb`` (see
        :meth:`~clusterjob.backends.ClusterjobBackend.read_dashed_keys`).
        """
        resources = {k: v for k, v in resources.items() if v is not None and v is not False}
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
            add(f"-{self.resource_replacements['jobname']}", self.quote("jobname", name))
        if "queue" in resources:
            add(
                f"-{self.resource_replacements['queue']}",
                self.quote("queue", resources.pop("queue")),
            )
        if "time" in resources:
            walltime = Walltime.read(self.name, resources.pop("time"))
            add("-l", f"walltime={walltime.hours_minutes_seconds()}")
        for item in self.node_resources(resources):
            add("-l", item)
        for key in ("stdout", "stderr"):
            if key in resources:
                add(f"-{self.resource_replacements[key]}", self.quote(key, resources.pop(key)))
        depend = ["depend=afterok:" + ":".join(context.after)] if context.after else []
        tagged = [f"{self.tag_variable}={context.tag}"] if context.tag and self.tag_variable else []
        for key, added in (("W", depend), ("v", tagged)):
            value = merged_value(resources.pop(key, None), added, ",")
            if value is not None:
                add(f"-{key}", self.quote(key, value))
        for key, value in sorted(
            resources.items(),
            key=lambda item: (len(item[0]) > 1 and not is_dashed(item[0]), item[0]),
        ):
            if is_dashed(key):
                add(*format_option(key, value, quote=functools.partial(self.quote, key)))
            elif not _KEY.fullmatch(key):
                raise cannot_express(
                    self.name, key, value,
                    "a resource name must start with a letter and contain only letters, digits, "
                    "'_', '.' and '-'",
                )  # fmt: skip
            elif len(key) == 1:
                add(f"-{key}", *([] if value is True else [self.quote(key, value)]))
            else:
                add("-l", self.quote(key, f"{key}={'true' if value is True else value}"))
        return lines

    def generic_option(self, key: str) -> str | None:
        """``-X`` for a one-letter key; None for a longer one, which is a ``-l`` resource."""
        return f"-{key}" if len(key) == 1 else None

    def options_set_by(self, key: str, value: Any) -> set[str]:
        """Options and ``-l`` resources (``'-l walltime'``) of ``key``."""
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
        """TORQUE ``-l`` items for ``nodes``, ``ppn``, ``threads`` and ``mem`` (popped).

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

    def _pop_layout(
        self, resources: dict[str, Any]
    ) -> tuple[int | None, int | None, int | None, int | None]:
        nodes, ppn, threads, mem = (
            resources.pop(key, None) for key in ("nodes", "ppn", "threads", "mem")
        )
        return (
            None if nodes is None else positive_int(self.name, "nodes", nodes),
            None if ppn is None else positive_int(self.name, "ppn", ppn),
            None if threads is None else positive_int(self.name, "threads", threads),
            None if mem is None else megabytes(self.name, mem),
        )

    def replace_body_vars(self, body: str) -> str:
        """Map ``$CLUSTERJOB_*`` to PBS variables; define ``CLUSTERJOB_NODELIST`` if used.

        See :data:`NODELIST_PREAMBLE` for why the node list is a line of shell
        and not a variable mapping.
        """
        body = super().replace_body_vars(body)
        if _NODELIST_USE.search(body):
            body = NODELIST_PREAMBLE + "\n" + body
        return body

    # -- crash-recovery tags ---------------------------------------------------

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """The user's name (``id -un``), then ``qstat [-x] -f`` for all jobs.

        The user name tells which listed jobs could be ours (PBS shows
        ``Variable_List`` of other users' jobs only to managers); it is the
        line just before the first ``Job Id:``.
        """
        if not self.tag_variable or finished:
            return None
        history = f" {self.history_option}" if self.history_option else ""
        return ["sh", "-c", f"id -un && exec {self.qstat}{history} -f", self.qstat]

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str]:
        """IDs of the jobs whose ``Variable_List`` has ``<tag_variable>=<tag>``.

        An array's tasks carry its ``Variable_List``: a task listed with the
        tag (``123[4].server``) stands for its array, ``123[].server``, the ID
        ``qsub`` printed for it (and each array is named once).

        Raises:
            SubmitError: if the result cannot prove that no job carries the
                tag (``qstat`` failed, or shows no ``Variable_List`` for a job of ours).
        """
        text = clean_output(result.stdout)  # a window title glued to the user's name
        jobs = parse_qstat_full(text)
        variable = self.tag_variable or ""
        tagged = [job.job_id for job in jobs if job.variables().get(variable) == tag]
        found = list(dict.fromkeys(array_of_subjob(job_id) or job_id for job_id in tagged))
        if found:
            return found
        if result.returncode != 0:
            self._cannot_look_up(
                tag, f"the lookup exited with {result.returncode}: {result.stderr.strip()[-300:]!r}"
            )
        user = _user_before_jobs(text)
        blind = [
            job.job_id
            for job in jobs
            if job.get("variable_list") is None
            and (not user or (job.get("Job_Owner") or user).split("@")[0] == user)
        ]
        if blind:
            self._cannot_look_up(
                tag, f"qstat shows no Variable_List for job(s) {', '.join(blind[:5])}"
            )
        return []

    @staticmethod
    def _cannot_look_up(tag: str, reason: str) -> NoReturn:
        raise SubmitError(
            f"cannot tell whether the interrupted submission tagged {tag} reached the "
            f"scheduler: {reason}. Check with qstat, then submit again with force=True"
        )


def _user_before_jobs(text: str) -> str | None:
    """What ``id -un`` printed: the last line before the first ``Job Id:`` that is a user name.

    None if there is none (then every job counts as possibly ours).
    """
    before = text.split("\nJob Id:", 1)[0] if not text.startswith("Job Id:") else ""
    names = [line.strip() for line in before.splitlines() if _USER_NAME.fullmatch(line.strip())]
    return names[-1] if names else None
