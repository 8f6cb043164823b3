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

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Union

from clusterjob.errors import ClusterjobError

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.jobscript import JobScript

__all__ = [
    "CORE_VARIABLES",
    "ClusterjobBackend",
    "Command",
    "ResourcesNotSupportedError",
    "dashed_key_problem",
    "format_option",
    "is_dashed",
    "positive_int",
    "resource_list_names",
]

#: A command as accepted by :func:`subprocess.Popen`: argument list, or a shell string.
Command = Union[Sequence[str], str]

#: The core environment variables every backend maps to its scheduler's names.
CORE_VARIABLES: tuple[str, ...] = (
    "CLUSTERJOB_ID",
    "CLUSTERJOB_WORKDIR",
    "CLUSTERJOB_SUBMIT_HOST",
    "CLUSTERJOB_NAME",
    "CLUSTERJOB_NODELIST",
)


class ResourcesNotSupportedError(ClusterjobError):
    """A backend is unable to encode a resource requirement.

    The message names the resource key (and value) the backend cannot express.
    """


#: A key given with its dashes: one dash and a name (``-A``, ``-hold_jid``), or
#: two dashes and a name whose words may be joined by single dashes (``--qos``,
#: ``--mail-type``).
_ONE_DASH_KEY = re.compile(r"^-[A-Za-z][A-Za-z0-9_]*$")
_TWO_DASH_KEY = re.compile(r"^--[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*$")


def is_dashed(key: str) -> bool:
    """Whether resource ``key`` names a scheduler option with its dashes (``-A``, ``--qos``)."""
    return key.startswith("-")


def dashed_key_problem(key: str) -> str | None:
    """Why ``key`` (which starts with ``-``) is no option name, with the remedy; None if it is one.

    INI files written for the original clusterjob wrote options with their
    value in the key (``-j oe = true``); the remedy for those says where the
    value goes.
    """
    if _ONE_DASH_KEY.match(key) or _TWO_DASH_KEY.match(key):
        return None
    why = (
        "an option given with its dashes is one dash and a name (-A, -hold_jid) "
        "or two dashes and a name (--qos, --mail-type)"
    )
    option, _, rest = key.replace("=", " ", 1).partition(" ")
    if rest.strip() and dashed_key_problem(option) is None:
        return f"{why}; write the option's value after the '=' of the INI line: {option} = {rest.strip()}"
    return why


def format_option(key: str, value: Any, quote: Callable[[str], str] = str) -> list[str]:
    """Translate one resource into command-line arguments, by the documented rule.

    Single-letter keys become ``-X value``, longer keys ``--key=value``;
    ``True`` gives the bare flag and ``False``/``None`` gives nothing::

        contiguous=True          -> ['--contiguous']
        dependency='after:12454' -> ['--dependency=after:12454']
        F='nodefile.txt'         -> ['-F', 'nodefile.txt']

    A key given with its dashes is that option as it stands: ``-A`` ->
    ``-A value``, ``--qos`` -> ``--qos=value``, ``-hold_jid`` -> ``-hold_jid
    value``. ``quote`` writes the value the way the backend's header lines
    need it.

    Raises:
        ResourcesNotSupportedError: for a dashed key that is no option name (``-A B``, ``---x``).
    """
    if value is None or value is False:
        return []
    if is_dashed(key):
        problem = dashed_key_problem(key)
        if problem:
            raise ResourcesNotSupportedError(f"cannot express resource {key!r}={value!r}: {problem}")
        flag, joined = key, key.startswith("--")
    else:
        flag, joined = (f"-{key}", False) if len(key) == 1 else (f"--{key}", True)
    if value is True:
        return [flag]
    if joined:
        return [f"{flag}={quote(str(value))}"]
    return [flag, quote(str(value))]


def resource_list_names(value: Any) -> list[str]:
    """The names in a ``-l`` resource list: ``nodes=2:ppn=4,walltime=1:00:00`` -> nodes, walltime.

    PBS and Grid Engine take comma-separated ``name=value`` items after
    ``-l`` (PBS Pro's ``select=`` chunk counts as the one name ``select``).
    """
    return [item.split("=", 1)[0].split(":", 1)[0].strip() for item in str(value).split(",") if item.strip()]


def positive_int(backend: str, key: str, value: Any) -> int:
    """``value`` as an integer >= 1, or :class:`ResourcesNotSupportedError` naming ``key``.

    For the counts of the parallelization model (``nodes``, ``ppn``,
    ``threads``) and ``mem``, which arrive as ints from Python and as strings
    from INI files. Booleans are refused: ``nodes=True`` is a mistake, not 1.
    """
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else 0
    except ValueError:
        number = 0
    if number < 1:
        raise ResourcesNotSupportedError(
            f"backend {backend!r} cannot express resource {key}={value!r}: {key} must be a positive integer"
        )
    return number


def _var_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\$(?:\{" + name + r"\}|" + name + r"(?![A-Za-z0-9_]))")


def _variable_replacement(native_name: str) -> Callable[[re.Match[str]], str]:
    """Keep the form the body used: ``$X`` stays bare, ``${X}`` keeps its braces."""
    return lambda match: "${" + native_name + "}" if match.group(0).startswith("${") else "$" + native_name


class ClusterjobBackend:
    """Base class of all clusterjob backends.

    Subclasses set the class attributes and implement ``cmd_submit``,
    ``get_job_id``, ``cmd_status``, ``get_status``, ``cmd_cancel`` (and
    usually ``resource_headers``). The base class provides the shared
    translation logic: the documented option rule (:func:`format_option`),
    ``$CLUSTERJOB_*`` substitution from :attr:`job_vars`, and the optional
    batched status query, which falls back to one query per job.

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

    #: The methods a backend must implement (checked by ``register_backend``).
    required_methods: ClassVar[tuple[str, ...]] = (
        "cmd_submit",
        "get_job_id",
        "cmd_status",
        "get_status",
        "cmd_cancel",
    )

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
        """
        raise NotImplementedError

    def get_status(self, response: str, finished: bool = False) -> int | None:
        """Return a :mod:`clusterjob.status` code from the stdout of :meth:`cmd_status`.

        ``None`` means the output does not tell (e.g. the job left the queue);
        the caller then asks again with ``finished=True``.
        """
        raise NotImplementedError

    def cmd_cancel(self, run: AsyncResult) -> Command:
        """Return the command that cancels ``run``."""
        raise NotImplementedError

    def resource_headers(self, jobscript: JobScript) -> list[str]:
        """Return header lines (no newlines) encoding ``jobscript.resources``.

        The default emits one ``prefix option`` line per resource, sorted by
        key, translating keys through :attr:`resource_replacements` and the
        documented option rule. Backends whose schedulers group options (PBS
        ``-l``, LSF ``-R``) override this.
        """
        lines = []
        for key, value in sorted(self.read_dashed_keys(jobscript.resources).items()):
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
        """Arguments for one resource: :attr:`resource_replacements`, then the documented rule."""
        return format_option(self.resource_replacements.get(key, key), value)

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
        given = {k: v for k, v in resources.items() if not (is_dashed(k) and (v is None or v is False))}
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
            if target != key or target not in read:  # a dashed key replaces its twin set to None/False
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

    # -- optional extensions (the base class provides working fallbacks) ------

    def cmd_status_many(self, runs: Sequence[AsyncResult], finished: bool = False) -> Command | None:
        """Return one command that queries all ``runs`` at once, or None if unsupported.

        Returning None makes the poller fall back to one :meth:`cmd_status` per run.
        """
        return None

    def get_status_many(
        self, response: str, runs: Sequence[AsyncResult], finished: bool = False
    ) -> Mapping[str, int | None]:
        """Map job ID -> status code (or None) from the output of :meth:`cmd_status_many`."""
        raise NotImplementedError(f"backend {self.name!r} has no batched status query")

    def dependency_resources(self, job_ids: Sequence[str]) -> dict[str, Any]:
        """Resources that make a job start only after all ``job_ids`` completed successfully."""
        raise ResourcesNotSupportedError(
            f"backend {self.name!r} cannot express job dependencies (after=...)"
        )

    def tag_resources(self, tag: str) -> dict[str, Any]:
        """Resources that attach ``tag`` to the submitted job, so that a job
        whose submission was interrupted can be found again (see :meth:`cmd_find_tag`).

        Return an empty dict if the scheduler cannot carry a tag.
        """
        return {}

    def cmd_find_tag(self, tag: str, *, remote: str | None = None) -> Command | None:
        """Return a command listing the jobs that carry ``tag``, or None if unsupported.

        ``remote`` is the host the command will run on (None: this machine),
        for backends whose command depends on it. Backends written before it
        existed (``cmd_find_tag(self, tag)``) keep working: clusterjob passes
        ``remote`` only to methods that accept it.
        """
        return None

    def get_job_ids_for_tag(self, response: str, tag: str) -> list[str]:
        """Job IDs carrying ``tag`` in the output of :meth:`cmd_find_tag`.

        Return ``[]`` only when the output proves that no job carries the tag
        (clusterjob then submits); raise :class:`~clusterjob.errors.SubmitError`
        when the output cannot prove it (the user must check by hand).
        """
        raise NotImplementedError(f"backend {self.name!r} cannot look up jobs by tag")

    def cmd_task_status(self, run: AsyncResult) -> Command | None:
        """Return a command listing the status of each task of an array job, or None."""
        return None

    def get_task_status(self, response: str, run: AsyncResult) -> dict[str, int]:
        """Map task ID -> status code from the output of :meth:`cmd_task_status`."""
        raise NotImplementedError(f"backend {self.name!r} cannot report array tasks")

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
