"""Walltimes: reading the documented ``time`` formats and writing each scheduler's notation.

A job's ``time`` resource is given in any of SLURM's formats (see
:func:`time_to_seconds`). Each scheduler wants it in its own notation: PBS
``walltime`` and Grid Engine ``h_rt`` as ``HH:MM:SS``, LSF ``-W`` in whole
minutes, SLURM ``--time`` in its own formats. :meth:`Walltime.read` checks the
value once, with one error message for every backend, and the methods of
:class:`Walltime` write the notations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clusterjob.rendering import cannot_express

__all__ = ["WALLTIME_FORMATS", "Walltime", "time_to_minutes", "time_to_seconds"]

_TIME_PATTERNS = [
    # the documented formats, in the order of the documentation
    re.compile(r"^(?P<m>\d+)$"),
    re.compile(r"^(?P<m>\d+):(?P<s>\d+)$"),
    re.compile(r"^(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)$"),
    re.compile(r"^(?P<d>\d+)-(?P<h>\d+)$"),
    re.compile(r"^(?P<d>\d+)-(?P<h>\d+):(?P<m>\d+)$"),
    re.compile(r"^(?P<d>\d+)-(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)$"),
    re.compile(r"^(?P<d>\d+):(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)$"),
]

#: The accepted formats, as the error messages name them.
WALLTIME_FORMATS = (
    "minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes, "
    "days-hours:minutes:seconds or days:hours:minutes:seconds"
)

_DAYS_COLONS = re.compile(r"^(\d+):(\d+:\d+:\d+)$")


def time_to_seconds(time_str: str) -> int:
    """Convert a duration string into seconds.

    Supported formats (SLURM's): ``minutes``, ``minutes:seconds``,
    ``hours:minutes:seconds``, ``days-hours``, ``days-hours:minutes``,
    ``days-hours:minutes:seconds``, ``days:hours:minutes:seconds``.

    >>> time_to_seconds('1-1:10:30')
    90630
    >>> time_to_seconds('1 1:10:30')
    Traceback (most recent call last):
    ...
    ValueError: '1 1:10:30' has invalid pattern

    Raises:
        ValueError: if ``time_str`` has an invalid format.
    """
    text = str(time_str).strip() if isinstance(time_str, (int, str)) else None
    if text is not None:
        for pattern in _TIME_PATTERNS:
            match = pattern.match(text)
            if match:
                fields = {k: int(v) for k, v in match.groupdict().items()}
                return (
                    fields.get("d", 0) * 86400
                    + fields.get("h", 0) * 3600
                    + fields.get("m", 0) * 60
                    + fields.get("s", 0)
                )
    raise ValueError(f"{time_str!r} has invalid pattern")


def time_to_minutes(val: str | int) -> int:
    """Convert a clusterjob time (see :func:`time_to_seconds`) to whole minutes.

    A partial minute is rounded up, so a job never gets less walltime than
    requested (LSF's run limit, ``bsub -W``, counts minutes).

    >>> time_to_minutes('10')
    10
    >>> time_to_minutes('10:30')
    11
    >>> time_to_minutes('1-1:10:30')
    1511

    Raises:
        ValueError: if ``val`` has an invalid format.
    """
    return -(-time_to_seconds(str(val)) // 60)


@dataclass(frozen=True)
class Walltime:
    """A checked ``time`` resource: the text as given and its length in seconds."""

    given: str
    seconds: int

    @classmethod
    def read(cls, backend: str, value: Any) -> Walltime:
        """``value`` read as a walltime, for ``backend``.

        Raises:
            ResourcesNotSupportedError: naming the backend and the value, and
                the formats that are accepted.
        """
        try:
            seconds = time_to_seconds(value)
        except ValueError:
            raise cannot_express(
                backend, "time", value, f"a walltime is {WALLTIME_FORMATS}"
            ) from None
        return cls(str(value).strip(), seconds)

    def hours_minutes_seconds(self) -> str:
        """``HH:MM:SS``, hours beyond 24 included (PBS ``walltime``, Grid Engine ``h_rt``)."""
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}"

    def minutes(self) -> int:
        """Whole minutes, a partial minute rounded up (LSF ``-W``)."""
        return -(-self.seconds // 60)

    def days_with_dash(self) -> str:
        """The text as given, ``days:hours:minutes:seconds`` written ``days-hours:minutes:seconds``.

        SLURM's ``--time`` reads every other documented format as it stands,
        but not days before a colon.
        """
        return _DAYS_COLONS.sub(r"\1-\2", self.given)
