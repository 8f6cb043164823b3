"""The :class:`JobScript`: a shell script plus resources, backend and submission settings."""

from __future__ import annotations

import copy
import logging
import os
import posixpath
import re
import shutil
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from clusterjob import submission
from clusterjob.backends import ClusterjobBackend, ResourcesNotSupportedError
from clusterjob.config import read_ini
from clusterjob.errors import ConfigError
from clusterjob.markers import insert_marker_lines
from clusterjob.plugins import (
    backend_names,
    check_backend_interface,
    get_backend,
    registered_backends,
)
from clusterjob.transport import get_transport
from clusterjob.utils import join_dirs

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.async_result import AsyncResult
    from clusterjob.rendering import SubmissionContext

__all__ = ["JobScript"]

logger = logging.getLogger("clusterjob")

#: Class attributes that instances may not shadow.
CLASS_ONLY = ("cache_folder", "cache_prefix", "resources")

#: Attributes whose value must be a non-empty string.
_NON_EMPTY_STR = ("backend", "shell", "ssh", "scp", "cache_prefix")
_STR = ("prologue", "epilogue")
_OPTIONAL_STR = ("remote", "filename", "cache_folder", "marker_folder")
_DIRS = ("rootdir", "workdir")

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:![rsa])?(?::[^{}]*)?)\}")


def _strip_trailing_slash(path: str) -> str:
    stripped = path.rstrip("/")
    return stripped if stripped or not path else "/"


def _none_if_empty(value: Any) -> Any:
    return None if value in ("", "None") else value


def check_attribute(owner: str, name: str, value: Any) -> Any:
    """Validate (and normalize) an attribute value; ValueError names the attribute."""
    if name in _DIRS:
        if not isinstance(value, str):
            raise ValueError(f"{owner}.{name} must be a string, not {value!r}")
        return _strip_trailing_slash(value)
    if name in _NON_EMPTY_STR:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{owner}.{name} must be a non-empty string, not {value!r}")
        if name == "cache_prefix" and "/" in value:
            raise ValueError(f"{owner}.cache_prefix must not contain '/': {value!r}")
        return value
    if name in _STR:
        if not isinstance(value, str):
            raise ValueError(f"{owner}.{name} must be a string, not {value!r}")
        return value
    if name in _OPTIONAL_STR:
        value = _none_if_empty(value)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{owner}.{name} must be a string or None, not {value!r}")
        return value
    if name == "max_sleep_interval":
        return _positive_seconds(owner, name, value)
    if name == "exit_markers":
        return _boolean(owner, name, value)
    if name == "max_array_size":
        return _positive_count(owner, name, value)
    if name == "resources":
        if not isinstance(value, Mapping):
            raise ValueError(f"{owner}.resources must be a dict, not {value!r}")
        return OrderedDict(value)
    return value


def _positive_seconds(owner: str, name: str, value: Any) -> int | float:
    """A positive number of seconds: an integer as documented, or a fraction.

    Reading exit markers costs the scheduler nothing, so a wait on short jobs
    may look more often than once a second.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not 0 < number < float("inf"):
        raise ValueError(f"{owner}.{name} must be a positive number of seconds, not {value!r}")
    return int(number) if number == int(number) else number


def _positive_count(owner: str, name: str, value: Any) -> int | None:
    """A whole number of at least 1 (an INI file's text too), or None (unset)."""
    value = _none_if_empty(value)
    if value is None:
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else 0
    except ValueError:
        number = 0
    if number < 1 or (isinstance(value, float) and value != number):
        raise ValueError(f"{owner}.{name} must be a whole number of at least 1, not {value!r}")
    return number


_BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEAN_WORDS.update({"false": False, "no": False, "off": False, "0": False})


def _boolean(owner: str, name: str, value: Any) -> bool:
    """True/False, or its word in an INI file (``yes``/``no``, ``on``/``off``, ``1``/``0``)."""
    if isinstance(value, bool):
        return value
    word = _BOOLEAN_WORDS.get(str(value).strip().lower())
    if word is None:
        raise ValueError(f"{owner}.{name} must be true or false, not {value!r}")
    return word


class _JobScriptMeta(type):
    """Validates class-level assignments and offers ``JobScript.backends``."""

    def __setattr__(cls, name: str, value: Any) -> None:
        super().__setattr__(name, check_attribute(cls.__name__, name, value))
        _known_attributes.clear()
        _known_values.clear()

    def __delattr__(cls, name: str) -> None:
        super().__delattr__(name)
        _known_attributes.clear()
        _known_values.clear()

    @property
    def backends(cls) -> list[str]:
        """Names of all available backends (discovered plugins and registered ones)."""
        return backend_names()


class JobScript(metaclass=_JobScriptMeta):
    """Encapsulation of a job script.

    Args:
        body: body template of the job script (rendered by :meth:`render_script`).
        jobname: name of the job, stored in ``resources['jobname']``.
        aux_scripts: filename -> body of auxiliary scripts written next to the job script.
        **kwargs: known attributes (``backend``, ``shell``, ``remote``, …) set the
            instance attribute; anything else becomes a resource
            (``queue``, ``time``, ``nodes``, ``ppn``, ``threads``, ``mem``,
            ``stdout``, ``stderr``, or backend-specific options).
    """

    # instance-only attributes, set by __init__
    body: str
    aux_scripts: dict[str, str]

    # class-only attributes
    cache_folder: str | None = None
    cache_prefix: str = "clusterjob"
    resources: OrderedDict[str, Any] = OrderedDict()

    # class/instance attributes
    backend: str = "slurm"
    shell: str = "/bin/bash"
    remote: str | None = None
    rootdir: str = "."
    workdir: str = "."
    filename: str | None = None
    prologue: str = ""
    epilogue: str = ""
    max_sleep_interval: int | float = 900
    marker_folder: str | None = None
    exit_markers: bool = True
    max_array_size: int | None = None
    ssh: str = "ssh"
    scp: str = "scp"

    def __init__(
        self, body: str, jobname: str, aux_scripts: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        if not isinstance(body, str):
            raise ValueError(f"JobScript body must be a string, not {body!r}")  # noqa: TRY004 - as the original
        if not isinstance(jobname, str) or not jobname:
            raise ValueError(f"JobScript jobname must be a non-empty string, not {jobname!r}")
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "aux_scripts", dict(aux_scripts or {}))
        resources: OrderedDict[str, Any] = OrderedDict(type(self).resources)
        resources["jobname"] = jobname
        object.__setattr__(self, "resources", resources)
        known = _class_attribute_names(type(self))
        for key, value in kwargs.items():
            if key in known or key in CLASS_ONLY:
                setattr(self, key, value)
            else:
                self.resources[key] = value

    # -- attributes ---------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute, refusing to shadow the class-only attributes and checking values."""
        if name in CLASS_ONLY:
            hint = (
                "modify jobscript.resources[key] instead"
                if name == "resources"
                else f"set JobScript.{name} or use JobScript.read_defaults()"
            )
            raise AttributeError(
                f"'{name}' is a class attribute of JobScript and cannot be set on an instance; "
                f"{hint}"
            )
        if name == "backends":
            raise AttributeError("'backends' is read-only; use JobScript.register_backend()")
        object.__setattr__(self, name, check_attribute("JobScript", name, value))

    @property
    def backends(self) -> list[str]:
        """Names of all available backends."""
        return backend_names()

    @classmethod
    def register_backend(cls, backend: ClusterjobBackend, name: str | None = None) -> None:
        """Register ``backend`` under ``name`` (default: its ``name``), before discovered plugins.

        Raises:
            TypeError: if ``backend`` is not a ClusterjobBackend or lacks a required method.
            AttributeError: if ``backend`` has no ``name`` or ``extension``.
        """
        if not isinstance(backend, ClusterjobBackend):
            raise TypeError(
                f"{backend!r} is not an instance of clusterjob.backends.ClusterjobBackend"
            )
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(f"backend name must be a non-empty string, not {name!r}")
            backend.name = name
        check_backend_interface(backend)
        registered_backends[backend.name] = backend

    @classmethod
    def clear_cache_folder(cls) -> None:
        """Remove all files in the cache_folder."""
        if cls.cache_folder is None:
            return
        folder = os.path.expanduser(cls.cache_folder)
        if not os.path.isdir(folder):
            return
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)

    @classmethod
    def read_defaults(cls, filename: str | None = None) -> None:
        """Set class attributes and default resources from an INI file.

        Without ``filename``, restore the pristine class: documented defaults,
        empty default resources, no extra attributes.
        """
        if filename is None:
            for name in list(vars(cls)):
                if name not in _PRISTINE and not name.startswith("_") and not _is_machinery(name):
                    delattr(cls, name)
            for name, value in _PRISTINE.items():
                setattr(cls, name, copy.copy(value))
            return
        settings = read_ini(filename)
        _apply_attributes(cls, settings.attributes, settings.filename, class_level=True)
        cls.resources.update(settings.resources)

    def read_settings(self, filename: str) -> None:
        """Like :meth:`read_defaults`, but sets instance attributes and this job's resources."""
        settings = read_ini(filename)
        _apply_attributes(self, settings.attributes, settings.filename, class_level=False)
        self.resources.update(settings.resources)

    # -- rendering ------------------------------------------------------------

    def _get_backend(self) -> ClusterjobBackend:
        return get_backend(self.backend)

    def template_values(self) -> dict[str, Any]:
        """Values for ``{placeholders}``: resources > instance attributes > class attributes."""
        values = dict(_class_values(type(self)))
        values.update({k: v for k, v in vars(self).items() if not k.startswith("_")})
        values.update(self.resources)
        return values

    def render_script(
        self, scriptbody: str, jobscript: bool = False, *, context: SubmissionContext | None = None
    ) -> str:
        """Render a script body: shebang, resource headers (job script), variables, placeholders.

        Steps, as documented: (1) add ``#!{shell}`` unless the first line is a
        shebang; (2) with ``jobscript=True`` add the backend's resource
        headers; (3) map ``$CLUSTERJOB_*`` to the backend's variables; (4)
        format each line with known attributes. A line whose other braces
        are not valid format syntax (``${HOME}``, awk programs) keeps them:
        only the known ``{name}`` placeholders on it are replaced.

        ``context`` (given by :meth:`submit`) is what the submission adds to
        the headers: the crash-recovery tag and the jobs to wait for.
        """
        backend = self._get_backend()
        first, _, rest = scriptbody.partition("\n")
        if first.startswith("#!"):
            shebang, body = first, rest
        else:
            shebang, body = f"#!{self.shell}", scriptbody
        lines = [shebang]
        if jobscript:
            headers = (
                backend.resource_headers(self)
                if context is None
                else backend.resource_headers(self, context=context)
            )
            lines.extend(_single_lines(headers, self.resources, backend.name))
        rendered = "\n".join(lines) + "\n" + backend.replace_body_vars(body)
        values = self.template_values()
        return "\n".join(_format_line(line, values) for line in rendered.split("\n"))

    def __str__(self) -> str:
        """The fully rendered job script."""
        return self.render_script(self.body, jobscript=True)

    # -- files ------------------------------------------------------------------

    def script_filename(self) -> str:
        """``filename``, or the job name with the backend's extension."""
        if self.filename:
            return self.filename
        return f"{self.resources['jobname']}.{self._get_backend().extension}"

    def job_folder(self) -> str:
        """``rootdir/workdir`` on the submit host."""
        return join_dirs(self.rootdir, self.workdir)

    def write(self, filename: str | None = None) -> None:
        """Write the rendered job script (and its auxiliary scripts).

        With ``filename``, write that local file (``~`` expanded). Otherwise
        write ``filename`` in ``rootdir/workdir``, locally or on ``remote``,
        creating the folder if needed.
        """
        self.write_files(filename)

    def write_files(
        self,
        filename: str | None = None,
        context: SubmissionContext | None = None,
        marker_lines: Sequence[str] = (),
    ) -> None:
        """:meth:`write`: the folder and every file with one
        :meth:`~clusterjob.transport.Transport.write_files` (one round trip on a remote).

        The job script is rendered with the submission ``context`` (see :meth:`render_script`);
        ``marker_lines`` go after its leading block (see :mod:`clusterjob.markers`).
        """
        if filename is not None:
            path = os.path.expanduser(filename)
            folder = os.path.dirname(path)
            transport = get_transport(None)
        else:
            folder = self.job_folder()
            path = posixpath.join(folder, self.script_filename())
            transport = get_transport(self.remote, ssh=self.ssh, scp=self.scp)
        transport.write_files(
            self.rendered_files(path, context, marker_lines), [folder] if folder else []
        )

    def rendered_files(
        self,
        path: str | None = None,
        context: SubmissionContext | None = None,
        marker_lines: Sequence[str] = (),
    ) -> list[tuple[str, str, bool]]:
        """(path, contents, executable) of the job script and its auxiliary scripts, as
        :meth:`write_files` writes them: the job script at ``path`` (default: in the job folder),
        the auxiliary scripts beside it."""
        if path is None:
            path = posixpath.join(self.job_folder(), self.script_filename())
        folder = posixpath.dirname(path)
        script = self.render_script(self.body, jobscript=True, context=context)
        if marker_lines:
            script = insert_marker_lines(script, marker_lines)
        files = [(path, script, True)]
        for aux_name, aux_body in self.aux_scripts.items():
            aux_path = posixpath.join(folder, aux_name) if folder else aux_name
            files.append((aux_path, self.render_script(aux_body), True))
        return files

    # -- submission ---------------------------------------------------------

    def submit(
        self,
        block: bool = False,
        cache_id: str | None = None,
        force: bool = False,
        retry: bool = True,
        after: list[Any] | None = None,
    ) -> AsyncResult | int:
        """Run the prologue, then submit the job; see :func:`clusterjob.submission.submit`.

        Args:
            block: wait until the job finished and return its status code
                instead of an :class:`~clusterjob.AsyncResult`.
            cache_id: identifies the submission in ``cache_folder``; a cached
                result is returned instead of submitting again (the prologue
                is not rerun). Default: derived from the rendered job.
            force: discard any cached result and submit.
            retry: resubmit if the cached result finished CANCELLED/FAILED.
            after: results (or job IDs) that must complete successfully
                before this job starts (translated by the backend).
        """
        return submission.submit(
            self, block=block, cache_id=cache_id, force=force, retry=retry, after=after
        )


def _is_machinery(name: str) -> bool:
    return name in _MACHINERY


#: Per class, the attribute names keyword arguments may set; cleared when a class attribute changes.
_known_attributes: dict[type, frozenset[str]] = {}

#: Per class, the values its attributes give placeholders; cleared when a class attribute changes
#: (rendering a batch of jobs would otherwise walk every class's attributes once per job).
_known_values: dict[type, dict[str, Any]] = {}


def _class_values(cls: type) -> dict[str, Any]:
    if cls not in _known_values:
        values: dict[str, Any] = {}
        for klass in reversed(cls.__mro__[:-1]):
            for name, value in vars(klass).items():
                if not name.startswith("_") and not _is_machinery(name) and not callable(value):
                    values[name] = value
        _known_values[cls] = values
    return _known_values[cls]


def _class_attribute_names(cls: type) -> frozenset[str]:
    if cls not in _known_attributes:
        _known_attributes[cls] = frozenset(_collect_attribute_names(cls))
    return _known_attributes[cls]


def _collect_attribute_names(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__[:-1]:
        names.update(
            n
            for n, v in vars(klass).items()
            if not n.startswith("_") and not _is_machinery(n) and not callable(v)
        )
    return names - set(CLASS_ONLY)


def _apply_attributes(
    target: Any, attributes: dict[str, str], filename: str, class_level: bool
) -> None:
    """Validate every value first, then set them: a faulty file changes nothing."""
    checked = {}
    for key, value in attributes.items():
        where = f"config file {filename!r}, section [Attributes], key {key!r}"
        if not class_level and key in CLASS_ONLY:
            raise ConfigError(
                f"{where}: {key!r} is a class attribute; set it with JobScript.read_defaults()"
            )
        if key in _MACHINERY or key in ("body", "aux_scripts"):
            raise ConfigError(f"{where}: {key!r} is reserved and may not be set from a config file")
        try:
            checked[key] = check_attribute("JobScript", key, value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    for key, value in checked.items():
        setattr(target, key, value)


def _single_lines(headers: list[str], resources: Mapping[str, Any], backend_name: str) -> list[str]:
    """``headers``, unless one holds a line break (the rest would run as a command)."""
    for line in headers:
        if "\n" in line or "\r" in line:
            culprits = [
                f"{k}={v!r}"
                for k, v in resources.items()
                if isinstance(v, str) and ("\n" in v or "\r" in v)
            ]
            raise ResourcesNotSupportedError(
                f"resource {culprits[0] if culprits else repr(line)}: a line break cannot go "
                f"into a job script header (backend {backend_name!r}); the rest of the value "
                "would run as a command"
            )
    return headers


def _format_line(line: str, values: dict[str, Any]) -> str:
    if "{" not in line:
        return line
    try:
        return line.format_map(values)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        pass

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        try:
            return ("{0" + match.group(2) + "}").format(values[name])
        except (ValueError, TypeError):
            return match.group(0)

    return _PLACEHOLDER.sub(replace, line)


#: Names defined on JobScript that are methods/properties, not template attributes.
_MACHINERY = frozenset(
    name
    for name, value in vars(JobScript).items()
    if callable(value) or isinstance(value, (property, classmethod, staticmethod))
) | {"backends"}

#: The documented defaults, restored by ``read_defaults()`` without a file. Copies, so
#: that ``JobScript.resources[...] = ...`` or ``read_defaults(file)`` on the class (which
#: update the class's own dict in place) cannot change what "pristine" means.
_PRISTINE: dict[str, Any] = {
    name: copy.copy(value)
    for name, value in vars(JobScript).items()
    if not name.startswith("_") and name not in _MACHINERY
}
