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
    "ClusterjobBackend",
    "ResourcesNotSupportedError",
    "Command",
    "format_option",
    "positive_int",
    "CORE_VARIABLES",
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


def format_option(key: str, value: Any) -> list[str]:
    """Translate one resource into command-line arguments, by the documented rule.

    Single-letter keys become ``-X value``, longer keys ``--key=value``;
    ``True`` gives the bare flag and ``False``/``None`` gives nothing::

        contiguous=True          -> ['--contiguous']
        dependency='after:12454' -> ['--dependency=after:12454']
        F='nodefile.txt'         -> ['-F', 'nodefile.txt']
    """
    if value is None or value is False:
        return []
    flag = f"-{key}" if len(key) == 1 else f"--{key}"
    if value is True:
        return [flag]
    if len(key) == 1:
        return [flag, str(value)]
    return [f"{flag}={value}"]


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
    """

    name: str = ""
    extension: str = ""
    prefix: str = ""
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
        for key, value in sorted(jobscript.resources.items()):
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

    def cmd_find_tag(self, tag: str) -> Command | None:
        """Return a command listing the jobs that carry ``tag``, or None if unsupported."""
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
