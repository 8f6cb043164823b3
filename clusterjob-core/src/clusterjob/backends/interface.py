"""The backend interface: :class:`ClusterjobBackend`, what every backend is.

Its parts live beside it: the status query and its single-job adapters
(:mod:`~clusterjob.backends.status_query`), the tag lookup of crash recovery
(:mod:`~clusterjob.backends.tag_lookup`), and the option spellings of
resources (:mod:`~clusterjob.backends.options`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from clusterjob.backends.options import ResourceOptions
from clusterjob.backends.overrides import accepts_keyword
from clusterjob.backends.status_query import StatusQuery
from clusterjob.backends.tag_lookup import TagLookup
from clusterjob.backends.variables import replace_core_variables
from clusterjob.commands import Command
from clusterjob.errors import ResourcesNotSupportedError
from clusterjob.markers import parse_task_ranges
from clusterjob.rendering import (
    PLAIN_VALUE,
    SubmissionContext,
    cannot_express,
    format_option,
    quote_value,
)

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = ["ClusterjobBackend"]


class ClusterjobBackend(StatusQuery, TagLookup, ResourceOptions):
    """Base class of all clusterjob backends.

    What a subclass implements (:meth:`missing_methods` tells what is missing):

    * **Required:** ``cmd_submit``, ``get_job_id``, ``cmd_cancel``, and the
      status query in one of two forms. The batch form,
      :meth:`status_command` and :meth:`parse_status`, asks about many jobs
      with one command and reads its whole result (exit code, stdout,
      stderr); ``cmd_status``/``get_status`` then work as adapters over it.
      The single-job form of the original documentation, :meth:`cmd_status`
      and :meth:`get_status`, still works: clusterjob then asks about one job
      per command.
    * **Crash recovery** (all three, or none): :meth:`render_headers` writes
      the submission tag (``context.tag``) into the job, :meth:`tag_lookup_command`
      and :meth:`parse_tag_lookup` find the job by it. Without them an
      interrupted submission is reported (:class:`~clusterjob.errors.SubmitError`),
      never guessed.
    * **Optional, with defaults that work:** :meth:`render_headers` (one line
      per resource by the documented rule; refuses ``after=``),
      ``replace_body_vars`` (from :attr:`job_vars`),
      ``cmd_task_status``/``get_task_status`` (no per-task status),
      ``array_task_ids`` (arrays are watched through the scheduler).

    **Header lines**, as :meth:`resource_headers` makes them, in three steps
    that a subclass may each override:

    1. :meth:`prepare_resources` (``resources, context``) returns the
       resources to write. It is the place for a site backend that subclasses
       a scheduler's backend: add default resources (a partition), refuse a
       job that lacks one (an account), translate the site's own keys
       (``gpus=2`` -> ``gres='gpu:2'``). Whatever it returns is written by
       the parent's rules, with its quoting, walltime and tag handling::

           class MySiteBackend(SlurmBackend):
               name = "mysite"

               def prepare_resources(self, resources, context):
                   resources = self.with_defaults(resources, {"queue": "batch"})
                   gpus = resources.pop("gpus", None)
                   if gpus:
                       resources["gres"] = f"gpu:{gpus}"
                   return super().prepare_resources(resources, context)

    2. :meth:`read_dashed_keys` checks keys given with their dashes (``-A``).
    3. :meth:`render_headers` (``resources, context, jobscript``) writes the
       lines, with the submission's tag and dependencies from ``context``
       (a :class:`~clusterjob.rendering.SubmissionContext`: they never travel
       as resources). Values go through :meth:`quote`, configured by
       :attr:`plain_value` and :attr:`quote_escapes`.

    The shared pieces live in :mod:`clusterjob.rendering` (the documented
    option rule :func:`format_option`, quoting, merging with an option the
    user gave, counts and memory) and :mod:`clusterjob.walltime`.

    Attributes:
        name: (default) name of the backend.
        extension: extension to be used for job scripts.
        prefix: prefix of every line in the resource header (``#SBATCH``).
        resource_replacements: resource key -> scheduler option name.
        job_vars: core variable name (``CLUSTERJOB_ID``) -> scheduler variable
            name (``SLURM_JOB_ID``), both without ``$``.
        status_mapping: scheduler state string -> :mod:`clusterjob.status` code.
        commands: the scheduler commands the backend runs (``sbatch``, …),
            listed by ``clusterjob backends``.
        plain_value: a value matching it stands in a header line without
            quotes (:func:`~clusterjob.rendering.quote_value`).
        quote_escapes: whether the scheduler reads ``\\`` and ``\"`` inside
            double quotes.
    """

    name: str = ""
    extension: str = ""
    prefix: str = ""
    commands: ClassVar[tuple[str, ...]] = ()
    common_keys: ClassVar[list[str]] = [
        "name",
        "queue",
        "time",
        "nodes",
        "ppn",
        "threads",
        "mem",
        "stdout",
        "stderr",
    ]
    resource_replacements: dict[str, str] = {}
    job_vars: dict[str, str] = {}
    status_mapping: dict[str, int] = {}
    #: Second names of the scheduler's options, mapped to the first (sbatch's
    #: ``-J`` -> ``--job-name``), so that both spellings count as one option.
    option_aliases: ClassVar[Mapping[str, str]] = {}
    plain_value: ClassVar[re.Pattern[str]] = PLAIN_VALUE
    quote_escapes: ClassVar[bool] = True

    #: The methods every backend implements itself; the status query is
    #: required too, in either form (see :meth:`missing_methods`).
    required_methods: ClassVar[tuple[str, ...]] = ("cmd_submit", "get_job_id", "cmd_cancel")
    #: How many jobs one :meth:`status_command` may ask about (None: any number).
    status_batch_size: ClassVar[int | None] = None
    _interface_part: ClassVar[bool] = True  # see InterfacePart

    # -- the documented interface -------------------------------------------

    def cmd_submit(self, jobscript: JobScript) -> Command:
        """Return the command that submits ``jobscript`` (run in its workdir)."""
        raise NotImplementedError

    def get_job_id(self, response: str) -> str | None:
        """Return the job ID from the stdout of :meth:`cmd_submit`, or None."""
        raise NotImplementedError

    def cmd_cancel(self, run: AsyncResult) -> Command:
        """Return the command that cancels ``run``."""
        raise NotImplementedError

    # -- header lines -------------------------------------------------------

    def resource_headers(
        self, jobscript: JobScript, context: SubmissionContext | None = None
    ) -> list[str]:
        """Return header lines (no newlines) encoding ``jobscript.resources``.

        ``context`` holds what the submission adds (tag, dependencies); None
        when the script is rendered outside a submission (``str(job)``).
        The lines come from :meth:`prepare_resources`, :meth:`read_dashed_keys`
        and :meth:`render_headers`, in that order (see the class docstring):
        override those, not this method. A subclass that does override it
        (as the original's did, ``resource_headers(self, jobscript)``) keeps
        working, but without a ``context`` parameter that it passes on, its
        jobs carry no tag (an interrupted submission is then reported, never
        guessed) and ``submit(after=...)`` is refused.
        """
        context = context or SubmissionContext()
        return self.render_headers(self.header_resources(jobscript, context), context, jobscript)

    def header_resources(
        self, jobscript: JobScript, context: SubmissionContext | None = None
    ) -> dict[str, Any]:
        """The resources the header lines are written from: prepared, dashed keys read.

        For a submit command that repeats an option of the header (PBS ``-o``/``-e``),
        so that it gives what the header gives, a site's defaults included.
        """
        resources = self.prepare_resources(
            dict(jobscript.resources), context or SubmissionContext()
        )
        return self.read_dashed_keys(resources)

    def headers_take_context(self) -> bool:
        """Whether :meth:`resource_headers` accepts the submission ``context``.

        False for an override written against the original's
        ``resource_headers(self, jobscript)``: such a backend is given no tag
        and no dependencies (see :meth:`resource_headers`).
        """
        return accepts_keyword(self.resource_headers, "context")

    def prepare_resources(
        self, resources: dict[str, Any], context: SubmissionContext
    ) -> dict[str, Any]:
        """The resources to write for a job with ``resources`` (a copy, free to change).

        The hook for site backends (see the class docstring): add defaults,
        refuse what is missing (raise
        :class:`ResourcesNotSupportedError` naming the key), translate the
        site's own keys into the scheduler's. Called before keys given with
        their dashes are read, so it sees the resources as the user gave
        them. The default returns ``resources`` unchanged.
        """
        return resources

    def render_headers(
        self, resources: dict[str, Any], context: SubmissionContext, jobscript: JobScript
    ) -> list[str]:
        """Header lines for the prepared ``resources`` of ``jobscript``, submitted with ``context``.

        The default emits one ``prefix option`` line per resource, sorted by
        key, through :meth:`format_resource`; it carries no tag and refuses
        dependencies. Backends whose schedulers group options (PBS ``-l``,
        LSF ``-R``) override this.
        """
        if context.after:
            raise ResourcesNotSupportedError(
                f"backend {self.name!r} cannot express job dependencies (after=...)"
            )
        lines = []
        for key, value in sorted(resources.items()):
            args = self.format_resource(key, value)
            if args:
                lines.append(f"{self.prefix} {' '.join(args)}")
        return lines

    def format_resource(self, key: str, value: Any) -> list[str]:
        """Arguments for one resource: replacements, the documented rule, quoting."""
        return format_option(
            self.resource_replacements.get(key, key),
            value,
            quote=lambda text: self.quote(key, text),
        )

    def quote(self, key: str, value: Any, force: bool = False) -> str:
        """``value`` of resource ``key`` as one word of a header line.

        See :func:`~clusterjob.rendering.quote_value`.

        Raises:
            ResourcesNotSupportedError: naming the key and the value the
                header line cannot hold.
        """
        try:
            return quote_value(value, self.plain_value, escapes=self.quote_escapes, force=force)
        except ValueError as why:
            raise cannot_express(
                self.name, key, value, f"{why} in a '{self.prefix}' header line"
            ) from None

    # -- the job body -------------------------------------------------------

    def replace_body_vars(self, body: str) -> str:
        """Replace ``$CLUSTERJOB_*`` (and ``${CLUSTERJOB_*}``) by the scheduler's variables."""
        return replace_core_variables(body, self.job_vars)

    # -- optional extensions (the base class provides working defaults) -----

    #: The scheduler option that makes a job an array (SLURM ``--array``, Grid Engine and
    #: TORQUE ``-t``, PBS Pro ``-J``), read by :meth:`array_task_ids`; None: not read.
    array_option: str | None = None

    def array_task_ids(self, jobscript: JobScript) -> list[str] | None:
        """The task IDs of ``jobscript`` if it is an array job (None: not an array, or unknown).

        Recorded at submission: with them, an array is watched through its
        tasks' exit markers (:mod:`clusterjob.markers`); without them, through
        the scheduler. The default reads the resource that sets
        :attr:`array_option`, under any spelling, with
        :func:`~clusterjob.markers.parse_task_ranges` (``1-10``, ``0-15:4``,
        ``1,3,5-7``, a ``%N`` throttle ignored); a spec it cannot read is the
        scheduler's to judge, and gives None.
        """
        if self.array_option is None:
            return None
        key = self.key_setting(jobscript.resources, self.array_option)
        return parse_task_ranges(jobscript.resources[key]) if key else None

    # -- packing jobs into arrays (``clusterjob.submit_all``) ----------------

    #: The variable that holds an array task's index inside the job (SLURM
    #: ``SLURM_ARRAY_TASK_ID``, Grid Engine ``SGE_TASK_ID``, TORQUE ``PBS_ARRAYID``,
    #: PBS Pro ``PBS_ARRAY_INDEX``, LSF ``LSB_JOBINDEX``); None: jobs are never packed.
    array_task_variable: ClassVar[str | None] = None
    #: The most tasks one array may have where the site sets no limit of its own
    #: (the scheduler's documented default); ``JobScript.max_array_size`` is the site's.
    max_array_size: ClassVar[int] = 1000
    #: Whether a job given only ``stdout`` gets its stderr in that file too (SLURM, LSF);
    #: a packed job's redirections follow the same rule.
    stderr_follows_stdout: ClassVar[bool] = False

    def can_pack(self) -> bool:
        """Whether ``submit_all`` may pack jobs into arrays of this backend.

        Needs :attr:`array_task_variable` and :meth:`task_job_id`; the array's
        own option comes from :meth:`array_resources`.
        """
        return self.array_task_variable is not None and self._overrides("task_job_id")

    def array_resources(self, resources: dict[str, Any], first: int, last: int) -> dict[str, Any]:
        """The resources of an array of tasks ``first`` to ``last`` (a copy, free to change).

        The default sets :attr:`array_option` (``--array=1-10``, ``-t 1-10``,
        ``-J 1-10``); LSF, which names the tasks in the job name, overrides it.
        """
        if self.array_option is None:
            raise ResourcesNotSupportedError(f"backend {self.name!r} has no array option")
        resources[self.array_option] = f"{first}-{last}"
        return resources

    def task_job_id(self, array_id: str, task: int) -> str:
        """The ID by which the scheduler's commands know task ``task`` of array ``array_id``.

        ``array_id`` is what :meth:`get_job_id` read from the array's
        submission (and what the tag lookup finds); the ID returned must work
        with :meth:`status_command`/:meth:`parse_status` and :meth:`cmd_cancel`
        (which then cancels that task only): SLURM ``123_4``, Grid Engine
        ``123.4``, PBS ``123[4]``, LSF ``123[4]``.
        """
        raise NotImplementedError(f"backend {self.name!r} cannot pack jobs into arrays")

    def cmd_task_status(self, run: AsyncResult) -> Command | None:
        """Return a command listing the status of each task of an array job, or None."""
        return None

    def get_task_status(self, response: str, run: AsyncResult) -> dict[str, int]:
        """Map task ID -> status code from the output of :meth:`cmd_task_status`."""
        raise NotImplementedError(f"backend {self.name!r} cannot report array tasks")

    # -- what a backend implements ------------------------------------------

    @classmethod
    def missing_methods(cls) -> list[str]:
        """What this backend class lacks to be usable, one sentence each ([] if nothing).

        Checked when a backend is registered: the required methods, a status
        query in one of its two forms, and crash recovery whole or not at all.
        """
        problems = [f"{name}()" for name in cls.required_methods if not cls._overrides(name)]
        batch = cls._overrides("status_command") and cls._overrides("parse_status")
        single = cls._overrides("cmd_status") and cls._overrides("get_status")
        if not batch and not single:
            problems.append(
                "a status query: status_command() and parse_status(), "
                "or cmd_status() and get_status()"
            )
        writes_headers = cls._overrides("render_headers") or cls._overrides("resource_headers")
        looks_up = cls._depth("tag_lookup_command", "cmd_find_tag") < len(cls.__mro__)
        if looks_up and not writes_headers:
            problems.append(
                "render_headers() that writes context.tag into the job (crash recovery needs a tag "
                "attached and looked up, or neither; the base class's headers carry no tag)"
            )
        return problems

    def check_keys(self, resources: Mapping[str, Any], supported: Iterable[str]) -> None:
        """Raise :class:`ResourcesNotSupportedError` naming the first key not in ``supported``."""
        allowed = set(supported)
        for key, value in resources.items():
            if key not in allowed:
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} does not support resource {key}={value!r}; "
                    f"supported: {', '.join(sorted(allowed))}"
                )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
