"""The backend contract: the batch status query, the original's single-job methods as adapters
(both ways), the two-phase tag lookup, and what a backend must implement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, wait_all
from clusterjob.backends import ClusterjobBackend, CommandResult
from clusterjob.backends.local import RUNNER_MODULE, LocalBackend
from clusterjob.backends.output import output_lines
from clusterjob.errors import SubmitError
from clusterjob.polling import poll
from clusterjob.status import COMPLETED, FAILED, PENDING, RUNNING
from clusterjob.submission import find_tagged_jobs
from clusterjob.transport import get_transport

RUNNER = [sys.executable, "-m", RUNNER_MODULE]
STATES = {"PENDING": PENDING, "RUNNING": RUNNING, "COMPLETED": COMPLETED, "FAILED": FAILED}


def state_lines(output: str) -> list[list[str]]:
    """The runner's ``ID STATE`` lines, without the ``ID exit-code N`` lines it adds."""
    return [words for words in map(str.split, output_lines(output)) if len(words) == 2]


class RunnerJobs(ClusterjobBackend):
    """What every backend below shares: jobs run by the local runner, headers left to it."""

    extension = "sh"
    prefix = "#LOCAL"

    def cmd_submit(self, jobscript):
        return [*RUNNER, "submit", "--", jobscript.script_filename()]

    def get_job_id(self, response):
        return output_lines(response)[-1]

    def cmd_cancel(self, run):
        return [*RUNNER, "cancel", str(run.job_id)]

    def resource_headers(self, jobscript):  # type: ignore[no-untyped-def, override]
        return []


class OriginalStyle(RunnerJobs):
    """A custom backend as the original documentation describes one: the single-job methods only."""

    name = "original-style"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def cmd_status(self, run, finished=False):
        self.asked.append(str(run.job_id))
        return [*RUNNER, "status", str(run.job_id)]

    def get_status(self, response, finished=False):
        return STATES.get(state_lines(response)[-1][1])


class BatchOnly(RunnerJobs):
    """A backend with only the batch methods."""

    name = "batch-only"

    def status_command(self, runs, finished=False):
        return None if finished else [*RUNNER, "status", *(str(run.job_id) for run in runs)]

    def parse_status(self, result, job_ids, finished=False):
        reported = dict(state_lines(result.stdout)) if result.returncode == 0 else {}
        return {job_id: STATES.get(state) for job_id, state in reported.items()}


@pytest.fixture(autouse=True)
def local_defaults(tmp_path: Path) -> None:
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    JobScript.exit_markers = False  # the backends' own status queries are under test, not markers


def test_an_original_style_backend_polls_one_job_per_command() -> None:
    """The original's custom backends implement cmd_status/get_status; they keep working, in batches of one."""
    backend = OriginalStyle()
    assert backend.missing_methods() == []
    assert backend.asks_one_job_at_a_time()
    JobScript.register_backend(backend)
    results = [
        JobScript(f"exit {i % 2}", jobname=f"o{i}", backend="original-style").submit()
        for i in range(3)
    ]
    backend.asked.clear()
    poll(results)
    assert sorted(backend.asked) == sorted(
        r.job_id for r in results
    )  # one command per job, each about one job
    assert wait_all(results, timeout=60) == [COMPLETED, FAILED, COMPLETED]
    # The batch methods adapt to them, for one job.
    run = results[0]
    assert backend.status_command([run]) == [*RUNNER, "status", run.job_id]
    assert backend.parse_status(CommandResult(0, f"{run.job_id} COMPLETED\n"), [run.job_id]) == {
        run.job_id: COMPLETED
    }
    with pytest.raises(ValueError, match="asks about one job per command .* got 2 runs"):
        backend.status_command(results[:2])


def test_a_batch_only_backend_gets_working_single_job_methods() -> None:
    backend = BatchOnly()
    assert backend.missing_methods() == []
    assert not backend.asks_one_job_at_a_time()
    JobScript.register_backend(backend)
    result = JobScript("true", jobname="b", backend="batch-only").submit()
    assert result.get(timeout=30) == COMPLETED
    command = backend.cmd_status(result)
    assert command == [*RUNNER, "status", result.job_id]
    assert (
        backend.cmd_status(result, finished=True) == command
    )  # no second query: the first one serves
    answer = subprocess.run(command, capture_output=True, text=True, check=True)
    assert backend.get_status(answer.stdout) == COMPLETED
    assert backend.get_status(answer.stdout, finished=True) == COMPLETED
    assert backend.get_status("") is None  # no job in the output
    assert (
        backend.get_status("1 RUNNING\n2 PENDING\n") is None
    )  # two jobs: which one was asked about?


def test_the_single_job_adapter_refuses_a_batch_backend_without_a_first_query() -> None:
    class NothingToAsk(BatchOnly):
        name = "nothing-to-ask"

        def status_command(self, runs, finished=False):
            return None

    run = AsyncResult(NothingToAsk())
    run.job_id = "1"
    with pytest.raises(
        NotImplementedError, match="backend 'nothing-to-ask' has no status command for job 1"
    ):
        run.backend.cmd_status(run)  # type: ignore[union-attr]


def test_a_subclass_overriding_get_status_of_a_batch_backend_has_its_override_used() -> None:
    class CompletedMeansFailed(LocalBackend):
        name = "pessimist"

        def get_status(self, response, finished=False):
            status = super().get_status(response, finished)
            return FAILED if status == COMPLETED else status

    backend = CompletedMeansFailed()
    assert backend.asks_one_job_at_a_time()
    JobScript.register_backend(backend)
    assert JobScript("true", jobname="p", backend="pessimist").submit().get(timeout=30) == FAILED


def test_a_backend_with_no_status_query_says_what_to_implement_and_never_recurses() -> None:
    class NoStatus(RunnerJobs):
        name = "no-status"

    backend = NoStatus()
    run = AsyncResult(backend)
    run.job_id = "1"
    remedy = r"has no status query: implement status_command\(\) and parse_status\(\) .* or cmd_status\(\) and get_status\(\)"
    for call in (
        lambda: backend.cmd_status(run),
        lambda: backend.get_status("1 RUNNING\n"),
        lambda: backend.status_command([run]),
        lambda: backend.parse_status(CommandResult(0), ["1"]),
    ):
        with pytest.raises(NotImplementedError, match=remedy):
            call()
    assert backend.missing_methods() == [
        "a status query: status_command() and parse_status(), or cmd_status() and get_status()"
    ]
    with pytest.raises(TypeError, match="backend 'no-status' does not implement a status query"):
        JobScript.register_backend(backend)


def test_a_tag_lookup_needs_headers_that_carry_the_tag() -> None:
    """Crash recovery is a tag written into the job and looked up again, or neither: a lookup alone
    would prove "no such job" for every interrupted submission, which is then submitted twice."""

    class LooksUpOnly(ClusterjobBackend):
        name = "looks-up-only"
        extension = "sh"
        cmd_submit = get_job_id = cmd_cancel = OriginalStyle.cmd_submit
        status_command = parse_status = OriginalStyle.cmd_submit

        def tag_lookup_command(self, tag, remote=None, finished=False):
            return ["true"]

    with pytest.raises(
        TypeError,
        match=r"'looks-up-only' does not implement render_headers\(\) that writes "
        r"context.tag into the job \(crash recovery needs a tag attached and looked up, or neither",
    ):
        JobScript.register_backend(LooksUpOnly())
    assert LocalBackend.missing_methods() == []
    assert OriginalStyle.missing_methods() == []  # no lookup: an interrupted submission is reported


class TwoPhaseLookup(OriginalStyle):
    """A tag lookup like SLURM's: the queue first, then accounting for a job that left it."""

    name = "two-phase"

    def __init__(self, accounting: str | None) -> None:
        super().__init__()
        self.accounting = accounting

    def tag_lookup_command(self, tag, remote=None, finished=False):
        if not finished:
            return ["sh", "-c", "echo '7 cj-other'"]
        return None if self.accounting is None else ["sh", "-c", f"echo '{self.accounting}'"]

    def parse_tag_lookup(self, result, tag, finished=False):
        found = [
            line.split()[0] for line in output_lines(result.stdout) if line.split()[1:] == [tag]
        ]
        return found if found or finished else None


def test_a_tag_not_in_the_queue_is_looked_up_in_accounting() -> None:
    local = get_transport(None)
    assert find_tagged_jobs(TwoPhaseLookup("41 cj-x"), "cj-x", local, "c.cache") == ["41"]
    assert (
        find_tagged_jobs(TwoPhaseLookup("8 cj-other"), "cj-x", local, "c.cache") == []
    )  # accounting proves it
    with pytest.raises(
        SubmitError, match=r"interrupted \(c.cache\) and backend 'two-phase' cannot tell whether"
    ):
        find_tagged_jobs(
            TwoPhaseLookup(None), "cj-x", local, "c.cache"
        )  # the queue alone proves nothing
