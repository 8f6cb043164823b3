"""Checking resource values and writing them into ``#PBS`` header lines."""

from __future__ import annotations

import re
from typing import Any

from clusterjob.backends import ResourcesNotSupportedError
from clusterjob.utils import time_to_seconds

__all__ = ["check_key", "option_words", "quote_value", "walltime"]

_PLAIN = re.compile(r"^[A-Za-z0-9_.,:=/@%+\-\[\]]+$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


def quote_value(value: Any) -> str:
    """``value`` as one word of a directive line: double-quoted if it has spaces or shell characters.

    ``qsub`` (and ``bsub``) split directive lines like a shell command line, so
    a value such as ``my job`` must be written ``"my job"``.
    """
    text = str(value)
    if _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def walltime(backend: str, value: Any) -> str:
    """A clusterjob ``time`` as PBS ``walltime`` ``HH:MM:SS`` (hours may exceed 24)."""
    try:
        seconds = time_to_seconds(value)
    except ValueError:
        raise ResourcesNotSupportedError(
            f"backend {backend!r} cannot express time={value!r}: use minutes, minutes:seconds, "
            "hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds "
            "or days:hours:minutes:seconds"
        ) from None
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def check_key(backend: str, key: str, value: Any) -> None:
    """Reject resource names that cannot become a ``qsub`` option or a ``-l`` resource name."""
    if not _KEY.match(key):
        raise ResourcesNotSupportedError(
            f"backend {backend!r} cannot express resource {key}={value!r}: a resource name "
            "must start with a letter and contain only letters, digits, '_', '.' and '-'"
        )


def option_words(key: str, value: Any) -> list[str]:
    """A resource with a single-letter key as ``qsub`` words: ``-X value``, or ``-X`` for True."""
    if value is True:
        return [f"-{key}"]
    return [f"-{key}", quote_value(value)]
