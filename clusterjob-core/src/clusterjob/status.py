"""Generalized (integer) status codes for submitted jobs.

``PENDING < RUNNING < COMPLETED < CANCELLED < FAILED``

``COMPLETED`` is 0, so a negative code means "not finished yet" and a
positive code means the job ended without success.

>>> from clusterjob.status import str_status, COMPLETED
>>> print(str_status[COMPLETED])
COMPLETED
"""

from __future__ import annotations

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "FINISHED_STATUS",
    "PENDING",
    "RUNNING",
    "STATUS_CODES",
    "is_finished",
    "status_from_str",
    "str_status",
]

PENDING: int = -2
RUNNING: int = -1
COMPLETED: int = 0
CANCELLED: int = 1
FAILED: int = 2

#: All status codes, in their documented order.
STATUS_CODES: list[int] = [PENDING, RUNNING, COMPLETED, CANCELLED, FAILED]

#: Map of status code to its name.
str_status: dict[int, str] = {
    PENDING: "PENDING",
    RUNNING: "RUNNING",
    COMPLETED: "COMPLETED",
    CANCELLED: "CANCELLED",
    FAILED: "FAILED",
}

#: Codes after which a job will never change again.
FINISHED_STATUS: frozenset[int] = frozenset({COMPLETED, CANCELLED, FAILED})


def is_finished(status: int | None) -> bool:
    """Whether ``status`` is terminal; ``None`` (unknown) is not."""
    return status in FINISHED_STATUS


def status_from_str(name: str) -> int:
    """Inverse of :data:`str_status`, for reading cache files and CLI input."""
    for code, text in str_status.items():
        if text == name:
            return code
    raise ValueError(f"unknown status {name!r}; expected one of {', '.join(str_status.values())}")
