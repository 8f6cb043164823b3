"""Exit markers (clusterjob.markers): the lines a job runs, run by real shells, and their files read back."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clusterjob.marker_files import read_markers
from clusterjob.markers import (
    MAX_ARRAY_TASKS,
    POSIX_SHELLS,
    Marker,
    array_marker,
    insert_marker_lines,
    marker_lines,
    parse_marker,
    parse_read_output,
    parse_task_ranges,
    posix_shell,
    read_markers_command,
    script_path,
    task_marker_name,
)
from clusterjob.transport import get_transport

HOSTILE = 'it\'s a $(touch pwned) `x` "dir"; rm -rf ~ *'

#: Every shell the marker lines are given to (``POSIX_SHELLS``): the interpreter of the
#: test scripts (``#!`` line) and the Debian package that installs it. Each is tested:
#: ksh93 too, since ``/bin/ksh`` may be another program (an alternative, such as mksh);
#: ash is busybox's (Debian has no ``/bin/ash``), the same shell as on Alpine.
DECLARED_SHELLS = {
    "sh": ("/bin/sh", "dash"),
    "bash": ("/bin/bash", "bash"),
    "dash": ("/bin/dash", "dash"),
    "zsh": ("/usr/bin/zsh", "zsh"),
    "ksh": ("/bin/ksh", "ksh"),
    "ksh93": ("/usr/bin/ksh93", "ksh"),
    "mksh": ("/bin/mksh", "mksh"),
    "ash": ("/bin/busybox ash", "busybox"),
}
SHELLS = sorted(DECLARED_SHELLS)

#: Set to 1 by tests/run.sh, which installs every declared shell (tests/schedulers/shells.sh):
#: a missing one then fails its tests. Without it (tests/pythons.sh on a laptop) it is skipped.
ALL_SHELLS_VARIABLE = "CLUSTERJOB_TEST_ALL_SHELLS"


def _installed_shell(name: str) -> str:
    """The ``#!`` interpreter of shell ``name``; fails or skips, naming the remedy, if it is missing.

    Why not drop a missing shell from the parameters: then the tests of the shell
    nobody installed vanish, and the claim that the lines work there goes untested.
    """
    interpreter, package = DECLARED_SHELLS[name]
    program = interpreter.split()[0]
    if os.access(program, os.X_OK):
        return interpreter
    message = (
        f"{name} is not installed ({program} missing): run bash tests/run.sh "
        f"(tests/schedulers/shells.sh installs it) or apt-get install {package}"
    )
    if os.environ.get(ALL_SHELLS_VARIABLE) == "1":
        pytest.fail(
            f"{message}; {ALL_SHELLS_VARIABLE}=1 requires every declared shell", pytrace=False
        )
    pytest.skip(message)


def _script(shell: str, folder: Path, body: str) -> str:
    rendered = f"#!{shell}\n#SBATCH --job-name=x\n\n# my comment\n{body}\n"
    return insert_marker_lines(rendered, marker_lines(str(folder), "cj-0123456789-abcdef"))


def _run(tmp_path: Path, shell: str, body: str, kill: int | None = None) -> tuple[int, Marker]:
    folder = tmp_path / HOSTILE
    folder.mkdir()
    script = tmp_path / "job.sh"
    script.write_text(_script(shell, folder, body))
    script.chmod(0o755)
    process = subprocess.Popen([str(script)], cwd=tmp_path)
    if kill is not None:
        _wait_for(folder / "cj-0123456789-abcdef.start")  # the traps are set
        process.send_signal(kill)
    returncode = process.wait(timeout=30)
    files = {p.name: p.read_text() for p in folder.iterdir()}
    marker = parse_marker(
        files.get("cj-0123456789-abcdef.start"), files.get("cj-0123456789-abcdef.exit")
    )
    assert not (tmp_path / "pwned").exists()
    assert set(files) <= {"cj-0123456789-abcdef.start", "cj-0123456789-abcdef.exit"}, (
        "no temporary file is left"
    )
    return returncode, marker


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("true", 0),
        ("exit 3", 3),
        ("false", 1),
        ("set -e\nfalse\necho not reached", 1),
        ("set -u\n(exit 7)", 7),
    ],
)
def test_the_exit_status_is_recorded_under_each_posix_shell(
    tmp_path: Path, shell: str, body: str, code: int
) -> None:
    returncode, marker = _run(tmp_path, _installed_shell(shell), body)
    assert returncode == code
    assert marker == Marker(started=True, exit_code=code)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_trapped_signal_is_recorded_and_the_shell_still_dies_of_it(
    tmp_path: Path, shell: str
) -> None:
    """The scheduler sees the death it would see without the marker lines: the signal's, or
    for mksh, which never dies of a signal it does not trap, exit status 128 + its number."""
    interpreter = _installed_shell(shell)
    returncode, marker = _run(tmp_path, interpreter, "sleep 2", kill=signal.SIGTERM)
    without_markers = 128 + signal.SIGTERM if shell == "mksh" else -signal.SIGTERM
    assert returncode == without_markers, "the scheduler sees the same death as without markers"
    assert _run_without_markers(tmp_path, interpreter, "sleep 2", signal.SIGTERM) == returncode
    assert marker == Marker(started=True, signal="TERM")
    assert marker.needs_scheduler


def _run_without_markers(tmp_path: Path, interpreter: str, body: str, kill: int) -> int:
    """The exit status of ``body`` under ``interpreter`` when sent ``kill``, with no marker lines."""
    script = tmp_path / "plain.sh"
    script.write_text(f"#!{interpreter}\n: > plain.started\n{body}\n")
    script.chmod(0o755)
    process = subprocess.Popen([str(script)], cwd=tmp_path)
    _wait_for(tmp_path / "plain.started")  # the shell runs: a signal before would find no shell
    process.send_signal(kill)
    return process.wait(timeout=30)


def _wait_for(path: Path) -> None:
    """Poll until ``path`` exists: a fixed sleep can lose that race on a loaded machine."""
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within 30 s"
        time.sleep(0.02)


def test_every_shell_the_markers_are_given_to_is_tested() -> None:
    assert set(DECLARED_SHELLS) == POSIX_SHELLS


def test_a_missing_shell_fails_under_the_test_command_and_is_skipped_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: a shell that was not installed (ksh) used to be dropped without a word."""
    monkeypatch.setitem(DECLARED_SHELLS, "ksh", ("/nonexistent/ksh", "ksh"))
    remedy = (
        r"ksh is not installed \(/nonexistent/ksh missing\): run bash tests/run.sh "
        r"\(tests/schedulers/shells.sh installs it\) or apt-get install ksh"
    )
    monkeypatch.setenv(ALL_SHELLS_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=remedy + "; CLUSTERJOB_TEST_ALL_SHELLS=1"):
        _installed_shell("ksh")
    monkeypatch.delenv(ALL_SHELLS_VARIABLE)
    with pytest.raises(pytest.skip.Exception, match=remedy + "$"):
        _installed_shell("ksh")


def test_sigkill_leaves_only_the_start_marker(tmp_path: Path) -> None:
    returncode, marker = _run(tmp_path, "/bin/sh", "kill -9 $$")
    assert returncode == -signal.SIGKILL
    assert marker == Marker(started=True)
    assert not marker.needs_scheduler


def test_the_lines_go_after_the_directives_and_leading_comments() -> None:
    script = "#!/bin/bash\n#SBATCH --time=1\n\n#SBATCH --mem=1\n# note\necho hi\n#SBATCH --late\n"
    lines = insert_marker_lines(script, ["A", "B"]).split("\n")
    assert lines[:7] == [
        "#!/bin/bash",
        "#SBATCH --time=1",
        "",
        "#SBATCH --mem=1",
        "# note",
        "A",
        "B",
    ]
    assert lines[7:] == ["echo hi", "#SBATCH --late", ""]


def test_a_hostile_folder_is_one_quoted_word() -> None:
    assert (
        script_path(f"/x/{HOSTILE}") == "'/x/it'\"'\"'s a $(touch pwned) `x` \"dir\"; rm -rf ~ *'"
    )
    assert script_path("jobs/run 1") == "\"$HOME\"/'jobs/run 1'"
    assert script_path("~/jobs") == '"$HOME"/jobs'
    with pytest.raises(ValueError, match="marker folder '~bob/x': '~user' paths are not supported"):
        script_path("~bob/x")


@pytest.mark.parametrize(
    ("shebang", "shell", "posix"),
    [
        ("#!/bin/bash", "/bin/bash", True),
        ("#!/usr/bin/env bash", "/bin/bash", True),
        ("#!/usr/bin/env -S zsh -l", "/bin/sh", True),
        ("#!/bin/sh -e", "/bin/ksh", True),
        ("#!/usr/bin/env python3", "/bin/bash", False),
        ("#!/bin/tcsh", "/bin/bash", False),
        ("#!/bin/bash", "/bin/csh", False),  # SGE runs the script with -S {shell}
    ],
)
def test_which_scripts_get_markers(shebang: str, shell: str, posix: bool) -> None:
    assert posix_shell(shebang, shell) is posix


@pytest.mark.parametrize(
    ("start", "exit_text", "marker"),
    [
        (None, None, Marker()),
        ("start\n", None, Marker(started=True)),
        ("start\n", "exit 0\n", Marker(started=True, exit_code=0)),
        (None, "exit 255\n", Marker(started=True, exit_code=255)),
        ("start\n", "signal XCPU\n", Marker(started=True, signal="XCPU")),
        ("start\n", "", Marker(started=True, incomplete=True)),
        ("start\n", "exit 3", Marker(started=True, exit_code=3)),
        ("start\n", "exit 999\n", Marker(started=True, incomplete=True)),
        ("start\n", "ex", Marker(started=True, incomplete=True)),
    ],
)
def test_marker_contents_are_parsed(
    start: str | None, exit_text: str | None, marker: Marker
) -> None:
    assert parse_marker(start, exit_text) == marker


def test_the_reader_reads_many_jobs_in_many_folders_with_one_command(tmp_path: Path) -> None:
    one, two = tmp_path / HOSTILE, tmp_path / "-d"
    one.mkdir()
    two.mkdir()
    (one / "a.start").write_text("start\n")
    (one / "a.exit").write_text("exit 3\n")
    (one / "b.start").write_text("start\n")
    (two / "c.exit").write_text("signal TERM\n")
    argv = read_markers_command(
        [(str(one), "a"), (str(one), "b"), (str(two), "c"), (str(two), "d")]
    )
    assert argv.count(str(one)) == 1, "a folder is passed once for its names"
    answer = subprocess.run(argv, capture_output=True, text=True, check=True)
    noisy = "Welcome 1 start\n" + answer.stdout
    assert parse_read_output(noisy, 4) == [
        Marker(started=True, exit_code=3),
        Marker(started=True),
        Marker(started=True, signal="TERM"),
        Marker(),
    ]


def test_an_array_task_has_its_own_marker_name() -> None:
    assert task_marker_name("cj-1") == "cj-1"
    assert task_marker_name("cj-1", "7") == "cj-1.7"


def test_a_folder_that_cannot_be_written_does_not_change_the_job(tmp_path: Path) -> None:
    """Even root cannot create files below a regular file: the marker writes fail, silently."""
    folder = tmp_path / "not-a-folder"
    folder.write_text("")
    script = tmp_path / "job.sh"
    script.write_text(_script("/bin/sh", folder, "echo body ran; exit 4"))
    script.chmod(0o755)
    answer = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    assert (answer.returncode, answer.stdout, answer.stderr) == (4, "body ran\n", "")


@pytest.mark.parametrize(
    ("variables", "prefix"),
    [
        ({"SLURM_ARRAY_TASK_ID": "2"}, "cj-1.2"),
        ({"PBS_ARRAYID": "3"}, "cj-1.3"),
        ({"PBS_ARRAY_INDEX": "4"}, "cj-1.4"),
        ({"LSB_JOBINDEX": "5"}, "cj-1.5"),
        ({"SGE_TASK_ID": "6"}, "cj-1.6"),
        ({"LSB_JOBINDEX": "0", "SGE_TASK_ID": "undefined"}, "cj-1"),  # no array: LSF and SGE say so
    ],
)
def test_each_array_task_writes_its_own_markers(
    tmp_path: Path, variables: dict[str, str], prefix: str
) -> None:
    script = tmp_path / "job.sh"
    script.write_text(
        insert_marker_lines("#!/bin/sh\nexit 3\n", marker_lines(str(tmp_path / "m"), "cj-1"))
    )
    script.chmod(0o755)
    (tmp_path / "m").mkdir()
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PBS_", "LSB_", "SGE_"))
    }
    subprocess.run([str(script)], env={**clean, **variables}, check=False)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        f"{prefix}.exit",
        f"{prefix}.start",
    ]
    answer = subprocess.run(
        read_markers_command([(str(tmp_path / "m"), "cj-1")]),
        capture_output=True,
        text=True,
        check=True,
    )
    task = prefix.partition(".")[2]
    expected = Marker(started=True, exit_code=3)
    if task:
        expected = Marker(array=True, tasks=((task, expected),))
    assert parse_read_output(answer.stdout, 1) == [expected]
    assert read_markers(get_transport(None), [(str(tmp_path / "m"), "cj-1")]) == [expected], (
        "the local reader sees what the remote one does"
    )


@pytest.mark.parametrize(
    ("spec", "task_ids"),
    [
        ("1-10", [str(n) for n in range(1, 11)]),
        ("0-15:4", ["0", "4", "8", "12"]),
        ("1,3,5-7", ["1", "3", "5", "6", "7"]),
        ("7,1-2%2", ["1", "2", "7"]),  # the throttle is ignored; tasks in task order
        ("4", ["4"]),
        (4, ["4"]),
        ("3,3,1-3", ["1", "2", "3"]),
        (f"0-{MAX_ARRAY_TASKS - 1}", [str(n) for n in range(MAX_ARRAY_TASKS)]),
    ],
)
def test_the_task_ids_of_an_array_spec(spec: object, task_ids: list[str]) -> None:
    assert parse_task_ranges(spec) == task_ids


@pytest.mark.parametrize(
    "spec",
    ["", "a-b", "1-", "5-1", "1-10:0", "1,,2", "1-3:x", "-1", "True", f"0-{MAX_ARRAY_TASKS}"],
)
def test_an_array_spec_it_cannot_read_gives_no_task_ids(spec: str) -> None:
    """Judging the spec is sbatch's business: the array is then watched through the scheduler."""
    assert parse_task_ranges(spec) is None


EXITED_0 = Marker(started=True, exit_code=0)
EXITED_3 = Marker(started=True, exit_code=3)
EXITED_5 = Marker(started=True, exit_code=5)
STARTED = Marker(started=True)
KILLED = Marker(started=True, signal="TERM")
BROKEN = Marker(started=True, incomplete=True)


@pytest.mark.parametrize(
    ("tasks", "aggregate"),
    [
        ({}, Marker()),
        ({"1": EXITED_0, "2": EXITED_0, "3": EXITED_0}, Marker(started=True, exit_code=0)),
        ({"1": EXITED_0, "2": EXITED_5, "3": EXITED_3}, Marker(True, 5, task_failure=5)),
        ({"1": EXITED_3, "2": EXITED_0, "3": EXITED_5}, Marker(True, 3, task_failure=3)),
        ({"1": EXITED_0, "2": STARTED}, Marker(started=True)),
        ({"1": EXITED_3, "3": EXITED_0}, Marker(True, task_failure=3)),  # 2 left no marker (yet)
        ({"1": EXITED_0, "2": KILLED, "3": EXITED_0}, Marker(started=True, signal="TERM")),
        ({"1": BROKEN, "2": EXITED_0, "3": EXITED_0}, Marker(started=True, incomplete=True)),
        ({"1": EXITED_0, "2": EXITED_0, "3": EXITED_0, "9": EXITED_3}, Marker(True, 0)),
    ],
)
def test_the_aggregate_marker_of_an_array(tasks: dict[str, Marker], aggregate: Marker) -> None:
    """Tasks 1-3: every task exited -> the first non-zero exit code in task order (a task
    outside the array does not count); any started -> started; a signal or broken marker ->
    the scheduler is asked (``needs_scheduler``); a task that exited non-zero is recorded
    (``task_failure``) even while others have not."""
    assert array_marker(["1", "2", "3"], list(tasks.items())) == aggregate


def test_the_reader_returns_the_task_markers_of_an_array_in_the_same_command(
    tmp_path: Path,
) -> None:
    folder = tmp_path / HOSTILE
    folder.mkdir()
    for name, text in {
        "cj-1.1.start": "start\n",
        "cj-1.1.exit": "exit 0\n",
        "cj-1.2.start": "start\n",
        "cj-1.2.exit": "signal TERM",  # no newline
        "cj-1.10.start": "start\n",
        "cj-1.10.exit": "",  # incomplete
        "cj-1.3.start": "start\n",
        "cj-1.x.start": "start\n",  # not a task's
        "cj-10.1.exit": "exit 5\n",  # another job's task
    }.items():
        (folder / name).write_text(text)
    tasks = (
        ("1", Marker(started=True, exit_code=0)),
        ("2", Marker(started=True, signal="TERM")),
        ("3", Marker(started=True)),
        ("10", Marker(started=True, incomplete=True)),
    )
    answer = subprocess.run(
        read_markers_command([(str(folder), "cj-1"), (str(folder), "cj-2")]),
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [Marker(array=True, tasks=tasks), Marker()]
    assert parse_read_output(answer.stdout, 2) == expected
    assert read_markers(get_transport(None), [(str(folder), "cj-1"), (str(folder), "cj-2")]) == (
        expected
    )
