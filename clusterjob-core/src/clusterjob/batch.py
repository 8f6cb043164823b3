"""``submit_all``: many jobs in few scheduler calls, with one cache flush per batch, exactly once.

Per job, the semantics are those of ``job.submit(cache_id=...)``
(:mod:`clusterjob.submission`); what changes is how the work is shared:

1. Without locks, cached results are returned as they are.
2. The other jobs go in *batches* whose cache files are locked together, in
   path order (two processes running overlapping batches never wait for
   each other in a circle). Under the locks: cached results again; the
   intents an interrupted run left are resolved with one tag lookup per tag
   (the jobs of an array share their array's tag), found: adopted, with the
   array's task ID; provably absent: submitted now.
3. Each job's prologue runs, once.
4. The jobs are packed into arrays (:mod:`clusterjob.packing`); the intents of
   the whole batch (each with its array's tag and task index) are written and
   made durable with one flush of the folder's journal
   (:func:`clusterjob.cache.write_intents`).
5. Every script of the batch is written, one call per submit host.
6. One submit command per array and per job that was not packed.
7. The results, one cache file per ``cache_id`` as ``submit()`` writes it, are
   written without a flush: their intents are in the journal until the files
   are on the disk (:func:`clusterjob.cache.write_results`; results of jobs
   adopted from an earlier run are journaled, with one more flush).

A crash anywhere leaves, per job, no file (nothing was submitted), an intent
(found by its tag on the rerun, or proven absent and submitted), or a result.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import posixpath
import resource
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clusterjob import cache
from clusterjob.async_result import AsyncResult, run_local_script
from clusterjob.errors import CacheError, SchedulerError, SubmitError, TransientTransportError
from clusterjob.faults import checkpoint
from clusterjob.jobscript import JobScript
from clusterjob.marker_files import MarkerPlan, plan_markers
from clusterjob.markers import task_marker_name
from clusterjob.packing import (
    ARRAY_FOLDER,
    array_job,
    array_name,
    chunks,
    dispatcher_body,
    pack_key,
)
from clusterjob.submission import (
    _cached,
    _new_tag,
    _notify_submitted,
    _record,
    _resolve_under_lock,
    _result_from,
    _submission_context,
    default_cache_id,
    find_tagged_jobs,
    jobscript_transport,
    read_job_id,
)
from clusterjob.transport import append_line, get_transport

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.backends import ClusterjobBackend
    from clusterjob.commands import CommandResult
    from clusterjob.rendering import SubmissionContext
    from clusterjob.transport import Transport

__all__ = ["submit_all"]

logger = logging.getLogger("clusterjob")

#: File descriptors left to the rest of the process when a batch's cache files are locked.
RESERVED_DESCRIPTORS = 256
#: Most cache files one batch locks at once (a batch is also what one flush commits).
MAX_BATCH = 10_000
#: Submit commands of one batch that run at once by default (``submit_all(concurrency=...)``).
SUBMIT_CONCURRENCY = 4


@dataclass
class _Job:
    """One job of the call: where it is, what it is submitted as, and its result."""

    index: int
    job: JobScript
    backend: ClusterjobBackend
    cache_id: str | None
    path: str | None
    prologue: str = ""
    epilogue: str = ""


@dataclass
class _Unit:
    """One submission: an array of several jobs (``packed``), or one job."""

    jobs: list[_Job]
    packed: bool
    submitted: JobScript
    tag: str | None
    files: list[tuple[str, str, bool]]
    folders: list[str]
    records: list[dict[str, Any]] = field(default_factory=list)


def submit_all(
    jobs: Iterable[JobScript],
    cache_ids: Sequence[str | None] | None = None,
    force: bool = False,
    retry: bool = True,
    pack: bool = True,
    max_array_size: int | None = None,
    concurrency: int | None = None,
) -> list[AsyncResult]:
    """Submit ``jobs``; return one :class:`~clusterjob.AsyncResult` per job, in order.

    For each job, what ``job.submit(cache_id=...)`` does: a cached result is
    returned as it is (its prologue is not rerun), ``force`` discards it,
    ``retry`` resubmits one that finished CANCELLED or FAILED, and an
    interrupted earlier submission is found by its tag, never repeated.
    What differs is the cost: jobs that the scheduler would treat alike (the
    same headers but for their names and stdout/stderr paths, the same job
    folder, see :mod:`clusterjob.packing`) go into one array per
    ``max_array_size`` jobs, the cache is flushed once before the scheduler
    is called, not per job, and the submit commands of a batch run up to
    ``concurrency`` at once.

    Args:
        jobs: the jobs, each with its own name, body and resources.
        cache_ids: one per job (None for an entry: derived from the job, as
            ``submit()`` does); default: all derived.
        force: discard cached results and submit every job.
        retry: resubmit the jobs whose cached result finished CANCELLED/FAILED.
        pack: pack jobs into arrays where the backend can (False: one submit
            command per job, the rest unchanged).
        max_array_size: most jobs per array; default: ``JobScript.max_array_size``
            (a site's limit, settable in an INI file), else the backend's
            (the scheduler's documented default).
        concurrency: most submit commands running at once on this machine
            (the arrays and the jobs not packed of a batch); default
            :data:`SUBMIT_CONCURRENCY` (4); 1: one after another, in order, so
            that job IDs follow the order of ``jobs``. Over ssh they run one
            after another.

    Raises:
        ValueError: for ``cache_ids`` of another length than ``jobs``, or a
            ``max_array_size`` or ``concurrency`` below 1.
        SchedulerError: a scheduler refused a submission (the message is
            its own); raised after every other job of the batch was submitted
            and cached, so a rerun submits only what is missing.
    """
    job_list = list(jobs)
    ids = _checked_ids(job_list, cache_ids)
    if max_array_size is not None and (not isinstance(max_array_size, int) or max_array_size < 1):
        raise ValueError(
            f"max_array_size must be a whole number of at least 1, not {max_array_size!r}"
        )
    if concurrency is None:
        concurrency = SUBMIT_CONCURRENCY
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number of at least 1, not {concurrency!r}")
    results: list[AsyncResult | None] = [None] * len(job_list)
    pending: list[_Job] = []
    same_file: dict[int, int] = {}
    first_with_path: dict[str, int] = {}
    for index, job in enumerate(job_list):
        entry = _entry(index, job, ids[index])
        if entry.path is not None:
            if entry.path in first_with_path:
                same_file[index] = first_with_path[entry.path]
                continue
            first_with_path[entry.path] = index
            cached = None if force else _cached(entry.path, retry)
            if cached is not None:
                results[index] = cached
                continue
        pending.append(entry)
    _check_script_paths(pending)
    for batch in _batches(pending):
        _submit_batch(batch, results, force, retry, pack, max_array_size, concurrency)
    for index, first in same_file.items():
        results[index] = results[first]
    done = [result for result in results if result is not None]
    if len(done) != len(job_list):  # pragma: no cover - every path above sets each result or raises
        raise AssertionError("submit_all() lost track of a job")
    return done


def _checked_ids(jobs: list[JobScript], cache_ids: Sequence[str | None] | None) -> list[str | None]:
    for position, job in enumerate(jobs):
        if not isinstance(job, JobScript):
            raise TypeError(f"submit_all() takes JobScript objects; item {position} is {job!r}")
    if cache_ids is None:
        return [None] * len(jobs)
    ids = list(cache_ids)
    if len(ids) != len(jobs):
        raise ValueError(
            f"submit_all() got {len(jobs)} jobs but {len(ids)} cache_ids; give one per job "
            "(None to derive it from the job)"
        )
    return ids


def _check_script_paths(pending: list[_Job]) -> None:
    """ValueError for two different jobs whose scripts would be one file.

    ``submit()`` after ``submit()`` may reuse a file name (the scheduler has
    read the first script by then); a batch writes every script before the
    first submission, and an array task reads its job's script when it
    starts, so one job would run the other's script.
    """
    seen: dict[tuple[str | None, str], _Job] = {}
    for entry in pending:
        job = entry.job
        where = (
            job.remote,
            posixpath.normpath(posixpath.join(job.job_folder(), job.script_filename())),
        )
        other = seen.setdefault(where, entry)
        if other is not entry and _definition(other.job) != _definition(job):
            raise ValueError(
                f"submit_all(): jobs {other.index} and {entry.index} would both write the script "
                f"{where[1]}{' on ' + str(job.remote) if job.remote else ''} (the same jobname "
                "and folder); give them different jobnames, filenames or workdirs"
            )


def _definition(job: JobScript) -> tuple[Any, ...]:
    return (job.body, dict(job.resources), job.aux_scripts, job.shell)


def _entry(index: int, job: JobScript, cache_id: str | None) -> _Job:
    backend = job._get_backend()
    folder = type(job).cache_folder
    if folder is None:
        return _Job(index, job, backend, cache_id, None)
    cache_id = cache_id if cache_id is not None else default_cache_id(job)
    return _Job(
        index, job, backend, cache_id, cache.cache_path(folder, type(job).cache_prefix, cache_id)
    )


def _batches(pending: list[_Job]) -> Iterator[list[_Job]]:
    """``pending`` in batches small enough to hold all their locks (one file descriptor each)."""
    size = _lock_budget(len(pending))
    for start in range(0, len(pending), size):
        yield pending[start : start + size]


def _lock_budget(wanted: int) -> int:
    """How many cache files one batch may lock; raises the soft descriptor limit if that helps."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = min(wanted, MAX_BATCH) + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        allowed = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if allowed > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
            except (ValueError, OSError) as exc:
                logger.debug("cannot raise the open-file limit to %d: %s", allowed, exc)
            else:
                logger.debug("raised the open-file limit from %d to %d", soft, allowed)
                soft = allowed
    if soft == resource.RLIM_INFINITY:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, soft - RESERVED_DESCRIPTORS))


def _submit_batch(
    batch: list[_Job],
    results: list[AsyncResult | None],
    force: bool,
    retry: bool,
    pack: bool,
    max_array_size: int | None,
    concurrency: int,
) -> None:
    with contextlib.ExitStack() as locks:
        for path in sorted(entry.path for entry in batch if entry.path is not None):
            locks.enter_context(cache.locked(path))
        to_submit, adopted = _resolve(batch, results, force, retry)
        if to_submit:
            _run_prologues(to_submit)
            units = _plan(to_submit, pack, max_array_size)
            _write_intents(units)
            _write_scripts(units)
            submitted, errors = _submit_units(units, concurrency)
        else:
            submitted, errors = [], []
        done = adopted + submitted
        cache.write_results({r.cache_file: r.to_dict() for _, r in done if r.cache_file})
    for entry, result in done:
        results[entry.index] = result
    for _, result in submitted:
        _notify_submitted(result)
    if errors:
        for error in errors[1:]:
            logger.error("another submission of the batch failed too: %s", error)
        raise errors[0]


def _resolve(
    batch: list[_Job], results: list[AsyncResult | None], force: bool, retry: bool
) -> tuple[list[_Job], list[tuple[_Job, AsyncResult]]]:
    """Under the locks: the jobs to submit, and those adopted from an interrupted run."""
    to_submit: list[_Job] = []
    intents: list[tuple[_Job, dict[str, Any]]] = []
    for entry in batch:
        if entry.path is None:
            to_submit.append(entry)
            continue
        record = _read_or_set_aside(entry.path, force)
        if record is not None and record.get("state") == "submitting":
            intents.append((entry, record))
            continue
        result = (
            _resolve_under_lock(
                entry.job, entry.backend, entry.path, str(entry.cache_id), force, retry
            )
            if record is not None
            else None
        )
        if result is None:
            to_submit.append(entry)
        else:
            results[entry.index] = result
    adopted, missing = _adopt(intents)
    return sorted(to_submit + missing, key=lambda entry: entry.index), adopted


def _read_or_set_aside(path: str, force: bool) -> dict[str, Any] | None:
    try:
        return cache.read_record(path)
    except CacheError:
        if not force:
            raise
        cache.set_aside(path)
        return None


def _adopt(
    intents: list[tuple[_Job, dict[str, Any]]],
) -> tuple[list[tuple[_Job, AsyncResult]], list[_Job]]:
    """The jobs whose interrupted submission reached the scheduler (adopted), and the others.

    One lookup per tag and submit host, its answer shared by every tag that
    the same command looks for.
    """
    adopted: list[tuple[_Job, AsyncResult]] = []
    missing: list[_Job] = []
    answers: dict[tuple[int, str | None], dict[str, CommandResult]] = {}
    found_by_tag: dict[tuple[int, str | None, str | None], list[str]] = {}
    for entry, record in intents:
        transport = jobscript_transport(record)
        key = (id(entry.backend), transport.remote, record.get("tag"))
        if key not in found_by_tag:
            shared = answers.setdefault((id(entry.backend), transport.remote), {})
            found_by_tag[key] = find_tagged_jobs(
                entry.backend, record.get("tag"), transport, str(entry.path), shared
            )
        found = found_by_tag[key]
        if not found:
            logger.info(
                "interrupted submission %s never reached the scheduler; submitting", entry.path
            )
            missing.append(entry)
            continue
        if len(found) > 1:
            logger.warning(
                "several jobs carry tag %s (%s); adopting the first",
                record.get("tag"),
                ", ".join(found),
            )
        task = record.get("array_task")
        job_id = found[0] if task is None else entry.backend.task_job_id(found[0], int(task))
        result = _result_from(record, entry.backend, job_id, entry.path)
        result.resumed = True
        result.submitted_at = record.get("intent_at")
        logger.info("adopting job %s, submitted before an interruption (%s)", job_id, entry.path)
        adopted.append((entry, result))
    return adopted, missing


def _run_prologues(entries: list[_Job]) -> None:
    for entry in entries:
        job = entry.job
        entry.prologue = job.render_script(job.prologue) if job.prologue.strip() else ""
        entry.epilogue = job.render_script(job.epilogue) if job.epilogue.strip() else ""
        run_local_script(entry.prologue, "prologue")
    checkpoint("after_prologue")


def _plan(entries: list[_Job], pack: bool, max_array_size: int | None) -> list[_Unit]:
    """The submissions: arrays of the jobs that pack together, then every other job alone."""
    groups: dict[tuple[Any, ...], list[_Job]] = {}
    alone: list[_Job] = []
    for entry in entries:
        key = pack_key(entry.job, entry.backend) if pack else None
        if key is None:
            alone.append(entry)
        else:
            groups.setdefault(key, []).append(entry)
    units: list[_Unit] = []
    for members in groups.values():
        size = _array_size(members[0], max_array_size)
        for chunk in chunks(range(len(members)), size):
            jobs = [members[position] for position in chunk]
            if len(jobs) == 1:
                alone.extend(jobs)
            else:
                units.append(_array_unit(jobs))
    units.extend(_single_unit(entry) for entry in sorted(alone, key=lambda entry: entry.index))
    return units


def _array_size(entry: _Job, max_array_size: int | None) -> int:
    return max_array_size or entry.job.max_array_size or entry.backend.max_array_size


def _array_unit(jobs: list[_Job]) -> _Unit:
    first, backend = jobs[0].job, jobs[0].backend
    fresh = _new_tag(str(jobs[0].cache_id or first.resources["jobname"]))
    context = _submission_context(backend, fresh, [])
    tag = context.tag if context else None  # headers that take no context carry no tag
    members = [entry.job for entry in jobs]
    # Each job's own: one with a body of another interpreter (#!/usr/bin/env python) gets none.
    plans = [plan_markers(job, fresh) for job in members]
    name = array_name([str(job.resources["jobname"]) for job in members])
    submitted = array_job(first, backend, len(members), name, fresh)
    header = submitted.render_script(f"#!{first.shell}\n", jobscript=True, context=context)
    folder = first.job_folder()
    files = [
        (
            posixpath.join(folder, submitted.filename or ""),
            header + dispatcher_body(members, backend),
            True,
        )
    ]
    folders = [folder, posixpath.join(folder, ARRAY_FOLDER)] if folder else [ARRAY_FOLDER]
    for job, plan in zip(members, plans):
        files.extend(job.rendered_files(marker_lines=plan.lines if plan else ()))
    unit = _Unit(jobs, True, submitted, tag, files, folders)
    for task, (entry, plan) in enumerate(zip(jobs, plans), start=1):
        marker_name = task_marker_name(plan.name, str(task)) if plan else None
        record = {**_record_for(entry, context, plan), "array_task": task, "task_ids": None}
        unit.records.append({**record, "marker_name": marker_name})
    return unit


def _single_unit(entry: _Job) -> _Unit:
    job, backend = entry.job, entry.backend
    context = _submission_context(
        backend, _new_tag(entry.cache_id) if entry.path and entry.cache_id else None, []
    )
    tag = context.tag if context else None
    markers = plan_markers(job, tag or _new_tag(str(job.resources["jobname"])))
    submitted = copy.copy(job)
    submitted.filename = job.script_filename()
    files = job.rendered_files(context=context, marker_lines=markers.lines if markers else ())
    folder = job.job_folder()
    unit = _Unit([entry], False, submitted, tag, files, [folder] if folder else [])
    unit.records.append(_record_for(entry, context, markers))
    return unit


def _record_for(
    entry: _Job, context: SubmissionContext | None, markers: MarkerPlan | None
) -> dict[str, Any]:
    """What the cache file of ``entry`` holds about its submission: what ``submit()`` records."""
    return _record(
        entry.job, entry.backend, entry.cache_id, context, markers, entry.prologue, entry.epilogue
    )


def _write_intents(units: list[_Unit]) -> None:
    """The intents of the whole batch, durable with one flush, before any scheduler call."""
    now = time.time()
    intents = {
        entry.path: {**record, "state": "submitting", "intent_at": now}
        for unit in units
        for entry, record in zip(unit.jobs, unit.records)
        if entry.path is not None
    }
    if intents:
        cache.write_intents(intents)
    checkpoint("after_intents")


def _write_scripts(units: list[_Unit]) -> None:
    """Every file of the batch, one :meth:`~clusterjob.transport.Transport.write_files` per host."""
    by_host: dict[tuple[str | None, str, str], tuple[list[str], list[tuple[str, str, bool]]]] = {}
    for unit in units:
        job = unit.submitted
        folders, files = by_host.setdefault((job.remote, job.ssh, job.scp), ([], []))
        folders.extend(folder for folder in unit.folders if folder not in folders)
        files.extend(unit.files)
    for (remote, ssh, scp), (folders, files) in by_host.items():
        get_transport(remote, ssh=ssh, scp=scp).write_files(files, folders)
    checkpoint("after_write")


def _submit_units(
    units: list[_Unit], concurrency: int
) -> tuple[list[tuple[_Job, AsyncResult]], list[Exception]]:
    """Call the scheduler once per unit; a failure is kept and the other units go on."""
    submitted: list[tuple[_Job, AsyncResult]] = []
    errors: list[Exception] = []
    for unit, outcome in _run_units(units, concurrency):
        try:
            if isinstance(outcome, Exception):
                raise outcome
            submitted.extend(outcome)
        except TransientTransportError as error:  # the intents stay: the rerun finds out
            errors.append(error)
        except SchedulerError as error:  # refused: nothing to find later
            _forget_intents(unit)
            if unit.packed:
                error.stderr = append_line(error.stderr or "", _array_hint(len(unit.jobs)))
            errors.append(error)
        except SubmitError as error:  # no job ID read: the intents let the rerun find the job
            errors.append(error)
        except Exception as error:  # noqa: BLE001 - raised once the others' results are cached
            errors.append(error)
    return submitted, errors


def _run_units(
    units: list[_Unit], concurrency: int
) -> list[tuple[_Unit, list[tuple[_Job, AsyncResult]] | Exception]]:
    """Each unit's submission (its results, or the error it raised), in the units' order.

    The units submitted on this machine run up to ``concurrency`` at once: a
    submit command mostly waits (a process to start, the scheduler to
    answer), and a sweep that cannot be packed would otherwise wait N times
    in a row. The intents of every unit are durable already, so the order in
    which the commands run or a crash among them changes nothing a rerun
    relies on. Remote units go one after another, one round trip each.
    """
    local = [unit for unit in units if not unit.submitted.remote]
    outcomes: dict[int, list[tuple[_Job, AsyncResult]] | Exception] = {}
    if concurrency > 1 and len(local) > 1:
        with ThreadPoolExecutor(min(concurrency, len(local))) as pool:
            futures = {id(unit): pool.submit(_outcome, unit) for unit in local}
            outcomes = {key: future.result() for key, future in futures.items()}
    for unit in units:
        if id(unit) not in outcomes:
            outcomes[id(unit)] = _outcome(unit)
    return [(unit, outcomes[id(unit)]) for unit in units]


def _outcome(unit: _Unit) -> list[tuple[_Job, AsyncResult]] | Exception:
    """The unit's submitted results, or the error its submission raised (for the caller)."""
    try:
        return _submit_unit(unit)
    except Exception as error:  # noqa: BLE001 - handed to _submit_units, which sorts it out
        return error


def _array_hint(tasks: int) -> str:
    """What a user reads under a refused array: it may be the site's limit, and the ways out."""
    return (
        f"clusterjob: this was an array of {tasks} jobs packed by submit_all; if the site allows "
        "fewer tasks per array, set JobScript.max_array_size (or max_array_size in the "
        "[Attributes] of an INI file), or call submit_all(..., max_array_size=N) or "
        "submit_all(..., pack=False)"
    )


def _submit_unit(unit: _Unit) -> list[tuple[_Job, AsyncResult]]:
    backend = unit.jobs[0].backend
    job = unit.submitted
    transport: Transport = get_transport(job.remote, ssh=job.ssh, scp=job.scp)
    command = backend.cmd_submit(job)
    checkpoint("before_submit")
    answer = transport.run(command, cwd=job.job_folder())
    checkpoint("after_submit")
    job_id = read_job_id(
        backend,
        command,
        answer,
        "the intents let the next submit_all() find the job by its tag" if unit.tag else "",
    )
    now = time.time()
    done = []
    for task, (entry, record) in enumerate(zip(unit.jobs, unit.records), start=1):
        own_id = backend.task_job_id(job_id, task) if unit.packed else job_id
        result = _result_from(record, backend, own_id, entry.path)
        result.submitted_at = now
        done.append((entry, result))
    logger.info(
        "submitted %s %s to %s%s",
        f"array {job_id} of {len(unit.jobs)} jobs" if unit.packed else "job",
        job.resources["jobname"] if unit.packed else f"{job_id} ({job.resources['jobname']})",
        backend.name,
        f" on {job.remote}" if job.remote else "",
    )
    return done


def _forget_intents(unit: _Unit) -> None:
    cache.discard_intents([entry.path for entry in unit.jobs if entry.path is not None])
