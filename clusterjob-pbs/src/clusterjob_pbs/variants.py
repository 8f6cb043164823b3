"""PBS Professional and LPBS: the PBS backend with different commands and resource syntax."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from clusterjob.backends import ResourcesNotSupportedError
from clusterjob.status import CANCELLED, COMPLETED, RUNNING

from clusterjob_pbs.backend import FINISHED_STATES, PbsBackend
from clusterjob_pbs.qstat import QstatJob, array_of_subjob

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping, Sequence

    from clusterjob.async_result import AsyncResult
    from clusterjob.backends import Command, CommandResult, SubmissionContext
    from clusterjob.jobscript import JobScript

__all__ = ["LPbsBackend", "PbsProBackend"]

logger = logging.getLogger("clusterjob.pbs")


class PbsProBackend(PbsBackend):
    """PBS Professional (and OpenPBS) backend.

    Differences from :class:`PbsBackend`: resources are requested as one
    ``-l select=`` chunk per node (:meth:`node_resources`); status always
    uses ``qstat -x -f`` (job history, so finished jobs have ``job_state =
    F`` with ``substate`` and ``Exit_status``); jobs carry the crash-recovery
    tag in ``-v CLUSTERJOB_TAG=…``, visible in ``qstat -x -f``'s
    ``Variable_List``.

    Packed into arrays by ``submit_all`` (``-J 1-N``, the task's index in
    ``$PBS_ARRAY_INDEX``), each job is a subjob ``123[k].server`` of the array
    ``123[].server`` that ``qsub`` printed: ``qstat -x -f`` and ``qdel`` take
    that ID for one subjob (PBS Professional Reference Guide, qstat and qdel,
    "Job Identifier Operands"). ``max_array_size`` is the server's default
    ``max_array_size``, 10000 subjobs (Reference Guide, "Server Attributes").
    """

    name = "pbspro"
    array_option: str | None = "-J"
    history_option = "-x"
    tag_variable = "CLUSTERJOB_TAG"
    array_task_variable: ClassVar[str | None] = "PBS_ARRAY_INDEX"
    max_array_size: ClassVar[int] = 10000
    #: A subjob's paths are the array's, with only ``^array_index^`` replaced (qsub -J).
    indexes_array_output_paths: ClassVar[bool] = False
    layout_resources = {"nodes": "select", "ppn": "select", "threads": "select", "mem": "select"}

    def node_resources(self, resources: dict[str, Any]) -> list[str]:
        """``select=N:ncpus=C:mpiprocs=P:ompthreads=T[:mem=Mmb]`` (popped from ``resources``).

        One chunk per node: ``ncpus`` = ppn*threads cores, ``mpiprocs`` = ppn
        MPI ranks, ``ompthreads`` = threads (sets ``OMP_NUM_THREADS``), and
        ``mem`` the memory per node in MB. Missing nodes/ppn/threads count
        as 1 once any of them is given.
        """
        nodes, ppn, threads, mem = self._pop_layout(resources)
        chunk = [str(nodes or 1)]
        if (nodes, ppn, threads) != (None, None, None):
            ppn, threads = ppn or 1, threads or 1
            chunk += [f"ncpus={ppn * threads}", f"mpiprocs={ppn}", f"ompthreads={threads}"]
        if mem is not None:
            chunk.append(f"mem={mem}mb")
        return ["select=" + ":".join(chunk)] if len(chunk) > 1 else []

    def job_status(self, job: QstatJob) -> int | None:
        """The status of one record; a finished subjob without a record of its own is CANCELLED.

        The server keeps a job for a subjob only once it runs; asked about
        another subjob, ``qstat`` shows the array's own attributes under the
        subjob's ID, with the subjob's state (Q, or X once it is gone) but
        the array's ``substate`` and ``Exit_status`` (OpenPBS
        ``status_subjob``). Such a record has no ``array_index``. With job
        history, which ``qstat -x`` reads, every subjob that ran keeps its own
        record (substate 91/92/93, its own ``Exit_status``), so an X without
        one never ran: it was deleted while queued.
        """
        if job.state in FINISHED_STATES and _stands_in_for_subjob(job):
            logger.debug("subjob %s ended without running (qdel while queued)", job.job_id)
            return CANCELLED
        return super().job_status(job)


def _stands_in_for_subjob(job: QstatJob) -> bool:
    """Whether a record listed under a subjob's ID shows its array's attributes, not its own."""
    return array_of_subjob(job.job_id) is not None and job.get("array_index") is None


class LPbsBackend(PbsBackend):
    """LPBS ("Local PBS", a PBS emulation for a single workstation) backend.

    ``lqsub`` starts the job at once (it ignores ``-l``, ``-q`` and ``-W``, so
    an INI file written for a cluster works unchanged, but dependencies are
    refused) and ``lqstat`` lists only running jobs,
    without ``job_state``: a listed job is RUNNING. A job that is no longer
    listed has ended; LPBS keeps no exit status, so it is reported as
    COMPLETED, but only when ``lqstat`` succeeded (its exit code tells "not
    listed" from "lqstat failed").
    """

    name = "lpbs"
    array_option = None  # LPBS runs single jobs only
    qsub = "lqsub"
    qstat = "lqstat"
    qdel = "lqdel"
    commands = ("lqsub", "lqstat", "lqdel")

    #: LPBS runs few jobs on one machine; each is asked on its own.
    status_batch_size = 1

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """``lqstat -f <id>`` (the same command serves ``finished``)."""
        return [self.qstat, "-f", str(runs[0].job_id)]

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """RUNNING if listed; else None, or COMPLETED when ``finished`` and lqstat succeeded."""
        statuses = super().parse_status(result, job_ids, finished)
        ended = COMPLETED if finished and result.returncode == 0 else None
        return {job_id: ended if status is None else status for job_id, status in statuses.items()}

    def stateless_status(self, job: QstatJob) -> int | None:
        """lqstat lists running jobs only."""
        return RUNNING

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """The PBS lines; dependencies are refused: ``lqsub`` starts every job at once and ignores
        ``-W depend``."""
        if context.after:
            raise ResourcesNotSupportedError(
                f"backend {self.name!r} cannot express job dependencies (after=...): "
                "lqsub starts every job at once and ignores -W depend; "
                "submit the next job when this one finished"
            )
        return super().render_headers(resources, context, jobscript)
