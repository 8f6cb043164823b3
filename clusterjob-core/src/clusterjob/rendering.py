"""Writing resources into scheduler header lines: the pieces every backend shares.

- :class:`SubmissionContext`: what a submission adds to a job beside its
  resources (the crash-recovery tag, the jobs to wait for), handed to the
  backend explicitly.
- :func:`format_option`: the documented rule for keys a backend does not
  translate itself, and the checks of keys given with their dashes
  (:func:`is_dashed`, :func:`dashed_key_problem`).
- :func:`quote_value`: a value as one word of a header line.
- :func:`merged_value`: one option carrying both the user's own value and
  what clusterjob adds (the tag in a ``--comment``, dependencies in a
  ``-hold_jid``).
- :func:`positive_int`, :func:`megabytes`, :func:`resource_list_names`: counts,
  memory and ``-l`` resource lists.
- :func:`cannot_express`: the error for a resource a backend cannot write.

Walltimes are in :mod:`clusterjob.walltime`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clusterjob.errors import ResourcesNotSupportedError

__all__ = [
    "PLAIN_VALUE",
    "SubmissionContext",
    "cannot_express",
    "dashed_key_problem",
    "format_option",
    "is_dashed",
    "megabytes",
    "merged_value",
    "positive_int",
    "quote_value",
    "resource_list_names",
]


@dataclass(frozen=True)
class SubmissionContext:
    """What clusterjob adds to a job when it submits it, passed to the backend's rendering.

    Attributes:
        tag: the crash-recovery tag the job must carry, so that the backend's
            tag lookup finds the job after an interrupted submission (None:
            no tag, e.g. without a cache folder).
        after: IDs of the jobs that must complete successfully before this
            one starts (``submit(after=...)``).
    """

    tag: str | None = None
    after: tuple[str, ...] = ()


def cannot_express(backend: str, key: str, value: Any, why: str) -> ResourcesNotSupportedError:
    """The error for a resource ``key=value`` that ``backend`` cannot write, and ``why``."""
    return ResourcesNotSupportedError(
        f"backend {backend!r} cannot express resource {key}={value!r}: {why}"
    )


# -- the documented option rule and keys given with their dashes -----------------

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
        return (
            f"{why}; write the option's value after the '=' of the INI line: "
            f"{option} = {rest.strip()}"
        )
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
            raise ResourcesNotSupportedError(
                f"cannot express resource {key!r}={value!r}: {problem}"
            )
        flag, joined = key, key.startswith("--")
    else:
        flag, joined = (f"-{key}", False) if len(key) == 1 else (f"--{key}", True)
    if value is True:
        return [flag]
    if joined:
        return [f"{flag}={quote(str(value))}"]
    return [flag, quote(str(value))]


# -- header values -----------------------------------------------------------------

#: What stands in a header line without quotes unless a backend says otherwise:
#: anything without blanks, quotes and backslashes (so ``sbatch``, ``qsub`` and
#: ``bsub``, which split directive lines like a shell, read it as one word).
PLAIN_VALUE = re.compile(r"[^\s'\"\\]*")


def quote_value(
    value: Any, plain: re.Pattern[str] = PLAIN_VALUE, *, escapes: bool = True, force: bool = False
) -> str:
    r"""``value`` as one word of a header line: as is if it matches ``plain``, else double-quoted.

    ``escapes``: the scheduler reads ``\\`` as ``\`` and ``\"`` as ``"``
    inside double quotes (sbatch, qsub, bsub), so any value can be quoted.
    Without (Grid Engine), a value that needs quotes and holds a double quote
    cannot be written. ``force`` quotes a plain value too (LSF's ``-R
    "span[ptile=4]"``, as IBM writes it).

    Raises:
        ValueError: saying why ``value`` cannot stand in a header line (a line
            break would end the line and run the rest as a command).
    """
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError("a line break cannot stand")
    if not force and plain.fullmatch(text):
        return text
    if escapes:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if '"' in text:
        raise ValueError("a value with blanks and double quotes cannot be quoted")
    return f'"{text}"'


def merged_value(given: Any, added: Sequence[str], separator: str) -> Any:
    """One option's value: the user's ``given`` value and clusterjob's ``added`` parts.

    The user's value comes first and is kept as it is; ``added`` follows,
    joined by ``separator`` (``' '`` for a comment, ``','`` for a list, ``'
    && '`` for a condition). Without additions, ``given`` is returned
    unchanged, so the option is written exactly as it would have been. A
    ``given`` of None, False, True (a bare flag) or ``''`` holds no value, and
    only ``added`` is written.
    """
    if not added:
        return given
    kept = [] if given is None or given is False or given is True or given == "" else [str(given)]
    return separator.join([*kept, *added])


# -- counts, memory, resource lists ----------------------------------------------------


def positive_int(backend: str, key: str, value: Any) -> int:
    """``value`` as an integer >= 1, or :class:`ResourcesNotSupportedError` naming ``key``.

    For the counts of the parallelization model (``nodes``, ``ppn``,
    ``threads``), which arrive as ints from Python and as strings from INI
    files. Booleans are refused: ``nodes=True`` is a mistake, not 1.
    """
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else 0
    except ValueError:
        number = 0
    if number < 1:
        raise cannot_express(backend, key, value, f"{key} must be a positive integer")
    return number


def megabytes(backend: str, value: Any) -> int:
    """The ``mem`` resource, the memory per node in MB, as a positive integer.

    Raises:
        ResourcesNotSupportedError: naming the value and the unit.
    """
    try:
        return positive_int(backend, "mem", value)
    except ResourcesNotSupportedError:
        raise cannot_express(
            backend, "mem", value, "mem is the memory per node in MB, a positive integer"
        ) from None


def resource_list_names(value: Any) -> list[str]:
    """The names in a ``-l`` resource list: ``nodes=2:ppn=4,walltime=1:00:00`` -> nodes, walltime.

    PBS and Grid Engine take comma-separated ``name=value`` items after
    ``-l`` (PBS Pro's ``select=`` chunk counts as the one name ``select``).
    """
    return [
        item.split("=", 1)[0].split(":", 1)[0].strip()
        for item in str(value).split(",")
        if item.strip()
    ]
