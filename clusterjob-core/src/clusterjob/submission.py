"""``JobScript.submit``: exactly one job per ``cache_id``, whatever crashes when.

The order of events, and why:

1. Without the lock, a cached result is returned at once (resuming a workflow
   of thousands of jobs reads one small file per job and nothing else).
2. Under the cache file's lock: a cached result is returned (or discarded for
   ``force``/``retry``); an *intent* left by an interrupted submission is
   resolved by asking the scheduler for the job carrying the intent's tag —
   found: adopted; provably absent: submitted below.
3. Prologue, job script and auxiliary scripts are written (rerunning them
   after a crash is harmless: no job exists yet).
4. The intent (with a fresh tag) is made durable, then the scheduler is called
   with the tag attached, then the result replaces the intent.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from clusterjob import cache
from clusterjob.async_result import AsyncResult, run_local_script
from clusterjob.errors import CacheError, SchedulerError, SubmitError, TransientTransportError
from clusterjob.faults import checkpoint
from clusterjob.status import CANCELLED, FAILED

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.backends import ClusterjobBackend, Command
    from clusterjob.jobscript import JobScript

__all__ = ["default_cache_id", "submit"]

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
                    result = _submit_now(jobscript, backend, after, cache_file=path, cache_id=cache_id)
    if block:
        result.wait()
        return result.status
    return result


def _cached(path: str, retry: bool) -> AsyncResult | None:
    """The usable cached result in ``path``, if any (no lock: files are replaced atomically)."""
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
    jobscript: JobScript, backend: ClusterjobBackend, path: str, cache_id: str, force: bool, retry: bool
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
    tag = record.get("tag")
    command = _find_tag_command(backend, tag, record.get("remote")) if tag else None
    if command is None or not tag:
        raise SubmitError(
            f"an earlier submission of this job was interrupted ({path}) and backend "
            f"{backend.name!r} cannot tell whether the scheduler received it. Check the "
            "scheduler, then delete the cache file (or submit with force=True) to submit again"
        )
    transport = jobscript_transport(record)
    answer = transport.run(command, check=False)
    if answer.returncode in (126, 127):  # the lookup did not run: that proves nothing
        raise SubmitError(
            f"an earlier submission of this job was interrupted ({path}) and the command that looks for "
            f"its job (tag {tag}) could not run{' on ' + transport.remote if transport.remote else ''}: "
            f"{answer.stderr.strip() or answer.stdout.strip()}. Fix that, then submit again"
        )
    found = backend.get_job_ids_for_tag(answer.stdout, tag)
    if not found:
        logger.info("interrupted submission %s never reached the scheduler; submitting", path)
        return None
    if len(found) > 1:
        logger.warning("several jobs carry tag %s (%s); adopting the first", tag, ", ".join(found))
    result = _result_from(record, backend, found[0], path)
    result.resumed = True
    result.submitted_at = record.get("intent_at")
    logger.info("adopting job %s, submitted before an interruption (%s)", found[0], path)
    result.dump()
    return result


def _find_tag_command(backend: ClusterjobBackend, tag: str, remote: str | None) -> Command | None:
    """``backend.cmd_find_tag`` for a lookup on ``remote``.

    ``remote`` is passed only where the method accepts it: a backend written
    against the older ``cmd_find_tag(self, tag)`` still works.
    """
    parameters = inspect.signature(backend.cmd_find_tag).parameters.values()
    if any(p.name == "remote" or p.kind is p.VAR_KEYWORD for p in parameters):
        return backend.cmd_find_tag(tag, remote=remote)
    return backend.cmd_find_tag(tag)


def jobscript_transport(record: dict[str, Any]) -> Any:
    from clusterjob.transport import get_transport

    return get_transport(record.get("remote"), ssh=record.get("ssh", "ssh"), scp=record.get("scp", "scp"))


def _result_from(record: dict[str, Any], backend: ClusterjobBackend, job_id: str, path: str | None) -> AsyncResult:
    result = AsyncResult(backend)
    for name, value in record.items():
        if hasattr(result, name) and name not in ("backend", "status", "state"):
            setattr(result, name, value)
    result.job_id = job_id
    result.cache_file = path
    return result


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

    tag = _new_tag(cache_id) if cache_file and cache_id else None
    job = copy.copy(jobscript)
    object.__setattr__(job, "resources", copy.copy(jobscript.resources))
    dependencies = _job_ids(after)
    if dependencies:
        for key, value in backend.dependency_resources(dependencies).items():
            if key in job.resources and job.resources[key] != value:
                raise ValueError(
                    f"submit(after=...) sets resource {key}={value!r}, but the job already has "
                    f"{key}={job.resources[key]!r}; give the dependency one way only"
                )
            job.resources[key] = value
    if tag:
        job.resources.update(backend.tag_resources(tag))
    job.filename = jobscript.script_filename()
    job.write_files(after_script=lambda: checkpoint("after_write"))
    checkpoint("after_upload")

    record: dict[str, Any] = {
        "cache_id": cache_id,
        "tag": tag,
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
    }
    if cache_file:
        cache.atomic_write_json(cache_file, {**record, "state": "submitting", "intent_at": time.time()})
    checkpoint("before_submit")
    transport = jobscript_transport(record)
    command = backend.cmd_submit(job)
    try:
        answer = transport.run(command, cwd=job.job_folder())
    except TransientTransportError:
        raise  # the job may or may not exist: the intent stays, the next submit() finds out
    except SchedulerError:
        if cache_file:
            os.unlink(cache_file)  # the scheduler refused the job: nothing to find later
        raise
    checkpoint("after_submit")
    job_id = backend.get_job_id(answer.stdout)
    if not job_id:
        raise SubmitError(
            f"could not read a job ID from the output of {command!r}: "
            f"stdout={answer.stdout.strip()!r} stderr={answer.stderr.strip()!r}"
            + (f"; the intent in {cache_file} lets the next submit() find the job by its tag" if cache_file else "")
        )
    result = _result_from(record, backend, job_id, cache_file)
    result.submitted_at = time.time()
    if cache_file:
        result.dump()
    logger.info(
        "submitted job %s (%s) to %s%s", job_id, record["jobname"], backend.name,
        f" on {jobscript.remote}" if jobscript.remote else "",
    )
    _notify_submitted(result)
    return result


def _notify_submitted(result: AsyncResult) -> None:
    from clusterjob.plugins import get_registry

    try:
        get_registry().manager.hook.clusterjob_job_submitted(result=result)
    except Exception:
        logger.exception("a clusterjob_job_submitted hook failed for job %s", result.job_id)



