"""SLURM job states, and how ``squeue``/``sacct`` lines become clusterjob status codes.

Everything here is pure text processing, so it is tested against captured
scheduler output without a cluster.

The two query commands print one record per line, ``|``-separated, job ID
first and state second (``squeue -h -o '%i|%T|%r'``,
``sacct -X -n -P -o JobID,State,ExitCode``). A job ID may name

* a plain job (``123``),
* one task of an array (``123_4``),
* pending tasks of an array folded into one line (``123_[5-9%2]``),
* one component of a heterogeneous job (``123+0``).

All of them belong to the job the user submitted, ``123``: its status is the
aggregate of its records (see :func:`aggregate`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clusterjob.backends.output import clean_output
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, is_finished

__all__ = [
    "FINAL_PENDING_REASONS",
    "STATUS_MAPPING",
    "Record",
    "aggregate",
    "parse_records",
    "state_to_status",
]

logger = logging.getLogger("clusterjob.slurm")

#: Every job state SLURM (22.05, and the names of older/newer releases) reports,
#: long form as printed by ``squeue %T`` and ``sacct State``.
STATUS_MAPPING: dict[str, int] = {
    # waiting for resources, or put back into the queue
    "PENDING": PENDING,
    "CONFIGURING": PENDING,  # nodes are booting for the job
    "REQUEUED": PENDING,
    "REQUEUE_FED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "RESV_DEL_HOLD": PENDING,
    # holding an allocation
    "RUNNING": RUNNING,
    "COMPLETING": RUNNING,  # epilogs still running: outputs may not be complete yet
    "SUSPENDED": RUNNING,
    "STOPPED": RUNNING,
    "SIGNALING": RUNNING,
    "STAGE_OUT": RUNNING,
    "RESIZING": RUNNING,
    # final
    "COMPLETED": COMPLETED,
    "CANCELLED": CANCELLED,
    # federation: this sibling was withdrawn because another cluster ran the job
    "REVOKED": CANCELLED,
    "FAILED": FAILED,
    "TIMEOUT": FAILED,
    "NODE_FAIL": FAILED,
    "OUT_OF_MEMORY": FAILED,
    "PREEMPTED": FAILED,
    "BOOT_FAIL": FAILED,
    "DEADLINE": FAILED,
    "SPECIAL_EXIT": FAILED,  # requeued-and-held after a site-defined "special" exit code
    "LAUNCH_FAILED": FAILED,
}

#: The compact codes of ``squeue %t``, accepted too (a site's wrapper may print them).
_COMPACT: dict[str, str] = {
    "PD": "PENDING", "CF": "CONFIGURING", "RQ": "REQUEUED", "RF": "REQUEUE_FED",
    "RH": "REQUEUE_HOLD", "RD": "RESV_DEL_HOLD", "R": "RUNNING", "CG": "COMPLETING",
    "S": "SUSPENDED", "ST": "STOPPED", "SI": "SIGNALING", "SO": "STAGE_OUT", "RS": "RESIZING",
    "CD": "COMPLETED", "CA": "CANCELLED", "RV": "REVOKED", "F": "FAILED", "TO": "TIMEOUT",
    "NF": "NODE_FAIL", "OOM": "OUT_OF_MEMORY", "PR": "PREEMPTED", "BF": "BOOT_FAIL",
    "DL": "DEADLINE", "SE": "SPECIAL_EXIT",
}  # fmt: skip

#: Reasons that make a PENDING job final: SLURM 22.05 keeps a job whose
#: ``afterok`` parent failed PENDING for ever (even with ``kill_invalid_depend``);
#: newer releases cancel it. We report what they do: CANCELLED.
FINAL_PENDING_REASONS: dict[str, int] = {"DependencyNeverSatisfied": CANCELLED}

#: A job, array task (range) or het component; job steps (``123.batch``) do not match.
_JOB_ID = re.compile(r"^(?P<base>\d+)(?:(?P<sep>[_+])(?P<rest>[^.\s]+))?$")


@dataclass(frozen=True)
class Record:
    """One line of ``squeue``/``sacct`` output: a job, an array task (range), or a het component."""

    job_id: str  #: the ID as printed (``123_4``, ``123_[5-9]``, ``123+1``, ``123``)
    base_id: str  #: the job the user submitted (``123``)
    task: str | None  #: the array task (``4``, ``[5-9]``) or None
    state: str  #: the state word, upper case (``CANCELLED`` of ``CANCELLED by 0``)
    reason: str = ""  #: ``squeue %r`` (empty for sacct)

    def status_in(self, mapping: Mapping[str, int] = STATUS_MAPPING) -> int | None:
        """The clusterjob status of this record by ``mapping``; None for a state it doesn't know."""
        return state_to_status(self.state, self.reason, mapping)


def state_to_status(
    state: str, reason: str = "", mapping: Mapping[str, int] = STATUS_MAPPING
) -> int | None:
    """Map one SLURM state (and squeue's reason) to a status code by ``mapping``.

    ``mapping`` is keyed by the long state names (a backend passes its
    ``status_mapping``, which a site subclass may change). Only the first
    word counts (sacct prints ``CANCELLED by 0``); a trailing ``+`` (sacct's
    mark of a truncated field) is ignored; squeue's compact codes (``TO``)
    are read as their long names. An unknown state gives None and a warning:
    clusterjob never guesses a status.
    """
    words = state.split()
    word = words[0].rstrip("+").upper() if words else ""
    word = _COMPACT.get(word, word)
    status = mapping.get(word)
    if status is None:
        if word:
            logger.warning("unknown SLURM job state %r; status left unknown", state)
        return None
    if status == PENDING and reason in FINAL_PENDING_REASONS:
        return FINAL_PENDING_REASONS[reason]
    return status


def parse_records(response: str) -> list[Record]:
    """The job records in ``squeue``/``sacct`` output (``ID|STATE[|REASON-or-more]`` lines).

    Lines that are not records (error text, blank lines, headers, login
    banners) are skipped; terminal escape sequences are removed first.
    """
    records = []
    for line in clean_output(response).splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2:
            continue
        match = _JOB_ID.match(fields[0])
        if match is None or not fields[1]:
            continue
        task = match.group("rest") if match.group("sep") == "_" else None
        reason = fields[2] if len(fields) > 2 else ""
        records.append(
            Record(fields[0], match.group("base"), task, fields[1].split()[0].upper(), reason)
        )
    return records


def aggregate(statuses: Iterable[int | None]) -> int | None:
    """One status for a job made of several records (array tasks, het components).

    * any record unknown: unknown (None) -- never guess;
    * any record not finished: RUNNING if any record is running or already
      finished (the array is under way), else PENDING;
    * all finished: FAILED if any failed, else CANCELLED if any was
      cancelled, else COMPLETED.
    """
    codes = list(statuses)
    if not codes or any(code is None for code in codes):
        return None
    if not all(is_finished(code) for code in codes):
        return PENDING if all(code == PENDING for code in codes) else RUNNING
    for final in (FAILED, CANCELLED):
        if final in codes:
            return final
    return COMPLETED
