"""What a backend is handed and asked in the tests: results of jobs, of commands, of lookups."""

from __future__ import annotations

from collections.abc import Callable

from clusterjob.async_result import AsyncResult
from clusterjob.backends import ClusterjobBackend, Command, CommandResult


def job_result(
    backend: ClusterjobBackend | str, job_id: str, submitted_at: float | None = None
) -> AsyncResult:
    """A result that knows nothing but its job (and when it was submitted): what a backend
    sees of a run, and whose status comes from the scheduler alone."""
    result = AsyncResult(backend)
    result.job_id = job_id
    result.submitted_at = submitted_at
    return result


def ok(stdout: str, stderr: str = "") -> CommandResult:
    """The result of a command that succeeded."""
    return CommandResult(0, stdout, stderr)


def look_up_tag(
    backend: ClusterjobBackend, tag: str, run: Callable[[Command], CommandResult]
) -> list[str]:
    """The job IDs that carry ``tag``, asked as clusterjob asks after a crash: the queue, then
    the accounting if the queue cannot tell; ``run`` runs a command and keeps its result."""
    for finished in (False, True):
        command = backend.tag_lookup_command(tag, finished=finished)
        assert command is not None, f"backend {backend.name!r} has no tag lookup"
        found = backend.parse_tag_lookup(run(command), tag, finished)
        if found is not None:
            return found
    raise AssertionError("the accounting lookup always concludes")
