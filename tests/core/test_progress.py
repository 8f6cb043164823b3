"""Progress of wait_all/as_completed: counts, redrawn in place (tqdm or a plain line), and without tqdm."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import tqdm  # the test venvs install clusterjob-core[progress] (tests/venv.sh)
from clusterjob import JobScript, as_completed, progress, wait_all
from clusterjob.progress import (
    LineProgress,
    NoProgress,
    StatusCounts,
    TqdmProgress,
    is_watched,
    progress_display,
)
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING


@pytest.fixture(autouse=True)
def local_defaults(tmp_path: Path) -> None:
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every stream count as watched, as a terminal or a Jupyter output area is."""
    monkeypatch.setattr(progress, "is_watched", lambda stream: True)


def test_counts_of_each_state_and_their_summary() -> None:
    counts = StatusCounts.of([PENDING, None, RUNNING, COMPLETED, COMPLETED, FAILED])
    assert counts == StatusCounts(pending=2, running=1, completed=2, failed=1, cancelled=0)
    assert (counts.finished, counts.total) == (3, 6)
    assert counts.summary() == "2 pending, 1 running, 2 completed, 1 failed"
    assert StatusCounts.of([CANCELLED]).summary() == (
        "0 pending, 0 running, 0 completed, 0 failed, 1 cancelled"
    )


def test_plain_line_is_redrawn_in_place_and_padded() -> None:
    stream = io.StringIO()
    line = LineProgress(stream, in_place=True)
    line.update(StatusCounts(10, 0, 0, 0, 0))
    line.update(StatusCounts(10, 0, 0, 0, 0))  # unchanged: nothing written
    line.update(StatusCounts(9, 0, 1, 0, 0))
    assert "\n" not in stream.getvalue()
    line.close()
    first = "[clusterjob] 0/10 finished: 10 pending, 0 running, 0 completed, 0 failed"
    second = "[clusterjob] 1/10 finished: 9 pending, 0 running, 1 completed, 0 failed"
    assert stream.getvalue() == f"\r{first}\r{second.ljust(len(first))}\n"


def test_plain_line_on_an_unwatched_stream_is_one_line_per_change() -> None:
    stream = io.StringIO()
    line = LineProgress(stream, in_place=False)
    for counts in [(1, 1, 0, 0, 0), (1, 1, 0, 0, 0), (0, 1, 1, 0, 0)]:
        line.update(StatusCounts(*counts))
    line.close()
    assert stream.getvalue().splitlines() == [
        "[clusterjob] 0/2 finished: 1 pending, 1 running, 0 completed, 0 failed",
        "[clusterjob] 1/2 finished: 0 pending, 1 running, 1 completed, 0 failed",
    ]


def test_tqdm_bar_shows_the_counts_in_place() -> None:
    stream = io.StringIO()
    bar = TqdmProgress.open(3, stream)
    assert bar is not None
    bar.update(StatusCounts(3, 0, 0, 0, 0))
    bar.update(StatusCounts(1, 1, 1, 0, 0))
    bar.update(StatusCounts(0, 0, 2, 1, 0))
    drawn = stream.getvalue()
    assert "\n" not in drawn  # every update overwrote the line
    assert drawn.count("\r") >= 3
    bar.close()
    final = stream.getvalue().split("\r")[-1]
    assert final.startswith("clusterjob: 100%")
    assert "3/3" in final and "0 pending, 0 running, 2 completed, 1 failed" in final
    assert final.endswith("\n")


def test_progress_display_is_chosen_by_the_flag_and_whether_someone_watches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = io.StringIO()  # not a terminal
    assert isinstance(progress_display(2, None, log), NoProgress)
    assert isinstance(progress_display(2, False, log), NoProgress)
    assert isinstance(progress_display(0, True, log), NoProgress)
    forced = progress_display(2, True, log)
    assert isinstance(forced, LineProgress) and not forced.in_place
    monkeypatch.setattr(progress, "is_watched", lambda stream: True)
    bar = progress_display(2, None, log)
    assert isinstance(bar, TqdmProgress)
    bar.close()
    assert isinstance(progress_display(2, False, log), NoProgress)


def test_a_jupyter_kernel_counts_as_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test tqdm.auto makes: an IPython shell whose config has an IPKernelApp."""
    assert not is_watched(io.StringIO())
    fake_ipython = ModuleType("IPython")
    shell = SimpleNamespace(config={"IPKernelApp": {}})
    fake_ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    assert is_watched(io.StringIO())
    shell.config = {}  # plain IPython in a terminal: the stream decides
    assert not is_watched(io.StringIO())


def test_wait_all_draws_one_bar_in_place(watched: None, capsys: pytest.CaptureFixture[str]) -> None:
    results = [
        JobScript("sleep 1", jobname="p").submit(),
        JobScript("exit 1", jobname="q").submit(),
        JobScript("true", jobname="r").submit(),
    ]
    assert wait_all(results, timeout=60) == [COMPLETED, FAILED, COMPLETED]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n")  # one line, redrawn; closed at the end
    assert err.count("\r") >= 2
    final = err.split("\r")[-1]
    assert "3/3" in final and "0 pending, 0 running, 2 completed, 1 failed" in final


def test_wait_all_shows_nothing_by_default_where_nobody_watches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    wait_all([JobScript("true", jobname="p").submit()], timeout=60)
    assert "[clusterjob]" not in capsys.readouterr().err


def test_wait_all_forced_into_a_log_prints_one_line_per_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = [JobScript("true", jobname="p").submit(), JobScript("exit 1", jobname="q").submit()]
    wait_all(results, timeout=60, progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if "[clusterjob]" in line]
    assert lines[-1] == "[clusterjob] 2/2 finished: 0 pending, 0 running, 1 completed, 1 failed"
    assert len(lines) == len(set(lines))


def test_as_completed_closes_the_bar_when_it_times_out(
    watched: None, capsys: pytest.CaptureFixture[str]
) -> None:
    hanging = JobScript("sleep 60", jobname="hang").submit()
    with pytest.raises(TimeoutError, match="1 of 1 jobs still unfinished after 1 s"):
        list(as_completed([hanging], timeout=1))
    hanging.cancel()
    err = capsys.readouterr().err
    assert err.endswith("\n") and "0/1" in err.split("\r")[-1]


WITHOUT_TQDM = textwrap.dedent(
    """\
    import sys

    sys.modules["tqdm"] = None  # as if clusterjob-core[progress] were not installed: import fails
    from clusterjob import JobScript, progress, wait_all

    progress.is_watched = lambda stream: True  # as on a terminal
    JobScript.backend = "local"
    JobScript.rootdir = sys.argv[1]
    JobScript.max_sleep_interval = 1
    results = [JobScript("true", jobname="p").submit(), JobScript("exit 1", jobname="q").submit()]
    print(wait_all(results, timeout=60))
    """
)


def test_without_tqdm_the_wait_shows_the_plain_line_in_place(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TQDM, str(tmp_path)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode()  # not text=True: it would turn each \r into a newline
    assert done.returncode == 0, stderr
    assert done.stdout.decode() == f"{[COMPLETED, FAILED]}\n"
    assert "tqdm" not in stderr
    drawn = stderr[stderr.index("\r[clusterjob]") :]
    assert drawn.count("\n") == 1  # redrawn with \r, one newline at the end
    final = drawn.split("\r")[-1].rstrip()
    assert final == "[clusterjob] 2/2 finished: 0 pending, 0 running, 1 completed, 1 failed"


def test_tqdm_is_the_installed_extra() -> None:
    """The progress tests above need the bar: tests/venv.sh installs clusterjob-core[progress]."""
    assert tuple(int(part) for part in tqdm.__version__.split(".")[:2]) >= (4, 64)
