"""Checking resource values and writing them into ``#BSUB`` header lines."""

from __future__ import annotations

import re
from typing import Any

from clusterjob.backends import ResourcesNotSupportedError
from clusterjob.utils import time_to_seconds

__all__ = ["check_key", "quote_value", "time_to_minutes"]

_PLAIN = re.compile(r"^[A-Za-z0-9_.,:=/@%+\-]+$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def time_to_minutes(val: str | int) -> int:
    """Convert a clusterjob time (see :func:`clusterjob.utils.time_to_seconds`) to whole minutes.

    LSF's run limit (``bsub -W``) counts minutes; a partial minute is rounded
    up, so a job never gets less walltime than requested.

    >>> time_to_minutes('10')
    10
    >>> time_to_minutes('10:30')
    11
    >>> time_to_minutes('1-1:10:30')
    1511

    Raises:
        ValueError: if ``val`` has an invalid format.
    """
    seconds = time_to_seconds(str(val))
    return -(-seconds // 60)


def quote_value(value: Any, force: bool = False) -> str:
    """``value`` as one word of a ``#BSUB`` line: double-quoted if needed (or if ``force``).

    ``bsub`` reads embedded options like a command line, so values with
    spaces, brackets or shell characters are written in double quotes, as in
    IBM's examples (``#BSUB -R "span[ptile=4]"``).
    """
    text = str(value)
    if not force and _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_key(backend: str, key: str, value: Any) -> None:
    """Reject resource names that cannot be a ``bsub`` option."""
    if not _KEY.match(key):
        raise ResourcesNotSupportedError(
            f"backend {backend!r} cannot express resource {key}={value!r}: a bsub option name "
            "must start with a letter and contain only letters, digits and '_'"
        )
