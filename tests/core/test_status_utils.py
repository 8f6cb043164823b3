"""The documented ``clusterjob.status`` and ``clusterjob.utils`` behaviour, examples included."""

from __future__ import annotations

import os
import subprocess

import pytest
from clusterjob import status
from clusterjob.utils import (
    mkdir,
    read_file,
    run_cmd,
    set_executable,
    split_seq,
    time_to_seconds,
    write_file,
)


def test_status_order_and_names() -> None:
    assert status.PENDING < status.RUNNING < status.COMPLETED < status.CANCELLED < status.FAILED
    assert status.COMPLETED == 0
    assert status.STATUS_CODES == sorted(status.STATUS_CODES)
    assert status.str_status[status.COMPLETED] == "COMPLETED"
    assert [status.str_status[c] for c in status.STATUS_CODES] == [
        "PENDING",
        "RUNNING",
        "COMPLETED",
        "CANCELLED",
        "FAILED",
    ]


def test_status_from_str_rejects_unknown_names() -> None:
    assert status.status_from_str("FAILED") == status.FAILED
    with pytest.raises(ValueError, match="unknown status 'DONE'"):
        status.status_from_str("DONE")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10", 600), ("10:00", 600), ("10:30", 630), ("1:10:30", 4230), ("1-1:10:30", 90630),
        ("1-0", 86400), ("1-10", 122400), ("1-1:10", 90600), ("1:1:10:30", 90630), (10, 600),
    ],
)  # fmt: skip
def test_time_to_seconds_documented_examples(text: str, seconds: int) -> None:
    assert time_to_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["1 1:10:30", "", "1:2:3:4:5", "ten", "1-", "-1", "1.5", None])
def test_time_to_seconds_rejects_invalid_patterns(bad: object) -> None:
    with pytest.raises(ValueError, match=r"has invalid pattern"):
        time_to_seconds(bad)  # type: ignore[arg-type]


def test_time_to_seconds_message_quotes_the_input() -> None:
    with pytest.raises(ValueError) as info:
        time_to_seconds("1 1:10:30")
    assert str(info.value) == "'1 1:10:30' has invalid pattern"


def test_split_seq_documented_examples() -> None:
    assert split_seq([1, 2, 3, 4, 5, 6], 3) == [[1, 2], [3, 4], [5, 6]]
    assert split_seq([1, 2, 3, 4, 5, 6], 2) == [[1, 2, 3], [4, 5, 6]]
    assert split_seq([1, 2, 3, 4, 5, 6, 7], 3) == [[1, 2], [3, 4, 5], [6, 7]]


def test_split_seq_keeps_every_item_once() -> None:
    for n_items in range(30):
        for n_chunks in range(1, 8):
            chunks = split_seq(list(range(n_items)), n_chunks)
            assert len(chunks) == n_chunks
            assert [item for chunk in chunks for item in chunk] == list(range(n_items))
            assert max(map(len, chunks)) - min(map(len, chunks)) <= 1


def test_split_seq_rejects_zero_chunks() -> None:
    with pytest.raises(ValueError, match="n_chunks must be at least 1, not 0"):
        split_seq([1], 0)


def test_read_write_file(tmp_path) -> None:
    path = str(tmp_path / "read_write_file.txt")
    write_file(path, "Hello World")
    assert read_file(path) == "Hello World"


def test_run_cmd_documented_example(tmp_path) -> None:
    script = tmp_path / "test.sh"
    script.write_text("#!/bin/bash\necho Hello $1\n")
    set_executable(str(script))
    assert os.access(script, os.X_OK)
    assert run_cmd(["./test.sh", "World"], remote=None, workdir=str(tmp_path)) == "Hello World\n"
    shell = "./test.sh World | tr '[:upper:]' '[:lower:]'"
    assert run_cmd(shell, remote=None, workdir=str(tmp_path)) == "hello world\n"


def test_run_cmd_combines_stderr_and_uses_rootdir(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    out = run_cmd("pwd; echo oops >&2", remote=None, rootdir=str(tmp_path), workdir="sub")
    assert out.splitlines() == [str(tmp_path / "sub"), "oops"]


def test_run_cmd_exit_code(tmp_path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        run_cmd(["false"], remote=None)
    assert "command 'false' failed with exit code 1" in str(info.value)
    assert run_cmd("echo out; exit 3", remote=None, ignore_exit_code=True) == "out\n"


def test_run_cmd_missing_program_names_it() -> None:
    with pytest.raises(
        subprocess.CalledProcessError, match="'no-such-scheduler-cmd' not found on PATH"
    ):
        run_cmd(["no-such-scheduler-cmd", "-j", "1"], remote=None)


def test_run_cmd_missing_workdir_names_it(tmp_path) -> None:
    with pytest.raises(
        subprocess.CalledProcessError, match="working directory .*nope.* does not exist"
    ):
        run_cmd(["true"], remote=None, workdir=str(tmp_path / "nope"))


def test_mkdir_like_mkdir_p(tmp_path) -> None:
    target = tmp_path / "a" / "b"
    mkdir(str(target))
    assert target.is_dir()
    assert (target.stat().st_mode & 0o777) == 0o750 & ~_umask()
    mkdir(str(target))  # exists: nothing happens
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="a file of that name exists"):
        mkdir(str(tmp_path / "file"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
