"""The :class:`AsyncResult`: a submitted job (a "run"), its status and its cache file."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

from clusterjob import cache
from clusterjob.aio import wait_async
from clusterjob.errors import BackendNotInstalledError, CacheError, TransientTransportError
from clusterjob.plugins import get_backend, get_registry
from clusterjob.polling import poll, task_statuses_from_markers, wait_all
from clusterjob.status import (
    CANCELLED,
    COMPLETED,
    PENDING,
    is_finished,
    status_from_str,
    str_status,
)
from clusterjob.transport import Transport, get_transport

if TYPE_CHECKING:  # pragma: no cover
    from clusterjob.backends import ClusterjobBackend
    from clusterjob.polling import WatchState

__all__ = ["AsyncResult", "run_local_script"]

logger = logging.getLogger("clusterjob")

#: First pause between polls; it grows up to max_sleep_interval.
INITIAL_SLEEP_INTERVAL = 1.0
#: How often the ``status`` property retries an unreachable remote before giving up.
STATUS_ATTEMPTS = 3

#: Attributes stored in the cache file (besides status and backend).
_PERSISTENT = (
    "job_id",
    "cache_id",
    "tag",
    "remote",
    "rootdir",
    "workdir",
    "ssh",
    "scp",
    "jobname",
    "prologue",
    "epilogue",
    "max_sleep_interval",
    "sleep_interval",
    "submitted_at",
    "epilogue_done",
    "finished_notified",
    "exit_code",
    "marker_folder",
    "marker_name",
    "task_ids",
)


def _resolve_backend(backend: ClusterjobBackend | str) -> ClusterjobBackend:
    if isinstance(backend, str):
        return get_backend(backend)
    return backend


class AsyncResult:
    """Result of submitting a job script.

    Attributes:
        remote: host the job was submitted on (None: this machine).
        cache_file: file this result is cached in (rewritten on every status change), or None.
        backend: the backend instance the job runs under.
        max_sleep_interval: upper limit (s) for the pause between polls.
        sleep_interval: current pause (s) between polls; grows up to max_sleep_interval.
        job_id: the scheduler's job ID.
        prologue: the rendered prologue (for reference; it ran before submission).
        epilogue: rendered script run locally once, when the job is first seen finished.
        ssh, scp: executables (with options) used to reach ``remote``.
        cache_id, tag: the submission's cache ID and the tag the job carries.
        resumed: whether ``submit()`` found this job in the cache (or adopted
            it after an interrupted submission) instead of submitting it.
        exit_code: the job script's exit status once the job finished, where the
            backend reports it (the ``local`` backend does); None while unknown.
            Cached with the status.
        marker_folder, marker_name: where the job writes its exit markers
            (:mod:`clusterjob.markers`); None for a job without markers.
        task_ids: the task IDs of an array job, as the backend read them at
            submission (``array_task_ids``); None: not an array, or unknown
            (then the scheduler alone reports on the tasks). Cached.
        scheduler_interval: seconds between two questions to the scheduler about a job
            with markers (class attribute; the markers are read every cycle).
        marker_grace: seconds a job the scheduler no longer lists (or reports
            finished) may take to show its exit marker before the scheduler's
            (or accounting's) word is taken (class attribute).
    """

    scheduler_interval: float = 60.0
    marker_grace: float = 60.0

    def __init__(self, backend: ClusterjobBackend | str | None = None) -> None:
        self.backend: ClusterjobBackend | None = (
            _resolve_backend(backend) if backend is not None else None
        )
        self.remote: str | None = None
        self.cache_file: str | None = None
        self.max_sleep_interval: int = 900
        self.sleep_interval: float = INITIAL_SLEEP_INTERVAL
        self.job_id: str | None = None
        self.cache_id: str | None = None
        self.tag: str | None = None
        self.rootdir: str = "."
        self.workdir: str = "."
        self.jobname: str | None = None
        self.prologue: str = ""
        self.epilogue: str = ""
        self.ssh: str = "ssh"
        self.scp: str = "scp"
        self.submitted_at: float | None = None
        self.epilogue_done: bool = False
        self.finished_notified: bool = False
        #: True if submit() returned this job from the cache instead of submitting it (not cached).
        self.resumed: bool = False
        #: The exit status of the job script, once the backend reports it (None: unknown).
        self.exit_code: int | None = None
        #: Folder (as the submit host names it) and name of the job's exit markers (None: none).
        self.marker_folder: str | None = None
        self.marker_name: str | None = None
        #: The task IDs of an array job (None: not an array, or not known to the backend).
        self.task_ids: list[str] | None = None
        #: What polling knows beyond the status (markers seen, when to ask the scheduler).
        self._watch: WatchState | None = None
        self._status: int = PENDING

    def __repr__(self) -> str:
        backend = self.backend.name if self.backend is not None else None
        return (
            f"<AsyncResult job_id={self.job_id!r} backend={backend!r} remote={self.remote!r} "
            f"status={str_status.get(self._status, self._status)}>"
        )

    @property
    def transport(self) -> Transport:
        return get_transport(self.remote, ssh=self.ssh, scp=self.scp)

    # -- status -------------------------------------------------------------

    @property
    def status(self) -> int:
        """The job status (a :mod:`clusterjob.status` code); asks the scheduler unless finished.

        An unreachable remote is retried a few times with backoff; if it stays
        unreachable, :class:`~clusterjob.errors.TransientTransportError` is
        raised (it never turns into a status).
        """
        if is_finished(self._status):
            return self._status
        delay = 1.0
        for attempt in range(1, STATUS_ATTEMPTS + 1):
            try:
                self.poll()
                break
            except TransientTransportError as exc:
                if attempt == STATUS_ATTEMPTS:
                    raise
                logger.warning(
                    "cannot reach %s to poll job %s (%s); retrying in %.0f s",
                    self.remote,
                    self.job_id,
                    exc,
                    delay,
                )
                time.sleep(delay)
                delay *= 2
        return self._status

    def poll(self) -> int:
        """Ask the scheduler once and record the answer; return the (possibly unchanged) status."""
        if not is_finished(self._status):
            poll([self])
        return self._status

    def update_status(self, status: int | None, detail: str = "") -> None:
        """Record a status reported by the scheduler (None: the scheduler did not say)."""
        if status is None:
            logger.warning(
                "job %s (%s): the scheduler reports no status%s; keeping %s",
                self.job_id,
                self.jobname,
                f" ({detail})" if detail else "",
                str_status.get(self._status, self._status),
            )
            return
        if status not in str_status:
            raise ValueError(f"backend {self.backend!r} returned invalid status {status!r}")
        if status == self._status:
            return
        logger.info("job %s (%s): %s", self.job_id, self.jobname, str_status[status])
        self._status = status
        finished = is_finished(status)
        if self.cache_file:
            # Under the lock, so that of several processes watching one cached
            # job exactly one runs the epilogue and the finished-hook.
            with cache.locked(self.cache_file):
                self._merge_done_flags()
                self.dump()
                if finished:
                    self._finish()
        elif finished:
            self._finish()

    def _merge_done_flags(self) -> None:
        assert self.cache_file is not None
        record = cache.read_record(self.cache_file)  # CacheError: never overwrite what is not ours
        if record is not None and record.get("job_id") == self.job_id:
            self.epilogue_done = self.epilogue_done or bool(record.get("epilogue_done"))
            self.finished_notified = self.finished_notified or bool(record.get("finished_notified"))

    def _finish(self) -> None:
        if self.epilogue and not self.epilogue_done:
            self.epilogue_done = True
            if self.cache_file:
                self.dump()
            self.run_epilogue()
        if not self.finished_notified:
            self.finished_notified = True
            if self.cache_file:
                self.dump()
            try:
                get_registry().manager.hook.clusterjob_job_finished(result=self)
            except Exception:
                logger.exception("a clusterjob_job_finished hook failed for job %s", self.job_id)

    def get(self, timeout: float | None = None) -> int:
        """Wait (at most ``timeout`` seconds) and return the status."""
        self.wait(timeout)
        return self.status

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the job finished or roughly ``timeout`` seconds passed.

        Polls with a growing pause (``sleep_interval`` up to
        ``max_sleep_interval``). While the remote is unreachable the wait goes
        on, with a warning, and resumes when the link comes back.
        """
        wait_all([self], timeout=timeout, progress=False)

    async def wait_async(self, timeout: float | None = None) -> None:
        """:meth:`wait` for asyncio: ``await result.wait_async()`` leaves the event loop free.

        The job is polled in the cycles that every waiting coroutine of the
        loop shares (:mod:`clusterjob.aio`): one scheduler command per backend
        and host, however many jobs are awaited.
        """
        await wait_async(self, timeout)

    def ready(self) -> bool:
        """Whether the job has finished (COMPLETED, CANCELLED or FAILED)."""
        return is_finished(self.status)

    def successful(self) -> bool:
        """True if COMPLETED, False if CANCELLED/FAILED; AssertionError if not finished."""
        status = self.status
        assert is_finished(status), (
            f"job {self.job_id} has not finished (status {str_status[status]})"
        )
        return status == COMPLETED

    def cancel(self) -> None:
        """Cancel the job; no effect if it has finished already."""
        if self.ready():
            return
        assert self.backend is not None
        self.transport.run(self.backend.cmd_cancel(self))
        self.update_status(CANCELLED)

    def run_epilogue(self) -> None:
        """Run the epilogue script in the current working directory.

        Raises:
            subprocess.CalledProcessError: if it exits non-zero.
        """
        run_local_script(self.epilogue, "epilogue")

    def task_status(self) -> dict[str, int]:
        """Status of each task of an array job (task ID -> status code).

        With exit markers and known :attr:`task_ids`, the tasks' markers are
        read first (one operation): a task's exit code decides it (0:
        COMPLETED, else FAILED). The scheduler is asked only when a task has
        no exit code there (not started, running, or killed by a signal),
        and its answer counts for those tasks only.

        Raises NotImplementedError if the backend cannot report array tasks
        and the markers do not tell them all.
        """
        assert self.backend is not None
        decided = task_statuses_from_markers(self)
        if self.task_ids and all(task in decided for task in self.task_ids):
            return {task: decided[task] for task in self.task_ids}
        command = self.backend.cmd_task_status(self)
        if command is None:
            raise NotImplementedError(
                f"backend {self.backend.name!r} cannot report the tasks of array jobs"
            )
        answer = self.transport.run(command, check=False)
        return {**self.backend.get_task_status(answer.stdout, self), **decided}

    # -- persistence --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in _PERSISTENT}
        data["state"] = "submitted"
        data["backend"] = self.backend.name if self.backend is not None else None
        data["status"] = str_status[self._status]
        return data

    def dump(self, cache_file: str | None = None) -> None:
        """Write this result as JSON to ``cache_file`` (default ``self.cache_file``), atomically."""
        target = cache_file or self.cache_file
        if not target:
            raise ValueError(
                "AsyncResult.dump() needs a cache_file (none given and self.cache_file is None)"
            )
        cache.atomic_write_json(target, self.to_dict(), durable=False)

    def load(self, cache_file: str) -> AsyncResult:
        """Read this result from ``cache_file`` (written by :meth:`dump`); return self."""
        record = cache.read_record(cache_file)
        if record is None:
            raise CacheError(f"cache file {cache_file} does not exist")
        self.restore(record, cache_file)
        return self

    @classmethod
    def from_cache(cls, cache_file: str) -> AsyncResult:
        """A new result read from ``cache_file``."""
        return cls().load(cache_file)

    def restore(self, record: dict[str, Any], cache_file: str) -> None:
        if record.get("state") != "submitted":
            raise CacheError(
                f"cache file {cache_file} holds an interrupted submission (state "
                f"{record.get('state')!r}), not a result; submitting it again with the same "
                "cache id (submit(), or clusterjob submit) finds its job or submits it"
            )
        try:
            self.backend = _resolve_backend(record["backend"])
            self._status = status_from_str(record["status"])
            for name in _PERSISTENT:
                if name in record:
                    setattr(self, name, record[name])
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, BackendNotInstalledError):
                raise
            raise CacheError(
                f"cache file {cache_file} is missing or has an invalid field: {exc}"
            ) from None
        self.cache_file = cache_file
        self.resumed = True


def run_local_script(script: str, what: str) -> None:
    """Run a rendered prologue/epilogue in the current directory; CalledProcessError on failure."""
    if not script.strip():
        return
    fd, path = tempfile.mkstemp(prefix=f"clusterjob-{what}-", suffix=".sh")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(script)
        os.chmod(path, 0o700)
        logger.debug("running %s %s", what, path)
        subprocess.run([path], check=True, stdin=subprocess.DEVNULL)
    finally:
        os.unlink(path)
