"""The status query, batch first, with the documented single-job methods as adapters both ways.

Core asks a backend about a list of jobs (:meth:`StatusQuery.status_command`)
and hands the parser the whole command result and the IDs it asked about
(:meth:`StatusQuery.parse_status`). A backend written against the original
documentation implements ``cmd_status``/``get_status`` for one job instead;
each form is served by the other's adapter here, so either is enough.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from clusterjob.backends.overrides import InterfacePart
from clusterjob.commands import Command, CommandResult

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult

__all__ = ["StatusQuery"]


class StatusQuery(InterfacePart):
    """The status query of a backend (part of :class:`~clusterjob.backends.ClusterjobBackend`)."""

    _interface_part: ClassVar[bool] = True

    def status_command(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """One command that asks the scheduler about every run in ``runs``.

        ``finished=True`` asks about the runs the first query did not report
        (they left the queue: ``sacct`` after ``squeue``, ``qacct`` after
        ``qstat``); None means there is no such second query, and those jobs
        stay unknown for this poll cycle. A run is given, not just its ID,
        because a command may depend on more (the host it runs on, when the
        job was submitted). At most :attr:`status_batch_size` runs are passed.

        For a backend with only the single-job form, this is
        :meth:`cmd_status` of the one run it accepts.
        """
        if not self._overrides("cmd_status"):
            raise NotImplementedError(self._no_status_query())
        if len(runs) != 1:
            raise ValueError(
                f"backend {self.name!r} asks about one job per command (it implements "
                f"cmd_status, not status_command); got {len(runs)} runs"
            )
        return self.cmd_status(runs[0], finished)

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Status code of each of ``job_ids`` (None: not told) from a :meth:`status_command` result.

        ``result`` is the whole answer: a failed command (non-zero
        ``returncode``, why on ``stderr``) must give None for the jobs it does
        not report, never a guessed status. The mapping holds each of
        ``job_ids`` (a missing one counts as None) and may hold other jobs the
        output reports; given no ``job_ids`` (as :meth:`get_status` does),
        it holds every job the output reports, by the ID the scheduler gave
        at submission.

        For a backend with only the single-job form, this is :meth:`get_status`
        of the stdout, for the one job asked about.
        """
        if not self._overrides("get_status"):
            raise NotImplementedError(self._no_status_query())
        status = self.get_status(result.stdout, finished)
        return dict.fromkeys(job_ids, status)

    def parse_exit_codes(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int]:
        """The exit status of each of ``job_ids`` that the :meth:`status_command` result reports.

        Read from the same result as :meth:`parse_status`, so it costs no
        command; a job left out is unknown (``AsyncResult.exit_code`` stays
        None). The default reports none: override it where the scheduler's
        answer carries the exit status.
        """
        return {}

    def asks_one_job_at_a_time(self) -> bool:
        """Whether clusterjob asks about each job with :meth:`cmd_status`/:meth:`get_status`.

        True for a backend with only the single-job form, and for a subclass
        that overrides one of those two methods of a batch backend (its
        override is what runs); False for the batch form.
        """
        return self._depth("cmd_status", "get_status") < self._depth(
            "status_command", "parse_status"
        )

    # -- the documented single-job methods, as adapters over the batch form ---

    def cmd_status(self, run: AsyncResult, finished: bool = False) -> Command:
        """Return the command that queries the status of ``run``.

        With ``finished=True``, return the command for a run that has left the
        scheduler's queue (e.g. ``sacct`` instead of ``squeue``).

        For a backend with the batch form, this is :meth:`status_command` for
        the one run (its first query where it has no second one).
        """
        if not self._overrides("status_command"):
            raise NotImplementedError(self._no_status_query())
        command = self.status_command([run], finished)
        if command is None and finished:
            command = self.status_command([run], False)
        if command is None:
            raise NotImplementedError(
                f"backend {self.name!r} has no status command for job {run.job_id}"
            )
        return command

    def get_status(self, response: str, finished: bool = False) -> int | None:
        """Return a :mod:`clusterjob.status` code from the stdout of :meth:`cmd_status`.

        ``None`` means the output does not tell (e.g. the job left the queue);
        the caller then asks again with ``finished=True``.

        For a backend with the batch form, this is what :meth:`parse_status`
        reads from ``response`` (taken as the stdout of a command that
        succeeded, the only thing this method is given) when it reports
        exactly one job; None otherwise.
        """
        if not self._overrides("parse_status"):
            raise NotImplementedError(self._no_status_query())
        statuses = self.parse_status(CommandResult(0, response), (), finished)
        return next(iter(statuses.values())) if len(statuses) == 1 else None

    def _no_status_query(self) -> str:
        return (
            f"backend {self.name!r} has no status query: implement status_command() and "
            "parse_status() (one command for many jobs), or cmd_status() and get_status() "
            "(one job per command)"
        )
