"""Reading Grid Engine's answers: ``qstat -xml``, ``qacct -j`` and ``qstat -j``.

Everything here is a pure function of a command's stdout, so it is tested
against output captured from a real Son of Grid Engine 8.1.9 cell
(``tests/sge/data``). Nothing here guesses: output that does not say
something about a job gives ``None`` (unknown), never a status. What a login
shell adds (banners, blank lines, terminal escape sequences) is skipped.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from clusterjob.backends.output import clean_output
from clusterjob.markers import parse_task_ranges
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING

__all__ = [
    "STATUS_MAPPING",
    "AccountingRecord",
    "ListingEntry",
    "combine_active",
    "latest_task_records",
    "listed_jobs",
    "listed_tasks",
    "parse_qacct",
    "parse_qstat_j_blocks",
    "parse_qstat_xml",
    "parse_qstat_xml_entries",
    "qacct_status",
    "state_to_status",
]

logger = logging.getLogger("clusterjob.sge")

#: Every job state of the qstat(1) listing documented in sge_status(5), and
#: what it means for clusterjob. Suspended jobs (s/S/T) have started and not
#: ended, so they are RUNNING; E(rror) jobs never start without a manual
#: ``qmod -cj``, so they are FAILED; d(eletion) states end as cancelled.
STATUS_MAPPING: dict[str, int] = {
    # pending
    "qw": PENDING,
    "hqw": PENDING,
    "hRwq": PENDING,
    "Rq": PENDING,
    # running / transferring
    "r": RUNNING,
    "hr": RUNNING,
    "t": RUNNING,
    "Rr": RUNNING,
    "Rt": RUNNING,
    # suspended (by qmod -sj, a suspended queue, or a suspend threshold)
    "s": RUNNING,
    "ts": RUNNING,
    "S": RUNNING,
    "tS": RUNNING,
    "T": RUNNING,
    "tT": RUNNING,
    "Rs": RUNNING,
    "Rts": RUNNING,
    "RS": RUNNING,
    "RtS": RUNNING,
    "RT": RUNNING,
    "RtT": RUNNING,
    # pending with error: never starts unless someone clears the error
    "Eqw": FAILED,
    "Ehqw": FAILED,
    "EhRqw": FAILED,
    # qdel was used
    "dr": CANCELLED,
    "dt": CANCELLED,
    "dRr": CANCELLED,
    "dRt": CANCELLED,
    "ds": CANCELLED,
    "dS": CANCELLED,
    "dT": CANCELLED,
    "dRs": CANCELLED,
    "dRS": CANCELLED,
    "dRT": CANCELLED,
}


def state_to_status(state: str, mapping: Mapping[str, int] = STATUS_MAPPING) -> int | None:
    """The status code of one qstat state string.

    States missing from ``mapping`` (combinations the documentation does not
    list, e.g. ``dqw``, ``hRr``) are classified by their letters, in the
    order in which they decide a job's fate: ``d`` (deleted) > ``E`` (error)
    > running letters ``r t s S T`` > pending letters ``q w h``. ``z``
    (finished, shown by ``qstat -s z``) gives None: only qacct knows how it
    ended.
    """
    state = state.strip()
    if state in mapping:
        return mapping[state]
    if not state or "z" in state:
        return None
    if "d" in state:
        return CANCELLED
    if "E" in state:
        return FAILED
    if any(letter in state for letter in "rtsST"):
        return RUNNING
    if any(letter in state for letter in "qwh"):
        return PENDING
    logger.warning("unknown Grid Engine job state %r", state)
    return None


def combine_active(statuses: list[int | None]) -> int | None:
    """One status for the listed entries (array tasks) of one job.

    A job with any task running is RUNNING, else with any task pending
    PENDING. An entry that does not tell (finished ``z``, unknown state)
    leaves the decision to qacct (None). Only when every listed task ended
    badly (error, deleted) does the listing decide: FAILED over CANCELLED.
    """
    if RUNNING in statuses:
        return RUNNING
    if PENDING in statuses:
        return PENDING
    if not statuses or None in statuses:
        return None
    return FAILED if FAILED in statuses else CANCELLED


@dataclass(frozen=True)
class ListingEntry:
    """One ``job_list`` entry of a ``qstat -xml`` listing.

    Attributes:
        number: the job number.
        tasks: the array tasks the entry stands for, as qstat writes them: one
            task (``2``) for a running task, a list or range (``3,4``,
            ``1-4:1``) for pending ones; ``''`` for a job that is not an array.
        status: the status of its state (see :func:`state_to_status`).
    """

    number: str
    tasks: str
    status: int | None


def parse_qstat_xml_entries(
    response: str, mapping: Mapping[str, int] = STATUS_MAPPING
) -> list[ListingEntry] | None:
    """The entries of a ``qstat -xml`` listing, in its order; None if it is no listing.

    Text before and after the document (a login banner) is ignored.
    """
    response = clean_output(response)
    start = response.find("<?xml")
    if start < 0:
        start = response.find("<job_info")
    if start < 0:
        return None
    end = response.rfind("</job_info>")
    document = response[start : end + len("</job_info>")] if end > start else response[start:]
    try:
        root = ET.fromstring(document.strip())
    except ET.ParseError as exc:
        logger.warning("cannot parse qstat -xml output (%s)", exc)
        return None
    if root.tag != "job_info":
        return None
    entries = []
    for entry in root.iter("job_list"):
        number = (entry.findtext("JB_job_number") or "").strip()
        state = entry.findtext("state")
        if not number or state is None:
            continue
        tasks = (entry.findtext("tasks") or "").strip()
        entries.append(ListingEntry(number, tasks, state_to_status(state, mapping)))
    return entries


def parse_qstat_xml(
    response: str, mapping: Mapping[str, int] = STATUS_MAPPING
) -> dict[str, int | None] | None:
    """Job number -> status from a ``qstat -xml`` listing; None if it is no listing.

    An array job appears once per task (or task range); its entries are
    combined by :func:`combine_active`. Jobs not in the listing are absent
    from the result (they left the queue, or never were there).
    """
    entries = parse_qstat_xml_entries(response, mapping)
    return None if entries is None else listed_jobs(entries)


def listed_jobs(entries: list[ListingEntry]) -> dict[str, int | None]:
    """Job number -> status of every job of the listing, its tasks' entries combined."""
    states: dict[str, list[int | None]] = {}
    for entry in entries:
        states.setdefault(entry.number, []).append(entry.status)
    return {number: combine_active(found) for number, found in states.items()}


def listed_tasks(entries: list[ListingEntry]) -> dict[tuple[str, str], int | None]:
    """(job number, task) -> status of every array task the listing shows.

    Pending tasks share one entry (``1-4:1``; ``1,4`` once tasks 2 and 3 were
    deleted), each running task has its own: every task of an entry gets the
    entry's status. An entry whose task list cannot be read is skipped (its
    tasks are unknown, then asked of qacct), with a warning.
    """
    tasks: dict[tuple[str, str], int | None] = {}
    for entry in entries:
        if not entry.tasks:
            continue
        ids = parse_task_ranges(entry.tasks)
        if ids is None:
            logger.warning(
                "cannot read the tasks %r of Grid Engine job %s", entry.tasks, entry.number
            )
            continue
        tasks.update(((entry.number, task), entry.status) for task in ids)
    return tasks


@dataclass(frozen=True)
class AccountingRecord:
    """The fields of one ``qacct -j`` record that decide how a job ended."""

    jobnumber: str
    taskid: str
    qsub_time: str
    failed: int
    exit_status: int
    account: str = ""

    @property
    def status(self) -> int | None:
        """COMPLETED, CANCELLED or FAILED; None for a run that SGE will repeat.

        ``failed`` 24/25 (migrating, rescheduling) is not an end: the job
        runs again and gets a later record. ``failed 100`` ("assumedly after
        job") with ``exit_status 137`` means the job's shell died of SIGKILL,
        which is what qdel does to a running job; accounting cannot tell it
        apart from another SIGKILL of the job shell (documented). Any other
        non-zero ``failed`` or ``exit_status`` is a failure.
        """
        if self.failed in (24, 25):
            return None
        if self.failed == 100 and self.exit_status == 137:
            return CANCELLED
        if self.failed != 0 or self.exit_status != 0:
            return FAILED
        return COMPLETED


_SEPARATOR = re.compile(r"^=+\s*$")
_LEADING_INT = re.compile(r"^\s*(-?\d+)")


def _blocks(response: str) -> Iterator[list[str]]:
    """The lines between ``=====`` separators (``qacct -j`` and ``qstat -j`` both print them)."""
    block: list[str] = []
    for line in clean_output(response).splitlines():
        if _SEPARATOR.match(line):
            yield block
            block = []
        else:
            block.append(line)
    yield block


def _records(response: str) -> Iterator[dict[str, str]]:
    """``qacct -j`` records: ``key value`` lines; a repeated key keeps its last value."""
    for block in _blocks(response):
        fields: dict[str, str] = {}
        for line in block:
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        if fields:
            yield fields


def _int_field(fields: Mapping[str, str], key: str) -> int | None:
    match = _LEADING_INT.match(fields.get(key, ""))
    return int(match.group(1)) if match else None


def parse_qacct(response: str) -> list[AccountingRecord]:
    """The records of ``qacct -j`` output, in file order (oldest first).

    A block without a job number, ``failed`` or ``exit_status`` is skipped
    (it is not a job record).
    """
    records = []
    for fields in _records(response):
        failed = _int_field(fields, "failed")
        exit_status = _int_field(fields, "exit_status")
        number = fields.get("jobnumber", "").strip()
        if not number or failed is None or exit_status is None:
            continue
        records.append(
            AccountingRecord(
                jobnumber=number,
                taskid=fields.get("taskid", "undefined").strip(),
                qsub_time=fields.get("qsub_time", "").strip(),
                failed=failed,
                exit_status=exit_status,
                account=fields.get("account", "").strip(),
            )
        )
    return records


def latest_task_records(
    records: list[AccountingRecord], job_number: str | None = None, task: str | None = None
) -> list[AccountingRecord]:
    """The record that counts for each task of a job (of task ``task`` only, if given).

    Only the latest submission counts (job numbers are reused after a wrap
    or a new cell: records are grouped by ``qsub_time`` and the group of the
    last record is taken). Within it, the last record of each task counts
    (a rescheduled job has several).
    """
    if job_number is not None:
        records = [r for r in records if r.jobnumber == str(job_number)]
    if not records:
        return []
    latest = records[-1].qsub_time
    last_per_task: dict[str, AccountingRecord] = {}
    for record in records:
        if record.qsub_time == latest and (task is None or record.taskid == task):
            last_per_task[record.taskid] = record
    return list(last_per_task.values())


def qacct_status(
    records: list[AccountingRecord], job_id: str | None = None, task: str | None = None
) -> int | None:
    """How a job (or its task ``task``) ended, from its accounting records; None: they do not tell.

    The records that count are those of :func:`latest_task_records`. An
    array job is COMPLETED only if all its recorded tasks are; else FAILED
    wins over CANCELLED.
    """
    statuses = [r.status for r in latest_task_records(records, job_id, task)]
    if not statuses or any(s is None for s in statuses):
        return None
    if FAILED in statuses:
        return FAILED
    if CANCELLED in statuses:
        return CANCELLED
    return COMPLETED


def parse_qstat_j_blocks(response: str) -> list[dict[str, str]]:
    """The ``key: value`` fields of each job block of ``qstat -j`` output."""
    blocks = []
    for fields in _qstat_j_fields(response):
        if "job_number" in fields:
            blocks.append(fields)
    return blocks


def _qstat_j_fields(response: str) -> Iterator[dict[str, str]]:
    """``qstat -j`` blocks: ``key: value`` lines; a repeated key keeps its first value."""
    for block in _blocks(response):
        fields: dict[str, str] = {}
        for line in block:
            if line[:1].isspace() or ":" not in line:
                continue  # continuation of a multi-line value (scheduling info, ...)
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        if fields:
            yield fields
