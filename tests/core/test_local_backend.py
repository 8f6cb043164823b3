"""The built-in ``local`` backend, end to end: real detached processes on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, wait_all
from clusterjob.backends import CommandResult, ResourcesNotSupportedError
from clusterjob.backends.local import LocalBackend
from clusterjob.errors import SubmitError
from clusterjob.markers import remove_marker_lines
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from helpers.waiting import wait_for


@pytest.fixture(autouse=True)
def local_defaults(tmp_path: Path) -> None:
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1


def test_completed_job_maps_variables_and_writes_stdout(tmp_path: Path) -> None:
    body = "echo id=$CLUSTERJOB_ID name=$CLUSTERJOB_NAME dir=$CLUSTERJOB_WORKDIR host=$CLUSTERJOB_SUBMIT_HOST node=$CLUSTERJOB_NODELIST threads=$OMP_NUM_THREADS"
    result = JobScript(body, jobname="vars", workdir="w", stdout="vars.out", threads=3).submit()
    assert result.get(timeout=30) == COMPLETED
    assert result.successful()
    out = (tmp_path / "w" / "vars.out").read_text()
    host = os.uname().nodename
    assert (
        out == f"id={result.job_id} name=vars dir={tmp_path}/w host={host} node={host} threads=3\n"
    )


def test_failing_job_and_separate_stderr(tmp_path: Path) -> None:
    result = JobScript(
        "echo out; echo err >&2; exit 3", jobname="fail", stdout="f.out", stderr="f.err"
    ).submit()
    assert result.get(timeout=30) == FAILED
    assert not result.successful()
    assert (tmp_path / "f.out").read_text() == "out\n"
    assert (tmp_path / "f.err").read_text() == "err\n"


def test_default_stdout_merges_stderr(tmp_path: Path) -> None:
    result = JobScript("echo out; echo err >&2", jobname="merged").submit()
    result.wait(30)
    assert (tmp_path / f"local-{result.job_id}.out").read_text() == "out\nerr\n"


def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    body = "sleep 300 & echo $! > child.pid; wait"
    result = JobScript(body, jobname="group").submit()
    wait_for(
        lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip(),
        "the job to write its child's pid",
        timeout=30,
        interval=0.1,
    )
    child = int((tmp_path / "child.pid").read_text())
    assert result.status == RUNNING
    result.cancel()
    assert result.status == CANCELLED
    wait_for(lambda: not _alive(child), "the child to end", timeout=30, interval=0.1)
    result.cancel()  # finished: no effect, no error


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_walltime_exceeded_is_failed() -> None:
    result = JobScript("sleep 120", jobname="walltime", time="0:01").submit()
    assert result.get(timeout=60) == FAILED


def test_ready_and_successful_before_finish() -> None:
    result = JobScript("sleep 30", jobname="slow").submit()
    assert not result.ready()
    with pytest.raises(AssertionError, match=f"job {result.job_id} has not finished"):
        result.successful()
    result.cancel()


def test_job_outlives_the_submitting_process(tmp_path: Path) -> None:
    """A job submitted by a Python process that exits right away still runs to completion."""
    script = textwrap.dedent(
        f"""
        from clusterjob import JobScript
        JobScript.cache_folder = {str(tmp_path / "cache")!r}
        r = JobScript("sleep 2; echo done > marker", jobname="detached", backend="local",
                      rootdir={str(tmp_path)!r}).submit(cache_id="detached")
        print(r.job_id)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    JobScript.cache_folder = str(tmp_path / "cache")
    result = JobScript("sleep 2; echo done > marker", jobname="detached").submit(
        cache_id="detached"
    )
    assert result.status in (PENDING, RUNNING)
    assert result.get(timeout=30) == COMPLETED
    assert (tmp_path / "marker").read_text() == "done\n"


def test_dependency_waits_for_success_and_never_runs_after_failure(tmp_path: Path) -> None:
    first = JobScript("sleep 1; echo first >> order", jobname="first").submit()
    second = JobScript("echo second >> order", jobname="second").submit(after=[first])
    assert wait_all([first, second], timeout=60) == [COMPLETED, COMPLETED]
    assert (tmp_path / "order").read_text() == "first\nsecond\n"
    failed = JobScript("exit 1", jobname="bad").submit()
    blocked = JobScript("echo never > never", jobname="blocked").submit(after=[failed.job_id])
    assert wait_all([failed, blocked], timeout=60) == [FAILED, FAILED]
    assert not (tmp_path / "never").exists()


def test_dependency_on_nothing_submitted_is_an_error() -> None:
    with pytest.raises(ValueError, match="after= needs submitted results or job IDs, got None"):
        JobScript("true", jobname="x").submit(after=[None])


def test_unknown_job_has_no_status_and_keeps_the_last_one(caplog: pytest.LogCaptureFixture) -> None:
    from clusterjob import AsyncResult

    result = AsyncResult("local")
    result.job_id = "999999"
    assert result.status == PENDING
    assert "the scheduler reports no status" in caplog.text


def test_block_returns_the_status_code() -> None:
    assert JobScript("true", jobname="block").submit(block=True) == COMPLETED


def test_hostile_names_are_not_executed(tmp_path: Path) -> None:
    """Job names, folders and output names with quotes, $(), ; and spaces stay data."""
    evil = "x'; touch PWNED; echo '$(touch PWNED2)` touch PWNED3`"
    result = JobScript(
        "echo ok", jobname=f"job {evil}", workdir=f"dir {evil}", stdout=f"out {evil}.txt"
    ).submit()
    assert result.get(timeout=30) == COMPLETED
    folder = tmp_path / f"dir {evil}"
    assert (folder / f"out {evil}.txt").read_text() == "ok\n"
    assert not list(tmp_path.rglob("PWNED*"))


def test_after_joins_the_jobs_own_dependency(tmp_path: Path) -> None:
    """Changed on purpose: a ``dependency`` resource next to ``after=`` used to be refused; both now hold."""
    first = JobScript("true", jobname="first").submit()
    second = JobScript("true", jobname="second").submit()
    job = JobScript("true", jobname="third", dependency=f"afterok:{first.job_id}")
    result = job.submit(after=[second])
    assert (
        f"#LOCAL --dependency=afterok:{first.job_id}:{second.job_id}"
        in (tmp_path / "third.sh").read_text()
    )
    assert result.get(timeout=30) == COMPLETED


def test_the_submission_tag_is_written_from_the_context_not_the_resources(tmp_path: Path) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("true", jobname="tagged")
    result = job.submit(cache_id="tagged")
    tag = json.loads(Path(result.cache_file).read_text())["tag"]
    assert f"#LOCAL --tag={tag}" in (tmp_path / "tagged.sh").read_text()
    assert "tag" not in job.resources and "#LOCAL --tag" not in str(job)
    with pytest.raises(
        ResourcesNotSupportedError, match="the local backend does not support resource tag='x'"
    ):
        str(JobScript("true", jobname="x", tag="x"))


class OriginalStyleLocal(LocalBackend):
    """A subclass written against the original's ``resource_headers(self, jobscript)``."""

    name = "original-local"

    def resource_headers(self, jobscript):  # type: ignore[no-untyped-def, override]
        return [*super().resource_headers(jobscript), "#LOCAL --threads=1"]


def test_an_override_of_the_original_resource_headers_works_without_tag_or_dependencies(
    tmp_path: Path,
) -> None:
    """Its headers cannot carry the tag: none is recorded, so a crash is reported, never a second job."""
    JobScript.register_backend(OriginalStyleLocal())
    JobScript.cache_folder = str(tmp_path / "cache")
    result = JobScript("true", jobname="old", backend="original-local").submit(cache_id="old")
    assert result.get(timeout=30) == COMPLETED
    assert json.loads(Path(result.cache_file).read_text())["tag"] is None
    assert remove_marker_lines((tmp_path / "old.sh").read_text()).splitlines()[1:] == [
        "#LOCAL --job-name=old",
        "#LOCAL --threads=1",
        "true",
    ]
    with pytest.raises(ResourcesNotSupportedError) as err:
        JobScript("true", jobname="next", backend="original-local").submit(after=[result])
    assert str(err.value) == (
        "backend 'original-local' cannot express job dependencies (after=...): its resource_headers(jobscript) "
        "takes no submission context; add a parameter context=None and pass it on to "
        "super().resource_headers(jobscript, context)"
    )


def test_task_status_needs_backend_support() -> None:
    result = JobScript("true", jobname="notarray").submit()
    with pytest.raises(
        NotImplementedError, match="backend 'local' cannot report the tasks of array jobs"
    ):
        result.task_status()


# -- answers through a noisy login shell (the runner over ssh) ------------------------


def test_job_id_amid_a_login_banner(login_noise, caplog: pytest.LogCaptureFixture) -> None:
    """Over ssh the runner's output follows whatever the remote login shell prints."""
    backend = LocalBackend()
    assert backend.get_job_id(login_noise("17\n")) == "17"
    assert (
        backend.get_job_id("Welcome to cluster X (2 nodes)\nLast login: Mon Jun  3 09:12:44 2024\n")
        is None
    )
    assert backend.get_job_id("2024\n17\n") is None  # two bare numbers: which one is the job?
    assert "several job IDs (2024, 17)" in caplog.text


def test_status_lines_amid_a_login_banner(login_noise) -> None:
    """A banner line was read as a job (``Welcome`` -> None), so one job's status was not found."""
    backend = LocalBackend()
    answer = "7 RUNNING\n8 COMPLETED\n9 UNKNOWN\n"
    ids = ["7", "8", "9"]
    noisy = backend.parse_status(CommandResult(0, login_noise(answer)), ids)
    assert (
        noisy
        == backend.parse_status(CommandResult(0, answer), ids)
        == {"7": RUNNING, "8": COMPLETED, "9": None}
    )
    assert backend.get_status(login_noise("7 RUNNING\n")) == RUNNING
    assert backend.get_status("Last login: Mon Jun  3 09:12:44 2024\n7 CANCELLED\n") == CANCELLED
    assert backend.get_status(login_noise("")) is None
    assert backend.parse_status(CommandResult(0, login_noise("")), ["7"]) == {"7": None}


def test_a_failed_runner_tells_no_status_and_proves_no_absence() -> None:
    """The runner could not read its spool: every job unknown, and a tag lookup refuses to conclude."""
    backend = LocalBackend()
    failed = CommandResult(
        1, "7 RUNNING\n", "PermissionError: [Errno 13] Permission denied: '/spool/7'\n"
    )
    assert backend.parse_status(failed, ["7"]) == {"7": None}
    with pytest.raises(
        SubmitError,
        match=r"find-tag exited with 1: PermissionError.*CLUSTERJOB_LOCAL_SPOOL.*force=True",
    ):
        backend.parse_tag_lookup(failed, "cj-abc")


class NoisyShellLocalBackend(LocalBackend):
    """The local backend with every runner command behind a shell that prints what login shells
    print: a window title without a line break, a coloured banner with numbers, blank lines."""

    @staticmethod
    def _runner(remote: str | None) -> list[str]:
        banner = (
            "printf '\\033]0;login1\\007\\033[1mWelcome to cluster X (2 nodes)\\033[0m\\r\\n\\r\\n'"
        )
        return ["sh", "-c", f'{banner}; exec "$@"', "sh", *LocalBackend._runner(remote)]


def test_submit_and_poll_through_a_noisy_shell() -> None:
    JobScript.register_backend(NoisyShellLocalBackend(), name="local")
    result = JobScript("sleep 1", jobname="noisy").submit()
    assert result.job_id.isdigit()
    assert result.get(timeout=30) == COMPLETED


class NumberBannerLocalBackend(LocalBackend):
    """The local backend behind a shell whose banner is a bare number, shaped like a job ID."""

    @staticmethod
    def _runner(remote: str | None) -> list[str]:
        return ["sh", "-c", 'echo 2024; exec "$@"', "sh", *LocalBackend._runner(remote)]


def test_a_banner_shaped_like_a_job_id_is_refused_and_the_job_found_again(tmp_path: Path) -> None:
    """Two candidate IDs: clusterjob does not pick one; the intent kept finds the job by its tag."""
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.register_backend(NumberBannerLocalBackend(), name="local")
    job = JobScript("sleep 1", jobname="ambiguous")
    with pytest.raises(
        SubmitError, match=r"could not read a job ID .*stdout='2024\\n\d+'.*find the job by its tag"
    ):
        job.submit(cache_id="ambiguous")
    JobScript.register_backend(LocalBackend(), name="local")  # the banner is gone
    result = job.submit(cache_id="ambiguous")
    assert result.resumed
    assert result.get(timeout=30) == COMPLETED
    assert len(list((tmp_path / "local-spool").glob("*/meta.json"))) == 1


def test_a_banner_shaped_like_a_job_id_is_not_adopted_as_the_tagged_job(tmp_path: Path) -> None:
    """Regression: the tag lookup took every all-digit line for a job carrying the tag, so a
    ``2024`` banner was adopted (the first of "several jobs") instead of the real job."""
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.register_backend(NumberBannerLocalBackend(), name="local")
    job = JobScript("sleep 1", jobname="banner-tag")
    with pytest.raises(SubmitError, match="could not read a job ID"):
        job.submit(cache_id="banner-tag")
    result = job.submit(cache_id="banner-tag")  # the banner is still there
    (spooled,) = (meta.parent.name for meta in (tmp_path / "local-spool").glob("*/meta.json"))
    assert result.resumed
    assert result.job_id == spooled
    assert result.get(timeout=30) == COMPLETED


def test_tag_lookup_reads_only_the_runners_id_tag_lines(login_noise) -> None:
    backend = LocalBackend()
    answer = "12 cj-abc\n15 cj-abc\n"
    assert backend.parse_tag_lookup(CommandResult(0, login_noise(answer)), "cj-abc") == ["12", "15"]
    assert backend.parse_tag_lookup(CommandResult(0, "2024\n12 cj-other\n"), "cj-abc") == []


# -- the runner starts without the clusterjob package ------------------------------------


def _imports_of_run(command: list[str], spool: Path, *args: str) -> tuple[str, list[str]]:
    """What ``command ARGS`` printed, and the modules of clusterjob it imported (``-X importtime``)."""
    python, *rest = command
    answer = subprocess.run(
        [python, "-X", "importtime", *rest, *args],
        env={**os.environ, "CLUSTERJOB_LOCAL_SPOOL": str(spool)},
        capture_output=True,
        text=True,
        check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in answer.stderr.splitlines()]
    return answer.stdout, [name for name in imported if name.startswith("clusterjob")]


def test_the_runner_runs_by_its_file_without_importing_the_package(tmp_path: Path) -> None:
    """Regression: ``python -m clusterjob.backends.local_runner`` imported the whole package at
    every poll (~54 ms); the runner's file, run with ``-I -S``, starts like a bare interpreter."""
    command = LocalBackend().cmd_cancel(_a_run(remote=None))[:-2]
    assert command == [sys.executable, "-I", "-S", command[-1]]
    assert Path(command[-1]).name == "local_runner.py" and Path(command[-1]).is_file()
    assert _imports_of_run(command, tmp_path, "status", "3") == ("3 UNKNOWN\n", [])


def test_on_a_remote_the_installed_runner_is_found_without_importing_the_package(
    tmp_path: Path,
) -> None:
    """The remote's ``python3`` runs the runner file of its own clusterjob-core (here: ours)."""
    command = LocalBackend().cmd_cancel(_a_run(remote="elsewhere"))[:-2]
    assert command[:2] == ["python3", "-c"]
    assert _imports_of_run([sys.executable, *command[1:]], tmp_path, "status", "4") == (
        "4 UNKNOWN\n",
        [],
    )


def test_on_a_remote_without_clusterjob_the_runner_says_what_to_install(tmp_path: Path) -> None:
    command = LocalBackend().cmd_cancel(_a_run(remote="elsewhere"))[:-2]
    answer = subprocess.run(
        [sys.executable, "-I", "-S", *command[1:], "status", "4"],  # -S: no site-packages
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 1
    assert "the local backend needs clusterjob-core installed for" in answer.stderr
    assert answer.stderr.strip().endswith("pip install clusterjob-core")


def test_the_walltime_reaches_the_runner_in_seconds(tmp_path: Path) -> None:
    job = JobScript("true", jobname="seconds", time="1:30")
    assert "#LOCAL --time=90" in str(job)


def test_a_script_with_a_walltime_not_in_seconds_is_refused_naming_the_line(
    tmp_path: Path,
) -> None:
    """A job script rendered by an earlier version (``--time=1:30``) is refused, not misread."""
    script = tmp_path / "old.sh"
    script.write_text("#!/bin/sh\n#LOCAL --time=1:30\ntrue\n")
    runner = LocalBackend().cmd_cancel(_a_run(remote=None))[:-2]
    answer = subprocess.run(
        [*runner, "submit", str(script)],
        env={**os.environ, "CLUSTERJOB_LOCAL_SPOOL": str(tmp_path / "spool")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 1
    assert answer.stderr.startswith("#LOCAL --time=1:30: the walltime is whole seconds here")
    assert "render the script again" in answer.stderr
    assert not (tmp_path / "spool" / "1").exists()  # refused before it took a job ID


def _a_run(remote: str | None) -> AsyncResult:
    run = AsyncResult(LocalBackend())
    run.job_id, run.remote = "1", remote
    return run
