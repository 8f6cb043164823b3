"""The intent journal of a cache folder: one cheap flush per submission instead of three.

Before the scheduler is called, a submission's intent must survive a power
loss, or the rerun would not know to look for the job and would submit it
again. Making a new cache file durable costs a journal commit of the file
system (create, fsync the file, fsync the folder: 0.6 ms on a quiet disk,
4 ms on a busy one); appending one line to a file that exists and
``fdatasync``-ing it costs a third of that. So each intent (or a whole batch
of them) is written to its cache file *without* a flush, which survives the
crash of the process (the page cache survives it), and appended to
``<cache folder>/.clusterjob-journal`` *with* one, which survives the crash of
the machine. The result that replaces the intent needs no flush of its own:
until the journal forgets the intent, the intent can be restored.

After the machine restarts, the entries of the boot before are *settled* by
the first process that takes a lock in the folder: a cache file that lost
its latest record (missing, unreadable, or an older submission's record) gets
it back from the journal. Entries are forgotten (*checkpointed*) once their
files are on the disk: at the exit of the process that wrote them, or when the
journal grows past :data:`CHECKPOINT_BYTES`. Entries of another machine (a
cache folder on a shared file system) are kept for that machine to settle.

This module is the file's mechanics (lines, lock, identity of the writer);
:mod:`clusterjob.cache` decides what is written and restored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CHECKPOINT_BYTES", "JOURNAL_NAME", "Entry", "Journal", "fsync_path", "machine"]

logger = logging.getLogger("clusterjob.journal")

JOURNAL_NAME = ".clusterjob-journal"

#: A journal longer than this is checkpointed by the next writer (about 2,000 intents).
CHECKPOINT_BYTES = 1 << 20


def _boot_id() -> str:
    """This boot's identity where the system tells it (Linux), else "" (unknown: then every
    entry of this host whose process has gone is settled, which restores nothing that is
    still in its cache file)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as in_fh:
            return in_fh.read().strip()
    except OSError:
        return ""


_MACHINE = (socket.gethostname(), _boot_id())


def machine() -> tuple[str, str]:
    """(host name, boot id) of this process: who wrote an entry, and in which boot."""
    return _MACHINE


@dataclass(frozen=True)
class Entry:
    """One journal line: the record ``record`` written to the cache file ``name`` of the folder."""

    name: str
    record: dict[str, Any]
    host: str
    boot: str
    pid: int

    def line(self) -> str:
        fields = {"name": self.name, "host": self.host, "boot": self.boot, "pid": self.pid}
        return json.dumps({**fields, "record": self.record}, sort_keys=True) + "\n"

    def written_here(self) -> bool:
        return (self.host, self.boot) == _MACHINE

    def writer_alive(self) -> bool:
        """Whether the process that wrote the entry may still be running (same host and boot;
        where the boot is unknown, a process of that number on this host counts)."""
        if not self.written_here():
            return False
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's process of that number: alive
            return True
        return True


def _parse(line: bytes) -> Entry | None:
    """The entry of ``line``; None for the torn last line of a writer that crashed mid-append
    (its intent was never flushed, so its scheduler call never happened)."""
    try:
        data = json.loads(line)
        return Entry(
            str(data["name"]), dict(data["record"]), str(data["host"]), str(data["boot"]),
            int(data["pid"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None


class Journal:
    """The journal file of one folder, opened once per process (and again after a fork)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, JOURNAL_NAME)
        self._fd = -1
        self._pid = -1
        self._thread_lock = threading.Lock()

    def exists(self) -> bool:
        return os.path.exists(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[int]:
        """Hold the journal's exclusive lock (creating the file); yields its descriptor."""
        with self._thread_lock:  # flock is per open file: threads of one process share it
            while True:
                fd = self._open()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                # A checkpoint replaced the file while we waited: use the new one.
                os.close(fd)
                self._fd = -1
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        if self._fd >= 0 and self._pid == os.getpid():
            return self._fd
        if self._fd >= 0:  # inherited through fork: the lock would be the parent's too
            os.close(self._fd)
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            fsync_path(self.folder)  # the new journal's name must survive a power loss too
        except FileExistsError:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        self._pid = os.getpid()
        return self._fd

    def append(self, fd: int, entries: Sequence[Entry]) -> int:
        """Append ``entries`` (under :meth:`locked`) and flush them; the journal's new size."""
        payload = "".join(entry.line() for entry in entries).encode("utf-8")
        written = 0
        while written < len(payload):
            written += os.write(fd, payload[written:])
        _datasync(fd)
        return os.fstat(fd).st_size

    def read(self, fd: int) -> list[Entry]:
        """Every complete entry (under :meth:`locked`)."""
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        entries = []
        for line in data.splitlines():
            entry = _parse(line)
            if entry is None:
                logger.debug("%s: ignoring a torn or foreign line", self.path)
            else:
                entries.append(entry)
        return entries

    def keep_only(self, fd: int, entries: Sequence[Entry]) -> None:
        """Replace the journal's content by ``entries`` (under :meth:`locked`).

        None left: truncated in place. Some left (another machine's, or of a
        process still submitting): a new file, flushed, renamed over the old one,
        so that a crash meanwhile never loses them; waiting writers see the
        rename and reopen.
        """
        if not entries:
            os.ftruncate(fd, 0)
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write("".join(entry.line() for entry in entries))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Delete the journal file (under :meth:`locked`, once it holds nothing): a writer
        waiting for the lock finds it gone and creates a new one."""
        os.unlink(self.path)


def _datasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
    sync(fd)


def fsync_path(path: str) -> None:
    """fsync a file or folder by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
