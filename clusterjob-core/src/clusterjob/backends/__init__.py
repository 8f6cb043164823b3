"""The backend interface: stateless translators between a job and a scheduler.

A backend never talks to a machine itself. It turns a
:class:`~clusterjob.JobScript` into header lines and command lines, and turns a
scheduler's output back into :mod:`clusterjob.status` codes. The transport
(:mod:`clusterjob.transport`) runs the commands, locally or over SSH, so every
backend works remotely without knowing it.

Backends are provided by plugins (see :mod:`clusterjob.hookspecs`). The
documented module paths ``clusterjob.backends.slurm`` etc. keep working when
the corresponding distribution (``clusterjob-slurm`` …) is installed.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from clusterjob.commands import Command, CommandResult
from clusterjob.errors import ResourcesNotSupportedError
from clusterjob.rendering import (
    PLAIN_VALUE,
    SubmissionContext,
    cannot_express,
    dashed_key_problem,
    format_option,
    is_dashed,
    positive_int,
    quote_value,
    resource_list_names,
)

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = [
    "CORE_VARIABLES",
    "ClusterjobBackend",
    "Command",
    "CommandResult",
    "ResourcesNotSupportedError",
    "SubmissionContext",
    "dashed_key_problem",
    "format_option",
    "is_dashed",
    "positive_int",
    "resource_list_names",
]

#: The core environment variables every backend maps to its scheduler's names.
CORE_VARIABLES: tuple[str, ...] = (
    "CLUSTERJOB_ID",
    "CLUSTERJOB_WORKDIR",
    "CLUSTERJOB_SUBMIT_HOST",
    "CLUSTERJOB_NAME",
    "CLUSTERJOB_NODELIST",
)


def _var_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\$(?:\{" + name + r"\}|" + name + r"(?![A-Za-z0-9_]))")


def _variable_replacement(native_name: str) -> Callable[[re.Match[str]], str]:
    """Keep the form the body used: ``$X`` stays bare, ``${X}`` keeps its braces."""
    return lambda match: (
        "${" + native_name + "}" if match.group(0).startswith("${") else "$" + native_name
    )


def _accepts_keyword(method: Callable[..., Any], name: str) -> bool:
    """Whether ``method`` can be called with the keyword ``name``: how a backend written
    against an older signature of an interface method is told from a current one."""
    parameters = inspect.signature(method).parameters.values()
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)


class ClusterjobBackend:
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
      ``cmd_task_status``/``get_task_status`` (no per-task status).

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

    # -- the documented interface -------------------------------------------

    def cmd_submit(self, jobscript: JobScript) -> Command:
        """Return the command that submits ``jobscript`` (run in its workdir)."""
        raise NotImplementedError

    def get_job_id(self, response: str) -> str | None:
        """Return the job ID from the stdout of :meth:`cmd_submit`, or None."""
        raise NotImplementedError

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

    def cmd_cancel(self, run: AsyncResult) -> Command:
        """Return the command that cancels ``run``."""
        raise NotImplementedError

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
        resources = self.prepare_resources(dict(jobscript.resources), context)
        return self.render_headers(self.read_dashed_keys(resources), context, jobscript)

    def headers_take_context(self) -> bool:
        """Whether :meth:`resource_headers` accepts the submission ``context``.

        False for an override written against the original's
        ``resource_headers(self, jobscript)``: such a backend is given no tag
        and no dependencies (see :meth:`resource_headers`).
        """
        return _accepts_keyword(self.resource_headers, "context")

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

    def with_defaults(
        self, resources: Mapping[str, Any], defaults: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``resources`` plus each of ``defaults`` that the job does not set itself, under any spelling.

        For :meth:`prepare_resources`: on SLURM, ``{"queue": "batch"}`` is
        added unless the job has a ``queue`` resource or sets the partition
        another way (``partition``, ``-p``, ``--partition``; see
        :meth:`options_set_by`).
        """
        merged = dict(resources)
        for key, value in defaults.items():
            if key not in merged and not any(
                self.key_setting(merged, option) for option in self.options_set_by(key, value)
            ):
                merged[key] = value
        return merged

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

    def replace_body_vars(self, body: str) -> str:
        """Replace ``$CLUSTERJOB_*`` (and ``${CLUSTERJOB_*}``) by the scheduler's variables."""
        for core, native in self.job_vars.items():
            native_name = native.lstrip("$")
            body = _var_pattern(core.lstrip("$")).sub(_variable_replacement(native_name), body)
        return body

    # -- shared translation helpers -----------------------------------------

    def format_resource(self, key: str, value: Any) -> list[str]:
        """Arguments for one resource: :attr:`resource_replacements`, then the documented rule, values quoted."""
        return format_option(
            self.resource_replacements.get(key, key),
            value,
            quote=lambda text: self.quote(key, text),
        )

    def quote(self, key: str, value: Any, force: bool = False) -> str:
        """``value`` of resource ``key`` as one word of a header line (see :func:`~clusterjob.rendering.quote_value`).

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

    def key_setting(self, resources: Mapping[str, Any], option: str) -> str | None:
        """The key of ``resources`` that sets ``option`` (``-d`` or ``dependency`` for ``--dependency``), if any.

        For merging what clusterjob adds with the option as the user gave it
        (:func:`~clusterjob.rendering.merged_value`), under whichever key.
        """
        for key, value in resources.items():
            if (
                value is not None
                and value is not False
                and option in self.options_set_by(key, value)
            ):
                return key
        return None

    # -- keys given with their dashes ---------------------------------------------

    def read_dashed_keys(self, resources: Mapping[str, Any]) -> dict[str, Any]:
        """``resources`` with the keys given with their dashes (``-A``, ``--qos``) checked and read.

        INI files written for the original clusterjob name scheduler options
        with their dashes; such a key is the option itself. Backends call this
        first in :meth:`resource_headers`:

        1. A dashed key that is no option name (``-``, ``---x``, ``-A B``) is
           refused, naming the key.
        2. A dashed key that sets the same option as another resource
           (``-N`` and ``jobname`` on PBS, ``-t`` and ``time`` on SLURM, ``-l
           walltime=1:00:00`` and ``time``, ``-A`` and ``A``) is refused,
           naming both: the scheduler would silently take one of them.
        3. A dashed key that the documented rule writes from an undashed key
           the backend does not translate itself becomes that key (``-W`` ->
           ``W``), so that what the backend merges into one option (PBS
           ``-W``, SLURM ``--comment``, SGE ``-hold_jid``) is merged.
        4. Any other dashed key stays; :func:`format_option` writes it as it is.

        A dashed key whose value is None or False (which writes nothing) is left out.
        """
        given = {
            k: v for k, v in resources.items() if not (is_dashed(k) and (v is None or v is False))
        }
        for key, value in given.items():
            problem = dashed_key_problem(key) if is_dashed(key) else None
            if problem:
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express resource {key!r}={value!r}: {problem}"
                )
        self._check_option_conflicts(given)
        read: dict[str, Any] = {}
        for key, value in given.items():
            target = self._undashed_key(key) if is_dashed(key) else key
            if (
                target != key or target not in read
            ):  # a dashed key replaces its twin set to None/False
                read[target] = value
        return read

    def generic_option(self, key: str) -> str | None:
        """The option the documented rule writes for an undashed ``key`` the backend does not translate.

        None where the rule writes no option of that name (PBS writes a long
        key as the ``-l`` resource ``key=value``).
        """
        return f"-{key}" if len(key) == 1 else f"--{key}"

    def translated_keys(self) -> frozenset[str]:
        """The keys the backend translates itself (common keys, its own keys), never read from a dashed key."""
        return frozenset({*self.common_keys, "jobname", *self.resource_replacements})

    def options_set_by(self, key: str, value: Any) -> set[str]:
        """The options resource ``key`` sets, to find two resources that set the same one.

        A ``-l`` resource counts by its name, as ``'-l walltime'``. The
        default: a dashed key sets itself; a key in
        :attr:`resource_replacements` its replacement; another translated key
        nothing; any other key :meth:`generic_option`. Spellings are made one
        through :attr:`option_aliases`. Backends override this for the keys
        they write differently.
        """
        if is_dashed(key):
            option: str | None = key
        elif key in self.resource_replacements:
            option = format_option(self.resource_replacements[key], True)[0]
        elif key in self.translated_keys():
            option = None
        else:
            option = self.generic_option(key)
        return {self.option_aliases.get(option, option)} if option else set()

    def _check_option_conflicts(self, resources: Mapping[str, Any]) -> None:
        """Refuse a dashed key that sets an option another resource sets (see :meth:`read_dashed_keys`)."""
        setters: dict[str, list[str]] = {}
        for key, value in resources.items():
            if value is not None and value is not False:
                for option in self.options_set_by(key, value):
                    setters.setdefault(option, []).append(key)
        for option, keys in setters.items():
            dashed = [key for key in keys if is_dashed(key)]
            if dashed and len(keys) > 1:
                key = dashed[0]
                other = next(k for k in keys if k != key)
                remedy = (
                    f"{other} is clusterjob's own key for it: set {other} instead of {key}"
                    if other in self.translated_keys()
                    else "keep one of the two"
                )
                other_text = f"{other!r}" if is_dashed(other) else other
                raise ResourcesNotSupportedError(
                    f"backend {self.name!r} cannot express resource {key!r}={resources[key]!r}: "
                    f"resource {other_text}={resources[other]!r} already sets {option}; {remedy}"
                )

    def _undashed_key(self, key: str) -> str:
        """The undashed key the documented rule writes as the option ``key``, or ``key`` itself."""
        name = key[2:] if key.startswith("--") else key[1:]
        if name not in self.translated_keys() and self.generic_option(name) == key:
            return name
        return key

    # -- the status query, batch first ---------------------------------------

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
                f"backend {self.name!r} asks about one job per command (it implements cmd_status, not "
                f"status_command); got {len(runs)} runs"
            )
        return self.cmd_status(runs[0], finished)

    def parse_status(
        self, result: CommandResult, job_ids: Sequence[str], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Status code (None: the result does not tell) of each of ``job_ids``, from :meth:`status_command`.

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

    def asks_one_job_at_a_time(self) -> bool:
        """Whether clusterjob asks about each job with :meth:`cmd_status`/:meth:`get_status`.

        True for a backend with only the single-job form, and for a subclass
        that overrides one of those two methods of a batch backend (its
        override is what runs); False for the batch form.
        """
        return self._depth("cmd_status", "get_status") < self._depth(
            "status_command", "parse_status"
        )

    # -- crash recovery: find the job of an interrupted submission by its tag ----

    def tag_lookup_command(
        self, tag: str, remote: str | None = None, finished: bool = False
    ) -> Command | None:
        """A command that lists the jobs carrying ``tag``, or None if the backend cannot look one up.

        ``remote`` is the host the command runs on (None: this machine).
        ``finished=True`` asks for the second lookup, among jobs that left
        the queue (accounting), after :meth:`parse_tag_lookup` of the first
        said it does not cover them.

        Backends written against the earlier names, ``cmd_find_tag(tag, *,
        remote=None)`` (or ``cmd_find_tag(tag)``) and
        ``get_job_ids_for_tag(stdout, tag)``, keep working: this calls their
        ``cmd_find_tag`` (with ``remote`` only where it is accepted).
        """
        find_tag = getattr(self, "cmd_find_tag", None)
        if find_tag is None or finished:
            return None
        if _accepts_keyword(find_tag, "remote"):
            return find_tag(tag, remote=remote)
        return find_tag(tag)

    def parse_tag_lookup(
        self, result: CommandResult, tag: str, finished: bool = False
    ) -> list[str] | None:
        """Job IDs carrying ``tag``, from the whole result of :meth:`tag_lookup_command`.

        Return ``[]`` only when the result proves that no job carries the tag
        (clusterjob then submits); None when this lookup does not cover the
        jobs that left the queue (clusterjob then asks again with
        ``finished=True``); raise :class:`~clusterjob.errors.SubmitError` when
        the result cannot prove it (a failed command: the user must check by
        hand).

        For a backend with the earlier ``get_job_ids_for_tag(stdout, tag)``,
        this is that method.
        """
        get_ids = getattr(self, "get_job_ids_for_tag", None)
        if get_ids is None:
            raise NotImplementedError(
                f"backend {self.name!r} cannot look up jobs by tag: implement tag_lookup_command and parse_tag_lookup"
            )
        return list(get_ids(result.stdout, tag))

    def tag_lookup_methods(
        self,
    ) -> tuple[
        Callable[[str, str | None, bool], Command | None],
        Callable[[CommandResult, str, bool], list[str] | None],
    ]:
        """The (command, parser) pair clusterjob looks up tags with.

        :meth:`tag_lookup_command` and :meth:`parse_tag_lookup`, or for each,
        the base class's adapter over its earlier name (``cmd_find_tag``,
        ``get_job_ids_for_tag``) where a subclass defines that name nearer:
        so a subclass overriding the earlier name of a backend that has the
        new one has its override used.
        """
        command = self.tag_lookup_command
        if self._depth("cmd_find_tag") < self._depth("tag_lookup_command"):
            command = functools.partial(ClusterjobBackend.tag_lookup_command, self)
        parse = self.parse_tag_lookup
        if self._depth("get_job_ids_for_tag") < self._depth("parse_tag_lookup"):
            parse = functools.partial(ClusterjobBackend.parse_tag_lookup, self)
        return command, parse

    # -- optional extensions (the base class provides working defaults) --------

    def cmd_task_status(self, run: AsyncResult) -> Command | None:
        """Return a command listing the status of each task of an array job, or None."""
        return None

    def get_task_status(self, response: str, run: AsyncResult) -> dict[str, int]:
        """Map task ID -> status code from the output of :meth:`cmd_task_status`."""
        raise NotImplementedError(f"backend {self.name!r} cannot report array tasks")

    # -- what a backend implements ---------------------------------------------

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
                "a status query: status_command() and parse_status(), or cmd_status() and get_status()"
            )
        writes_headers = cls._overrides("render_headers") or cls._overrides("resource_headers")
        looks_up = cls._depth("tag_lookup_command", "cmd_find_tag") < len(cls.__mro__)
        if looks_up and not writes_headers:
            problems.append(
                "render_headers() that writes context.tag into the job (crash recovery needs a tag "
                "attached and looked up, or neither; the base class's headers carry no tag)"
            )
        return problems

    @classmethod
    def _overrides(cls, name: str) -> bool:
        """Whether a subclass defines ``name`` (rather than inheriting the base class's own)."""
        return getattr(cls, name, None) is not getattr(ClusterjobBackend, name, None)

    @classmethod
    def _depth(cls, *names: str) -> int:
        """How far up the MRO the nearest subclass definition of any of ``names`` is (no such: past the end)."""
        for depth, klass in enumerate(cls.__mro__):
            if klass is not ClusterjobBackend and any(name in vars(klass) for name in names):
                return depth
        return len(cls.__mro__)

    def _no_status_query(self) -> str:
        return (
            f"backend {self.name!r} has no status query: implement status_command() and parse_status() "
            "(one command for many jobs), or cmd_status() and get_status() (one job per command)"
        )

    # -- helpers for implementers -------------------------------------------

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
