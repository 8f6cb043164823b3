"""Batched polling (one scheduler command per cycle), as_completed, timeouts, and the CLI."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from clusterjob import JobScript, as_completed, hookimpl, wait_all
from clusterjob.backends import local
from clusterjob.backends.local import LocalBackend
from clusterjob.cli import main
from clusterjob.plugins import create_plugin_manager, reset_plugin_manager
from clusterjob.status import CANCELLED, COMPLETED, FAILED


class CountingLocal(LocalBackend):
    """The local backend, counting the status commands it hands out (and how many jobs each asks about)."""

    name = "counting"

    def __init__(self) -> None:
        self.batched: list[int] = []

    def status_command(self, runs, finished=False):
        command = super().status_command(runs, finished)
        if command is not None:
            self.batched.append(len(runs))
        return command


@pytest.fixture(autouse=True)
def local_defaults(tmp_path: Path) -> None:
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1


def test_wait_all_uses_one_command_per_cycle() -> None:
    backend = CountingLocal()
    JobScript.register_backend(backend)
    results = [
        JobScript(f"sleep {i % 3}", jobname=f"b{i}", backend="counting").submit() for i in range(20)
    ]
    assert wait_all(results, timeout=120) == [COMPLETED] * 20
    # One command per cycle, for all unfinished jobs (the last one too: a batch of one).
    assert backend.batched[0] == 20
    assert backend.batched == sorted(
        backend.batched, reverse=True
    )  # only unfinished jobs are asked about


def test_as_completed_yields_in_finishing_order_and_times_out() -> None:
    slow = JobScript("sleep 3", jobname="slow").submit()
    fast = JobScript("true", jobname="fast").submit()
    assert [r.job_id for r in as_completed([slow, fast], timeout=60)] == [fast.job_id, slow.job_id]
    hanging = JobScript("sleep 60", jobname="hang").submit()
    with pytest.raises(TimeoutError, match="1 of 1 jobs still unfinished after 1 s"):
        list(as_completed([hanging], timeout=1))
    assert wait_all([hanging], timeout=0.5) == [hanging.status]
    hanging.cancel()


def test_cli_status_wait_cancel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    ok = JobScript("true", jobname="ok").submit(cache_id="ok")
    long = JobScript("sleep 60", jobname="long").submit(cache_id="long")
    assert main(["wait", "--timeout", "60", ok.cache_file]) == 0
    assert main(["cancel", long.cache_file]) == 0
    assert main(["status", ok.cache_file, long.cache_file]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].split("\t")[:4] == [ok.job_id, "local", "COMPLETED", "ok"]
    assert out[-1].split("\t")[:4] == [long.job_id, "local", "CANCELLED", "long"]
    assert main(["wait", long.cache_file]) == 1
    assert long.status == CANCELLED


def test_cli_reports_bad_cache_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.cache"
    bad.write_text("nope")
    assert main(["status", str(bad)]) == 2
    assert (
        f"clusterjob: error: cache file {bad} is not valid clusterjob JSON"
        in capsys.readouterr().err
    )


def test_cli_lists_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["backend", "distribution", "version", "scheduler", "commands"]
    assert any(
        line.split(None, 3)[::3] == ["local", "python -m clusterjob.backends.local_runner"]
        for line in lines[2:]
    )


def test_cli_backends_exits_1_when_a_plugin_failed(capsys: pytest.CaptureFixture[str]) -> None:
    broken = ModuleType("clusterjob_broken")

    @hookimpl
    def clusterjob_backends() -> list[object]:
        raise ImportError("needs libfoo")

    broken.clusterjob_backends = clusterjob_backends  # type: ignore[attr-defined]
    reset_plugin_manager(create_plugin_manager(load_entrypoints=False, plugins=(local, broken)))
    assert main(["backends"]) == 1
    captured = capsys.readouterr()
    assert (
        "local    -             -        python -m clusterjob.backends.local_runner"
        in captured.out.splitlines()
    )
    failed = "  clusterjob_broken (no distribution): clusterjob_backends() raised ImportError: needs libfoo"
    assert captured.out.splitlines().count(failed) == 1
    assert captured.err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["wait"], "the following arguments are required: CACHE_FILE"),
        (["status", "--no-such-option", "x.cache"], "unrecognized arguments: --no-such-option"),
        (["submit", "x"], "invalid choice: 'submit'"),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: clusterjob") and message in err


def test_cli_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    assert "backends" in capsys.readouterr().out


class QueueOnlyBatch(LocalBackend):
    """A first query that knows only queued jobs (like squeue); finished jobs come from the second."""

    name = "queueonly"

    def status_command(self, runs, finished=False):
        return super().status_command(runs) if finished else ["true"]  # says nothing about any job

    def parse_status(self, result, job_ids, finished=False):
        return super().parse_status(result, job_ids) if finished else {}


def test_jobs_unknown_to_the_first_query_are_asked_with_the_finished_query() -> None:
    """Regression: jobs the first query did not report were never asked again."""
    JobScript.register_backend(QueueOnlyBatch())
    results = [
        JobScript(f"exit {i % 2}", jobname=f"q{i}", backend="queueonly").submit() for i in range(3)
    ]
    assert wait_all(results, timeout=60) == [COMPLETED, FAILED, COMPLETED]
