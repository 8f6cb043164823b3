"""``JobScript.submit``: exactly one job per ``cache_id``, whatever crashes when.

The order of events, and why:

1. Without the lock, a cached result is returned at once (resuming a workflow
   of thousands of jobs reads one small file per job and nothing else).
2. Under the cache file's lock: a cached result is returned (or discarded for
   ``force``/``retry``); an *intent* left by an interrupted submission is
   resolved by asking the scheduler for the job carrying the intent's tag —
   found: adopted; provably absent: submitted below.
3. The prologue runs; on this machine the job script and auxiliary scripts
   are written (rerunning that after a crash is harmless: no job exists yet).
4. The intent (with a fresh tag) is made durable (written to the cache file and
   flushed in the folder's journal, :mod:`clusterjob.journal`), then the
   scheduler is called with the tag attached, then the result replaces the
   intent.

On a remote, the scripts, the job folder, the marker folder's probe and the
scheduler call travel in one ssh round trip
(:meth:`~clusterjob.transport.Transport.run_with_files`), so there the
intent is made durable before the scripts are written: a crash in between
leaves an intent whose tag the scheduler provably does not know, and the
next ``submit()`` submits the job.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from clusterjob import cache
from clusterjob.async_result import AsyncResult, run_local_script
from clusterjob.errors import (
    CacheError,
    ResourcesNotSupportedError,
    SchedulerError,
    SubmitError,
    TransientTransportError,
)
from clusterjob.faults import checkpoint
from clusterjob.marker_files import MarkerPlan, marker_plan, usable_markers
from clusterjob.plugins import get_registry
from clusterjob.rendering import SubmissionContext
from clusterjob.status import CANCELLED, FAILED
from clusterjob.transport import FileSpec, Transport, get_transport

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.backends import ClusterjobBackend
    from clusterjob.commands import Command, CommandResult
    from clusterjob.jobscript import JobScript

__all__ = ["default_cache_id", "find_tagged_jobs", "submit"]

logger = logging.getLogger("clusterjob")


def default_cache_id(jobscript: JobScript) -> str:
    """A cache_id derived from everything that defines the job: same job, same id."""
    digest = hashlib.sha256()
    for part in (
        jobscript.backend,
        str(jobscript.remote),
        jobscript.job_folder(),
        jobscript.script_filename(),
        str(jobscript),
        *(f"{k}\0{v}" for k, v in sorted(jobscript.aux_scripts.items())),
    ):
        digest.update(part.encode("utf-8") + b"\0")
    return f"{jobscript.resources['jobname']}-{digest.hexdigest()[:16]}"


def _new_tag(cache_id: str) -> str:
    return f"cj-{hashlib.sha1(cache_id.encode('utf-8')).hexdigest()[:10]}-{secrets.token_hex(3)}"


def _job_ids(after: list[Any] | None) -> list[str]:
    ids = []
    for item in after or []:
        job_id = item.job_id if isinstance(item, AsyncResult) else item
        if not job_id:
            raise ValueError(f"after= needs submitted results or job IDs, got {item!r}")
        ids.append(str(job_id))
    return ids


def submit(
    jobscript: JobScript,
    block: bool = False,
    cache_id: str | None = None,
    force: bool = False,
    retry: bool = True,
    after: list[Any] | None = None,
) -> AsyncResult | int:
    """See :meth:`clusterjob.JobScript.submit`."""
    backend = jobscript._get_backend()
    cache_folder = type(jobscript).cache_folder
    result: AsyncResult | None
    if cache_folder is None:
        result = _submit_now(jobscript, backend, after, cache_file=None, cache_id=cache_id)
    else:
        if cache_id is None:
            cache_id = default_cache_id(jobscript)
        path = cache.cache_path(cache_folder, type(jobscript).cache_prefix, cache_id)
        result = None if force else _cached(path, retry)
        if result is None:
            with cache.locked(path):
                result = _resolve_under_lock(jobscript, backend, path, cache_id, force, retry)
                if result is None:
                    result = _submit_now(
                        jobscript, backend, after, cache_file=path, cache_id=cache_id
                    )
    if block:
        result.wait()
        return result.status
    return result


def _cached(path: str, retry: bool) -> AsyncResult | None:
    """The usable cached result in ``path``, if any (no lock: files are replaced atomically)."""
    cache.settle(os.path.dirname(path) or ".")
    record = cache.read_record(path)
    if record is None or record.get("state") != "submitted":
        return None
    result = AsyncResult()
    result.restore(record, path)
    if retry and result._status in (CANCELLED, FAILED):
        return None
    logger.debug("using cached result %s for job %s", path, result.job_id)
    return result


def _resolve_under_lock(
    jobscript: JobScript,
    backend: ClusterjobBackend,
    path: str,
    cache_id: str,
    force: bool,
    retry: bool,
) -> AsyncResult | None:
    try:
        record = cache.read_record(path)
    except CacheError:
        if not force:
            raise
        cache.set_aside(path)
        return None
    if record is None:
        return None
    state = record.get("state")
    if state == "submitted":
        result = AsyncResult()
        result.restore(record, path)
        if force or (retry and result._status in (CANCELLED, FAILED)):
            logger.info("discarding cached job %s (%s) and resubmitting", result.job_id, path)
            return None
        return result
    if state == "submitting":
        return _adopt_interrupted(jobscript, backend, record, path)
    raise CacheError(f"cache file {path} has unknown state {state!r}; it was left untouched")


def _adopt_interrupted(
    jobscript: JobScript, backend: ClusterjobBackend, record: dict[str, Any], path: str
) -> AsyncResult | None:
    """An earlier submit() died after recording its intent: find its job or prove there is none."""
    found = find_tagged_jobs(backend, record.get("tag"), jobscript_transport(record), path)
    if not found:
        logger.info("interrupted submission %s never reached the scheduler; submitting", path)
        return None
    if len(found) > 1:
        logger.warning(
            "several jobs carry tag %s (%s); adopting the first",
            record.get("tag"),
            ", ".join(found),
        )
    result = _result_from(record, backend, found[0], path)
    result.resumed = True
    result.submitted_at = record.get("intent_at")
    logger.info("adopting job %s, submitted before an interruption (%s)", found[0], path)
    result.dump()
    return result


def find_tagged_jobs(
    backend: ClusterjobBackend,
    tag: str | None,
    transport: Transport,
    path: str,
    answers: dict[str, CommandResult] | None = None,
) -> list[str]:
    """IDs of the jobs carrying ``tag`` ([]: provably none): the queue, then accounting if needed.

    ``answers`` (command -> its result) lets many tags share one lookup: a
    rerun after a crash of ``submit_all`` looks for the tags of a whole batch,
    and most backends' lookup command is the same for every tag (all of the
    user's jobs with their tags).

    Raises:
        SubmitError: when the backend cannot look up tags, or the scheduler's
            answers cannot prove whether such a job exists.
    """
    command_for, parse = backend.tag_lookup_methods()
    for finished in (False, True):
        command = command_for(tag, transport.remote, finished) if tag else None
        if command is None or tag is None:
            break
        key = repr(command)
        answer = answers.get(key) if answers is not None else None
        if answer is None:
            answer = _run_lookup(transport, command, tag, path)
            if answers is not None:
                answers[key] = answer
        found = parse(answer, tag, finished)
        if found is not None:
            return found
    raise SubmitError(
        f"an earlier submission of this job was interrupted ({path}) and backend "
        f"{backend.name!r} cannot tell whether the scheduler received it. Check the "
        "scheduler, then delete the cache file (or submit with force=True) to submit again"
    )


def _run_lookup(transport: Transport, command: Command, tag: str, path: str) -> CommandResult:
    """The result of a tag lookup; SubmitError if the command did not run (that proves nothing)."""
    answer = transport.run(command, check=False)
    if answer.returncode in (126, 127):
        raise SubmitError(
            f"an earlier submission of this job was interrupted ({path}) and the command that "
            f"looks for its job (tag {tag}) could not run"
            f"{' on ' + transport.remote if transport.remote else ''}: "
            f"{answer.stderr.strip() or answer.stdout.strip()}. Fix that, then submit again"
        )
    return answer


def jobscript_transport(record: dict[str, Any]) -> Transport:
    return get_transport(
        record.get("remote"), ssh=record.get("ssh", "ssh"), scp=record.get("scp", "scp")
    )


def _result_from(
    record: dict[str, Any], backend: ClusterjobBackend, job_id: str, path: str | None
) -> AsyncResult:
    result = AsyncResult(backend)
    for name, value in record.items():
        if hasattr(result, name) and name not in ("backend", "status", "state"):
            setattr(result, name, value)
    result.job_id = job_id
    result.cache_file = path
    return result


def _submission_context(
    backend: ClusterjobBackend, tag: str | None, dependencies: list[str]
) -> SubmissionContext | None:
    """The tag and dependencies the job is rendered with, for the backend's ``resource_headers``.

    None for a backend whose ``resource_headers`` takes no context (a
    subclass overriding the original's ``resource_headers(self, jobscript)``):
    its job carries no tag, so none is recorded and an interrupted submission
    is reported rather than looked up and found missing.

    Raises:
        ResourcesNotSupportedError: for dependencies such a backend cannot be given.
    """
    if backend.headers_take_context():
        return SubmissionContext(tag=tag, after=tuple(dependencies))
    if dependencies:
        raise ResourcesNotSupportedError(
            f"backend {backend.name!r} cannot express job dependencies (after=...): its "
            "resource_headers(jobscript) takes no submission context; add a parameter "
            "context=None and pass it on to super().resource_headers(jobscript, context)"
        )
    return None


def _submit_now(
    jobscript: JobScript,
    backend: ClusterjobBackend,
    after: list[Any] | None,
    cache_file: str | None,
    cache_id: str | None,
) -> AsyncResult:
    prologue = jobscript.render_script(jobscript.prologue) if jobscript.prologue.strip() else ""
    epilogue = jobscript.render_script(jobscript.epilogue) if jobscript.epilogue.strip() else ""
    run_local_script(prologue, "prologue")
    checkpoint("after_prologue")

    context = _submission_context(
        backend, _new_tag(cache_id) if cache_file and cache_id else None, _job_ids(after)
    )
    transport = get_transport(jobscript.remote, ssh=jobscript.ssh, scp=jobscript.scp)
    markers, probe = _markers_before_submission(
        jobscript,
        transport,
        context.tag if context and context.tag else _new_tag(str(jobscript.resources["jobname"])),
    )
    job = copy.copy(jobscript)
    job.filename = jobscript.script_filename()
    files = job.rendered_files(context=context, marker_lines=markers.lines if markers else ())
    folder = job.job_folder()
    folders = [folder] if folder else []
    if not transport.remote:
        _write_in_steps(transport, files, folders)
    record = _record(jobscript, backend, cache_id, context, markers, prologue, epilogue)
    if cache_file:
        intent = {**record, "state": "submitting", "intent_at": time.time()}
        cache.write_intents({cache_file: intent})
    if transport.remote:
        checkpoint("after_write")  # the files travel with the scheduler call, in one round trip
        checkpoint("after_upload")
    checkpoint("before_submit")
    command = backend.cmd_submit(job)
    try:
        if transport.remote:
            answer, unwritable = transport.run_with_files(command, folder, files, folders, probe)
            markers = usable_markers(markers, transport.remote, unwritable)
            record.update(_marker_fields(markers))
        else:
            answer = transport.run(command, cwd=folder)
    except TransientTransportError:
        raise  # the job may or may not exist: the intent stays, the next submit() finds out
    except SchedulerError:
        if cache_file:
            cache.discard_intents([cache_file])  # no job (a script not written, or refused)
        raise
    checkpoint("after_submit")
    job_id = read_job_id(
        backend,
        command,
        answer,
        f"the intent in {cache_file} lets the next submit() find the job by its tag"
        if cache_file
        else "",
    )
    result = _result_from(record, backend, job_id, cache_file)
    result.submitted_at = time.time()
    if cache_file:
        cache.write_results({cache_file: result.to_dict()})
    logger.info(
        "submitted job %s (%s) to %s%s",
        job_id,
        record["jobname"],
        backend.name,
        f" on {jobscript.remote}" if jobscript.remote else "",
    )
    _notify_submitted(result)
    return result


def _markers_before_submission(
    jobscript: JobScript, transport: Transport, name: str
) -> tuple[MarkerPlan | None, list[str]]:
    """The markers of the job, and the folders still to probe in the submission's round trip.

    On this machine, and for a remote folder whose probe is remembered, the
    folder's fate is known now (an unwritable one: no markers); a remote
    folder not probed yet is probed in the round trip that submits, and
    until then its lines are in the script (they fail silently in a folder
    that cannot be written).
    """
    markers = marker_plan(jobscript, name)
    probe = transport.unprobed([markers.folder]) if markers and transport.remote else []
    if markers and not probe:
        markers = usable_markers(
            markers, transport.remote, transport.probe_folders([markers.folder])
        )
    return markers, probe


def _write_in_steps(transport: Transport, files: list[FileSpec], folders: list[str]) -> None:
    """Write the job script, then the auxiliary scripts (the fault points between them)."""
    transport.write_files(files[:1], folders)
    checkpoint("after_write")
    transport.write_files(files[1:])
    checkpoint("after_upload")


def _marker_fields(markers: MarkerPlan | None) -> dict[str, str | None]:
    return {
        "marker_folder": markers.folder if markers else None,
        "marker_name": markers.name if markers else None,
    }


def _record(
    jobscript: JobScript,
    backend: ClusterjobBackend,
    cache_id: str | None,
    context: SubmissionContext | None,
    markers: MarkerPlan | None,
    prologue: str,
    epilogue: str,
) -> dict[str, Any]:
    """What the cache file says about the submission (the intent's, then the result's fields)."""
    return {
        "cache_id": cache_id,
        "tag": context.tag if context else None,
        "backend": backend.name,
        "remote": jobscript.remote,
        "rootdir": jobscript.rootdir,
        "workdir": jobscript.workdir,
        "ssh": jobscript.ssh,
        "scp": jobscript.scp,
        "jobname": jobscript.resources["jobname"],
        "prologue": prologue,
        "epilogue": epilogue,
        "max_sleep_interval": jobscript.max_sleep_interval,
        **_marker_fields(markers),
        "task_ids": backend.array_task_ids(jobscript),
    }


def read_job_id(
    backend: ClusterjobBackend, command: Command, answer: CommandResult, recovery: str
) -> str:
    """The job ID in the submit command's ``answer``; SubmitError naming the output and, if
    there is one, the way the job will still be found (``recovery``)."""
    job_id = backend.get_job_id(answer.stdout)
    if not job_id:
        raise SubmitError(
            f"could not read a job ID from the output of {command!r}: "
            f"stdout={answer.stdout.strip()!r} stderr={answer.stderr.strip()!r}"
            + (f"; {recovery}" if recovery else "")
        )
    return job_id


def _notify_submitted(result: AsyncResult) -> None:
    try:
        get_registry().manager.hook.clusterjob_job_submitted(result=result)
    except Exception:
        logger.exception("a clusterjob_job_submitted hook failed for job %s", result.job_id)
