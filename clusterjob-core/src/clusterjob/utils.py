"""Collection of utility functions (the documented ``clusterjob.utils`` API)."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Sequence
from typing import TypeVar

from clusterjob.transport import get_transport
from clusterjob.walltime import time_to_seconds

__all__ = [
    "mkdir",
    "read_file",
    "run_cmd",
    "set_executable",
    "split_seq",
    "time_to_seconds",
    "upload_file",
    "write_file",
]

T = TypeVar("T")


def set_executable(filename: str) -> None:
    """Set the executable bit on ``filename`` for everyone who may read it."""
    mode = os.stat(filename).st_mode
    readable = mode & (stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    os.chmod(filename, mode | stat.S_IXUSR | (readable >> 2))


def write_file(filename: str, data: str) -> None:
    """Write ``data`` to the file ``filename`` (replacing its contents)."""
    with open(filename, "w", encoding="utf-8") as out_fh:
        out_fh.write(data)


def read_file(filename: str) -> str:
    """Return the contents of ``filename`` as a string."""
    with open(filename, encoding="utf-8") as in_fh:
        return in_fh.read()


def split_seq(seq: Sequence[T], n_chunks: int) -> list[list[T]]:
    """Split ``seq`` into ``n_chunks`` contiguous chunks of near-equal size.

    Chunk boundaries sit at the rounded multiples of ``len(seq)/n_chunks``, so
    sizes differ by at most one and the order is kept: suitable for
    distributing an array of jobs over a fixed number of workers.

    >>> split_seq([1,2,3,4,5,6], 3)
    [[1, 2], [3, 4], [5, 6]]
    >>> split_seq([1,2,3,4,5,6,7], 3)
    [[1, 2], [3, 4, 5], [6, 7]]
    """
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be at least 1, not {n_chunks!r}")
    size = len(seq) / n_chunks
    bounds = [int(i * size + 0.5) for i in range(n_chunks + 1)]
    return [list(seq[bounds[i] : bounds[i + 1]]) for i in range(n_chunks)]


def upload_file(localfile: str, remote: str, remotefile: str, scp: str = "scp") -> None:
    """Run ``{scp} {localfile} {remote}:{remotefile}``.

    ``remotefile`` may start with ``~`` for the remote home directory.

    Raises:
        subprocess.CalledProcessError: if the copy fails.
    """
    get_transport(remote, scp=scp).upload(localfile, remotefile)


def run_cmd(
    cmd: Sequence[str] | str,
    remote: str | None,
    rootdir: str = "",
    workdir: str = "",
    ignore_exit_code: bool = False,
    ssh: str = "ssh",
) -> str:
    """Run ``cmd`` in ``rootdir/workdir``, locally or on ``remote``; return combined stdout/stderr.

    A list is run as program arguments (quoted for the remote shell where
    needed); a string is run as a shell command (use only when needed, e.g.
    for a pipe). ``~`` in ``rootdir``/``workdir`` means the home directory on
    the machine that runs the command.

    Raises:
        subprocess.CalledProcessError: on a non-zero exit code, unless
            ``ignore_exit_code=True``. (The original documentation says
            ``ignore_exit_code=False`` suppresses it; it is ``True`` that does.)
    """
    transport = get_transport(remote, ssh=ssh)
    result = transport.run(
        cmd, cwd=join_dirs(rootdir, workdir), check=not ignore_exit_code, merge_stderr=True
    )
    return result.stdout


def join_dirs(rootdir: str, workdir: str) -> str:
    """``rootdir/workdir`` for the machine that runs the command ('': where the shell starts)."""
    if not rootdir:
        return workdir
    if not workdir:
        return rootdir
    return posixpath.join(rootdir, workdir)


def mkdir(name: str, mode: int = 0o750) -> None:
    """``mkdir -p``: create ``name`` with ``mode`` and any missing parents.

    Does nothing if the folder exists; raises ``OSError`` if a file of that name exists.
    """
    try:
        os.makedirs(name, mode)
    except FileExistsError:
        if not os.path.isdir(name):
            raise OSError(
                errno.EEXIST, f"cannot create folder {name!r}: a file of that name exists", name
            ) from None
