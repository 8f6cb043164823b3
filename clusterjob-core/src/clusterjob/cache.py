"""Crash-safe storage of submitted jobs: versioned JSON files, written atomically.

A cache file ``<cache_folder>/<cache_prefix>.<cache_id>.cache`` is either

* an *intent* (``"state": "submitting"``): written, fsynced and renamed into
  place right before the scheduler is called; it carries the tag the job is
  submitted with, so that after a crash the job can be found and adopted
  instead of being submitted again; or
* a *result* (``"state": "submitted"``): the :class:`~clusterjob.AsyncResult`,
  rewritten whenever its status changes.

Writers hold an exclusive ``flock`` on ``<cache file>.lock``, so several
processes submitting the same ``cache_id`` produce one job. Readers need no
lock: a file is only ever replaced whole (temp file, fsync, rename).
A file that is not valid clusterjob JSON is never overwritten silently.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import io
import json
import logging
import os
import pickletools
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from clusterjob.errors import CacheError
from clusterjob.faults import checkpoint

__all__ = [
    "CACHE_FORMAT",
    "atomic_write_json",
    "cache_path",
    "check_cache_id",
    "locked",
    "read_record",
    "set_aside",
    "write_records",
]

logger = logging.getLogger("clusterjob.cache")

#: Version of the cache file format; files of a newer version are refused.
CACHE_FORMAT = 1
FORMAT_KEY = "clusterjob_cache"

_BAD_CACHE_ID = re.compile(r"[/\x00\n\r]")


def check_cache_id(cache_id: str) -> str:
    """Return ``cache_id`` if it can name a file, else raise ValueError naming it."""
    if (
        not isinstance(cache_id, str)
        or not cache_id
        or _BAD_CACHE_ID.search(cache_id)
        or cache_id in (".", "..")
    ):
        raise ValueError(
            f"invalid cache_id {cache_id!r}: must be a non-empty string without '/', "
            "newlines or NUL"
        )
    return cache_id


def cache_path(cache_folder: str, cache_prefix: str, cache_id: str) -> str:
    """The documented file name ``cache_prefix.cache_id.cache`` inside ``cache_folder``."""
    folder = os.path.expanduser(cache_folder)
    return os.path.join(folder, f"{cache_prefix}.{check_cache_id(cache_id)}.cache")


def atomic_write_json(path: str, data: dict[str, Any], durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as JSON: a crash leaves the old or the new file, never half.

    ``durable=True`` also fsyncs the folder, so the rename itself survives a
    power loss: needed for the intent, which must exist before the scheduler
    is called. A result or status update may skip it: losing that rename
    leaves the intent (or an older status), which a rerun resolves.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    _replace(path, folder, data, fsync=True)
    if durable:
        _fsync(folder)


def write_records(records: Mapping[str, dict[str, Any]]) -> None:
    """Replace each file of ``records`` (path -> data) like :func:`atomic_write_json`, durably,
    with one flush for all of them (group commit).

    Each file is written whole to a temporary file and renamed into place, as
    one file is; what differs is when the disk is asked to keep them: once,
    after the last rename, for the whole batch (:func:`flush_folders`), not
    twice per file. Before that flush a crash of the process loses nothing
    (the files are in the page cache); a power loss may lose the batch, which
    is why the caller calls the scheduler only after this returns.
    """
    folders: list[str] = []
    for path, data in records.items():
        folder = os.path.dirname(path) or "."
        if folder not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.append(folder)
        _replace(path, folder, data, fsync=False)
    flush_folders(folders, list(records))


def _replace(path: str, folder: str, data: dict[str, Any], fsync: bool) -> None:
    """Write ``data`` to a temporary file in ``folder`` (``fsync``: to the disk), rename it to
    ``path``."""
    # One line, by json's C encoder (indent= would run the pure-Python one: a third of the
    # time of a 1,000-job submit_all).
    payload = json.dumps({FORMAT_KEY: CACHE_FORMAT, **data}, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".cj-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(payload)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        checkpoint("during_cache_write")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync(path: str) -> None:
    """fsync a file or folder by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush_folders(folders: Sequence[str], paths: Sequence[str]) -> None:
    """Make the files ``paths`` in ``folders`` (contents and names) durable, with one flush if the
    system has one.

    On Linux, ``syncfs(2)`` of each folder's file system: one call writes back
    every file of the batch and the renames that put them in place. Elsewhere
    (or if it fails), every file and then every folder is fsynced.
    """
    if _syncfs is not None:
        devices: set[int] = set()
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            try:
                device = os.fstat(fd).st_dev
                if device not in devices and _syncfs(fd) != 0:
                    break
                devices.add(device)
            finally:
                os.close(fd)
        else:
            return
        logger.debug("syncfs failed (errno %d); fsyncing each file", ctypes.get_errno())
    for path in [*paths, *folders]:
        _fsync(path)


def _find_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_syncfs = _find_syncfs()


def read_record(path: str) -> dict[str, Any] | None:
    """The record stored in ``path``, None if there is none; CacheError if it is not ours."""
    try:
        with open(path, "rb") as in_fh:
            raw = in_fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheError(f"cannot read cache file {path}: {exc}") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if is_pickle(raw):
            raise CacheError(pickle_message(path)) from None
        raise CacheError(
            f"cache file {path} is not valid clusterjob JSON ({exc}); it was left untouched. "
            "Inspect it, delete it to resubmit, or submit with force=True to set it aside"
        ) from None
    if not isinstance(data, dict) or FORMAT_KEY not in data:
        raise CacheError(
            f"cache file {path} was not written by clusterjob (no {FORMAT_KEY!r} key); it was left "
            "untouched. Delete it or submit with force=True to set it aside"
        )
    version = data[FORMAT_KEY]
    if not isinstance(version, int) or version > CACHE_FORMAT:
        raise CacheError(
            f"cache file {path} has format {version!r}, newer than this clusterjob understands "
            f"({CACHE_FORMAT}); upgrade clusterjob-core"
        )
    return data


def is_pickle(raw: bytes) -> bool:
    """Whether ``raw`` is a whole pickle, as the original clusterjob wrote its cache files.

    The opcodes are only disassembled (:func:`pickletools.dis`, which also checks
    that they build one object, so text such as ``hello.`` is not taken for one);
    nothing is unpickled, since unpickling a file runs whatever code it names.
    """
    if not raw.rstrip().endswith(b"."):  # every pickle ends with the STOP opcode
        return False
    try:
        pickletools.dis(raw, out=io.StringIO())
    except ValueError:  # an unknown opcode, truncated data, an inconsistent stack: not a pickle
        return False
    return True


def pickle_message(path: str) -> str:
    """What a user reads about an old pickle cache file: what it is, and the two ways out."""
    return (
        f"cache file {path} is a pickle written by the original clusterjob (before 3.0); "
        "clusterjob now caches JSON and never unpickles a file (that could run any code), so it "
        "was not read and was left untouched. If its job may still run, check the scheduler "
        "first; then delete the file to submit the job again, or resubmit with force "
        "(submit(force=True), clusterjob submit --force), which sets the file aside"
    )


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the exclusive submission lock of cache file ``path`` (released even on SIGKILL)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def set_aside(path: str) -> str:
    """Rename an unreadable cache file out of the way (kept for inspection); return its new name."""
    new_name = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.replace(path, new_name)
    logger.warning("set aside unreadable cache file %s as %s", path, new_name)
    return new_name
