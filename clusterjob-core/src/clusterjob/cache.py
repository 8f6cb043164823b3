"""Crash-safe storage of submitted jobs: versioned JSON files, written atomically.

A cache file ``<cache_folder>/<cache_prefix>.<cache_id>.cache`` is either

* an *intent* (``"state": "submitting"``): written right before the scheduler
  is called and made durable through the folder's journal
  (:mod:`clusterjob.journal`); it carries the tag the job is submitted with,
  so that after a crash the job can be found and adopted instead of being
  submitted again; or
* a *result* (``"state": "submitted"``): the :class:`~clusterjob.AsyncResult`,
  rewritten whenever its status changes.

Writers hold an exclusive ``flock`` on ``<cache file>.lock``, so several
processes submitting the same ``cache_id`` produce one job. Readers need no
lock: a file is only ever replaced whole (temp file, rename).
A file that is not valid clusterjob JSON is never overwritten silently.
"""

from __future__ import annotations

import atexit
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

from clusterjob import journal
from clusterjob.errors import CacheError
from clusterjob.faults import checkpoint

__all__ = [
    "CACHE_FORMAT",
    "atomic_write_json",
    "cache_path",
    "check_cache_id",
    "discard_intents",
    "forget",
    "locked",
    "read_record",
    "set_aside",
    "settle",
    "write_intents",
    "write_results",
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
        journal.fsync_path(folder)


def write_intents(records: Mapping[str, dict[str, Any]]) -> None:
    """Write the intents ``records`` (path -> data) durably, with one flush per folder.

    Each file is replaced whole (temp file, rename) without a flush of its
    own, which a crash of the process cannot undo (the page cache survives
    it); a power loss can, so every intent is also appended to its folder's
    journal, flushed once for all of them (group commit). The caller calls
    the scheduler only after this returns.
    """
    by_folder = _write_unflushed(records)
    for folder, paths in by_folder.items():
        _inflight.update(paths)
        _journal_records(folder, {path: records[path] for path in paths})


def write_results(records: Mapping[str, dict[str, Any]]) -> None:
    """Write the results ``records`` (path -> data) that replace intents or adopt jobs.

    A result that replaces this process's intent needs no flush: until the
    journal forgets that intent (:func:`_checkpoint`, once the file is on the
    disk), the intent can be restored and its job adopted. A result written
    for a job adopted from an earlier run has no such intent in the journal,
    so those are journaled, with one flush for all of them.
    """
    by_folder = _write_unflushed(records)
    for folder, paths in by_folder.items():
        adopted = {path: records[path] for path in paths if path not in _inflight}
        _inflight.difference_update(paths)
        if adopted:
            _journal_records(folder, adopted)


def discard_intents(paths: Sequence[str]) -> None:
    """Remove the intents ``paths`` of submissions the scheduler refused (no job exists).

    Their journal entries stay until a checkpoint: restored after a restart,
    such an intent costs one tag lookup that finds nothing.
    """
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        _inflight.discard(path)


def _write_unflushed(records: Mapping[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Replace each file of ``records`` without a flush; the paths by folder."""
    by_folder: dict[str, list[str]] = {}
    for path, data in records.items():
        folder = os.path.dirname(path) or "."
        if folder not in by_folder:
            os.makedirs(folder, exist_ok=True)
            by_folder[folder] = []
        _replace(path, folder, data, fsync=False)
        by_folder[folder].append(path)
    return by_folder


def _journal_records(folder: str, records: Mapping[str, dict[str, Any]]) -> None:
    host, boot = journal.machine()
    entries = [
        journal.Entry(os.path.basename(path), _stamped(data), host, boot, os.getpid())
        for path, data in records.items()
    ]
    book = _journal(folder)
    with book.locked() as fd:
        size = book.append(fd, entries)
    if folder not in _written:
        if not _written:
            atexit.register(_checkpoint_all)
        _written.add(folder)
    if size > journal.CHECKPOINT_BYTES:
        _checkpoint(folder)


#: The journals of the folders this process used, by folder.
_journals: dict[str, journal.Journal] = {}
#: Folders whose journal this process has settled (after a restart: see :func:`settle`).
_settled: set[str] = set()
#: Folders this process has journaled records in (checkpointed when it exits).
_written: set[str] = set()
#: Cache files whose intent this process wrote and whose result it has not written yet.
_inflight: set[str] = set()

#: Up to this many files, a checkpoint fsyncs each; more, it flushes the file system.
FSYNC_EACH_LIMIT = 64


def _journal(folder: str) -> journal.Journal:
    book = _journals.get(folder)
    if book is None:
        book = _journals[folder] = journal.Journal(folder)
    return book


def _stamped(data: dict[str, Any]) -> dict[str, Any]:
    return {FORMAT_KEY: CACHE_FORMAT, **data}


def settle(folder: str) -> None:
    """Give back to their cache files the records a restart of this machine lost.

    Done once per process and folder, before its first lock there and before
    ``submit()`` first reads a cached result there: a restart may have put an
    older result back where a forced submission's intent was. Entries of this
    host written in an earlier boot (or, where the boot is unknown, by a
    process that has gone) are settled: a file that does not hold its
    latest entry's submission (missing, unreadable, an older submission's
    record) gets that record back, and is then flushed with the others
    before the entries are forgotten.
    """
    if folder in _settled:
        return
    _settled.add(folder)
    book = _journal(folder)
    if not book.exists():
        return
    host, boot = journal.machine()
    with book.locked() as fd:
        entries = book.read(fd)
        stale = {
            index
            for index, entry in enumerate(entries)
            if entry.host == host and (entry.boot != boot or not boot) and not entry.writer_alive()
        }
        if not stale:
            return
        latest = {entry.name: index for index, entry in enumerate(entries)}
        for index in sorted(stale):
            entry = entries[index]
            path = os.path.join(folder, entry.name)
            if latest[entry.name] == index and not _holds(path, entry.record):
                _restore(path, folder, entry.record)
        names = dict.fromkeys(entries[index].name for index in sorted(stale))
        _flush(folder, [os.path.join(folder, name) for name in names])
        book.keep_only(fd, [e for i, e in enumerate(entries) if i not in stale])


def _holds(path: str, record: dict[str, Any]) -> bool:
    """Whether the cache file ``path`` holds ``record``'s submission (or its later result)."""
    try:
        current = read_record(path)
    except CacheError:
        return False
    return (
        current is not None
        and current.get("tag") == record.get("tag")
        and current.get("cache_id") == record.get("cache_id")
        and (record.get("state") != "submitted" or current.get("state") == "submitted")
    )


def _restore(path: str, folder: str, record: dict[str, Any]) -> None:
    if os.path.exists(path):
        try:
            read_record(path)
        except CacheError:
            set_aside(path)  # what the restart left there is kept, beside the restored record
    data = {key: value for key, value in record.items() if key != FORMAT_KEY}
    _replace(path, folder, data, fsync=False)
    logger.warning(
        "restored %s from the journal of its folder: the machine restarted before the file "
        "reached the disk (%s of job tag %s)",
        path,
        "intent" if record.get("state") == "submitting" else "result",
        record.get("tag"),
    )


def _checkpoint(folder: str, at_exit: bool = False) -> None:
    """Forget the journal entries whose files are on the disk: this host's and boot's,
    written by processes that have gone, or by this one and no longer in flight."""
    book = _journal(folder)
    pid = os.getpid()
    with book.locked() as fd:
        entries = book.read(fd)
        inflight = set() if at_exit else {os.path.basename(path) for path in _inflight}
        done = [
            entry.written_here()
            and (
                (entry.pid == pid and entry.name not in inflight)
                or (entry.pid != pid and not entry.writer_alive())
            )
            for entry in entries
        ]
        if not any(done):
            return
        paths = sorted({os.path.join(folder, e.name) for e, gone in zip(entries, done) if gone})
        _flush(folder, paths)
        book.keep_only(fd, [entry for entry, gone in zip(entries, done) if not gone])


def _checkpoint_all() -> None:
    """At exit: checkpoint every folder this process journaled in (a failure is only logged:
    the entries stay, and are forgotten by the next checkpoint)."""
    for folder in sorted(_written):
        try:
            _checkpoint(folder, at_exit=True)
        except OSError as exc:
            logger.debug("could not checkpoint the journal of %s: %s", folder, exc)


def _flush(folder: str, paths: Sequence[str]) -> None:
    """Make ``paths`` (those that exist) and their names in ``folder`` durable."""
    existing = [path for path in paths if os.path.exists(path)]
    if len(existing) > FSYNC_EACH_LIMIT:
        flush_folders([folder], existing)
        return
    for path in existing:
        with contextlib.suppress(FileNotFoundError):
            journal.fsync_path(path)
    journal.fsync_path(folder)


def forget(paths: Sequence[str]) -> None:
    """Drop the journal entries of the cache files ``paths``, which were removed on purpose
    (``clusterjob cache clear``): a restart must not bring them back. A journal left with
    no entry is removed."""
    by_folder: dict[str, set[str]] = {}
    for path in paths:
        by_folder.setdefault(os.path.dirname(path) or ".", set()).add(os.path.basename(path))
    for folder, names in by_folder.items():
        book = _journal(folder)
        if not book.exists():
            continue
        with book.locked() as fd:
            entries = book.read(fd)
            kept = [entry for entry in entries if entry.name not in names]
            if not kept:
                book.remove()
            elif len(kept) < len(entries):
                book.keep_only(fd, kept)


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
        journal.fsync_path(path)


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
    """Hold the exclusive submission lock of cache file ``path`` (released even on SIGKILL).

    The folder's journal is settled first, once per process (:func:`settle`).
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    settle(folder)
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
