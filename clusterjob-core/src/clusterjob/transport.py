"""Run commands and write files, on this machine or on a remote over SSH.

Everything clusterjob does to a machine goes through a :class:`Transport`,
so backends never care where the scheduler lives.

Remote commands use the system ``ssh`` (the ``ssh`` attribute, options
allowed) with ``BatchMode=yes`` (never a password prompt) and one
multiplexed master connection per host and user (``ControlMaster=auto``,
``ControlPersist``, ``ControlPath`` in a short private folder), so polling
or submitting many jobs does not open many TCP connections; the first
command to a host is serialized across threads and processes so that a
burst of parallel commands starts one master, not one connection each.

How a command crosses the remote shell: the command is quoted for a POSIX
``sh`` (:func:`shlex.quote`; ``~`` at the start of a path expands on the
remote), wrapped in a small ``sh`` script, and that script is sent as a
``printf`` format made only of letters, digits and octal escapes, which
every login shell (bash, zsh, csh, fish...) passes on unchanged. So no
byte of a job name, path or argument is ever interpreted by a shell.

The wrapper tells "ssh failed" from "the command failed": ssh exits 255
when *it* failed (connection refused/reset, name resolution, login), and a
remote command that itself exits 255 is marked as such. Only the former
raises :class:`~clusterjob.errors.TransientTransportError`, which is never a
statement about a job (pollers retry; see :mod:`clusterjob.polling`). A
command that was not found (exit 127) gets the host name and its ``PATH``
added to the error.

Writing files and submitting in one round trip
(:meth:`Transport.run_with_files`, :meth:`Transport.write_files`): the
login shell is given only ``exec /bin/sh -s``, and the script arrives on
stdin (no limit on its size but the few MiB of a chunk, see
:data:`SCRIPT_CHUNK`). It is one ``{ ... }`` group, so ``sh`` runs nothing
unless all of it arrived. Names are quoted as above; each file's contents are
written by the shell's own ``printf`` (a single-quoted ``%s`` argument, or, for a
file that holds a NUL byte, formats of octal escapes), so writing a file starts
no process. The files of a folder are written into a new temporary folder inside
it, get their modes with one ``chmod`` per mode and are renamed into place with
one ``mv`` (each rename atomic: a file appears whole or not at all), so a
thousand files in one folder cost about six processes on the remote, not three
per file. Which step failed, and which folder could not be written, come back
as marked lines on stderr (removed locally), so a failed write is never
mistaken for the command's own failure; the command runs with stdin from
``/dev/null``, in its folder, and its exit code is reported as above.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import posixpath
import re
import secrets
import shlex
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from clusterjob.commands import CommandResult
from clusterjob.errors import SchedulerError, TransientTransportError

__all__ = [
    "CommandResult",
    "LocalTransport",
    "SshTransport",
    "Transport",
    "close_all",
    "encode_for_login_shell",
    "get_transport",
    "remote_path",
    "shell_command",
]

logger = logging.getLogger("clusterjob.transport")

#: ssh exits with 255 when it, not the remote command, failed.
SSH_FAILURE_EXIT = 255
#: A POSIX shell's exit code for "command not found".
NOT_FOUND_EXIT = 127

#: Seconds an idle master connection stays open after the last command.
CONTROL_PERSIST = os.environ.get("CLUSTERJOB_SSH_CONTROL_PERSIST", "600")

#: Attempts of idempotent remote operations (mkdir, writing a file, scp) when
#: ssh cannot reach the remote; the pauses between them double from 1 s.
IDEMPOTENT_ATTEMPTS = 4

#: Seconds during which a remote folder this process created is taken to exist,
#: and a folder's probe (:meth:`Transport.probe_folders`) is taken to hold.
MKDIR_MEMORY = 60.0

#: Bytes of script one ssh command carries at most when many files are written
#: (a file larger than that goes alone); the remote ``sh`` holds a chunk in memory.
SCRIPT_CHUNK = 4 * 1024 * 1024

#: A file to write: (path, contents, executable).
FileSpec = tuple[str, str, bool]

#: A unix socket path has at most 107 bytes; ssh adds ``.`` and 16 random
#: characters while creating it, and ``%C`` is 40 hex digits.
_MAX_CONTROL_DIR = 107 - 1 - 40 - 17

#: Last line the remote wrapper writes to stderr when the command exited 255 or 127.
_MARK = "#clusterjob-exit"
_MARK_LINE = re.compile(r"(?:\n)?" + re.escape(_MARK) + r" (\d+)(?: ([^\n]*))?\n?\Z")
#: Last line on stderr of a stdin script whose step ``N`` (a folder or a file) failed.
_STEP_MARK = "#clusterjob-step-failed"
_STEP_LINE = re.compile(r"\n?" + re.escape(_STEP_MARK) + r" (\d+)\n?\Z")
#: A line on stderr of a stdin script: probe ``N`` succeeded, or failed and why.
_PROBE_MARK = "#clusterjob-probe"
_PROBE_LINE = re.compile(r"\n?" + re.escape(_PROBE_MARK) + r" (\d+) (ok|failed)(?: ([^\n]*))?\n")

#: ssh failures that waiting will not cure (told to the user; not retried at submission).
_PERMANENT_SSH_FAILURES = {
    "Permission denied": "ssh could not log in; clusterjob runs ssh with BatchMode=yes, so the "
    "remote must accept a key (or agent) without a prompt",
    "Host key verification failed": "the remote's host key is unknown or has changed; connect once "
    "interactively (or fix known_hosts)",
    "Could not resolve hostname": "the host name does not resolve; check `remote` (or the Host "
    "alias in your ssh config)",
    "Bad configuration option": "the ssh options (the `ssh` attribute or ssh_config) are invalid",
    "Can't open user config file": "the ssh config file named with -F does not exist",
}

#: The wrapper run by ``/bin/sh`` on the remote around every command (``@CMD@``).
#: The subshell keeps an ``exec`` or ``exit`` in the command from skipping the
#: exit-code report; the report is one line on stderr, removed again locally.
_WRAPPER = """(
@CMD@
)@STDIN@
cj_rc=$?
case $cj_rc in
255) printf '\\n%s 255\\n' '@MARK@' >&2 ;;
127) printf '\\n%s 127 %s %s\\n' '@MARK@' "$(uname -n 2>/dev/null)" "$PATH" >&2 ;;
esac
exit $cj_rc
"""

_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,._+:@=/-")


def remote_path(path: str) -> str:
    """Quote ``path`` for a POSIX shell, keeping a leading ``~`` or ``~user`` expandable there."""
    match = re.match(r"^~([A-Za-z0-9._][A-Za-z0-9._-]*)?(/.*)?$", path)
    if match is None:
        return shlex.quote(path)
    user, rest = match.group(1) or "", match.group(2) or ""
    home = f"~{user}" if user else '"$HOME"'
    rest = rest.lstrip("/")
    return f"{home}/{shlex.quote(rest)}" if rest else home


def shell_command(cmd: Sequence[str] | str) -> str:
    """A shell string for ``cmd``: list items are quoted, a string is used as is."""
    if isinstance(cmd, str):
        return cmd
    return " ".join(shlex.quote(str(arg)) for arg in cmd)


def encode_for_login_shell(script: str) -> str:
    """A command line that makes any login shell run ``script`` with ``/bin/sh``, byte for byte.

    The script travels as a ``printf`` format of safe characters and
    three-digit octal escapes (``%`` and ``\\`` too), inside single quotes:
    nothing in it is special to sh, bash, zsh, csh/tcsh or fish.
    """
    encoded = _octal(script.encode("utf-8"))
    return "exec /bin/sh -c 'exec /bin/sh -c \"$(printf '\\''" + encoded + "'\\'')\" clusterjob'"


def _octal(data: bytes) -> str:
    """``data`` as a ``printf`` format: safe characters as they are, every other byte ``\\ooo``."""
    return "".join(chr(b) if b in _SAFE_BYTES else f"\\{b:03o}" for b in data)


def _wrapped(script: str, stdin: str) -> str:
    """``script`` in :data:`_WRAPPER` (its exit code reported), stdin redirected by ``stdin``."""
    return _WRAPPER.replace("@MARK@", _MARK).replace("@STDIN@", stdin).replace("@CMD@", script)


def _in_folder(cmd: Sequence[str] | str, cwd: str) -> str:
    script = shell_command(cmd)
    return f"cd -- {remote_path(cwd)} && {script}" if cwd else script


#: Opens the group of a stdin script and defines its two failure paths.
#: ``cj_fail N [CODE]`` removes the temporary folder of the files being written
#: (``$cj_d``), reports step N and exits with CODE (default: the code of the
#: command that failed). ``cj_left N NAME ...`` follows a ``mv`` of several
#: files that failed: the step N of the first NAME still in the temporary
#: folder (not renamed) is the one reported, as its own failed write would be.
_SCRIPT_START = (
    "{\ncj_d=\n"
    'cj_fail() { cj_rc=${2:-$?}; [ -z "$cj_d" ] || rm -rf -- "$cj_d"; '
    "printf '\\n%s %s\\n' '" + _STEP_MARK + '\' "$1" >&2; exit "$cj_rc"; }\n'
    'cj_left() { cj_rc=$?; cj_i=$1; while [ "$#" -gt 1 ]; do '
    'if [ -e "$cj_d/$2" ]; then cj_i=$1; break; fi; shift 2; done; cj_fail "$cj_i" "$cj_rc"; }\n'
)

#: Characters of a file per ``printf`` (at most 4 bytes each once quoted or
#: encoded: far below the 128 KiB of one argument, should ``printf`` not be
#: built into the remote's ``sh``).
_PRINTF_CHUNK = 16 * 1024

#: Bytes of file names one ``chmod`` or ``mv`` is given at most: half the
#: smallest command line Linux allows (128 KiB, environment included), so a
#: folder of thousands of files takes a few such commands, never one per file.
_ARGS_CHUNK = 64 * 1024

#: Bytes a remote ``$HOME`` is allowed for when the names given to one command
#: are counted (a folder starting with ``~`` is expanded there).
_HOME_ALLOWANCE = 256


def _folder_step(index: int, folder: str) -> str:
    target = remote_path(folder)
    return f"[ -d {target} ] || mkdir -p -- {target} || cj_fail {index}\n"


def _printfs(data: str) -> str:
    """Shell builtins that print exactly ``data`` (any text; no process is started).

    A single-quoted ``%s`` argument takes every byte as it is (``'`` is
    spelled ``'\\''``); the shell cannot hold a NUL byte in an argument, so a
    file with one is written by ``printf`` formats of octal escapes instead.
    """
    if not data:
        return ":"
    if "\0" in data:
        raw = data.encode("utf-8")
        parts = [
            f"printf '{_octal(raw[i : i + _PRINTF_CHUNK])}'"
            for i in range(0, len(raw), _PRINTF_CHUNK)
        ]
    else:
        parts = [
            "printf %s " + shlex.quote(data[i : i + _PRINTF_CHUNK])
            for i in range(0, len(data), _PRINTF_CHUNK)
        ]
    return parts[0] if len(parts) == 1 else "{ " + "; ".join(parts) + "; }"


#: One file of a folder's write step: (step index, base name, the :func:`_printfs` that
#: write its contents, executable).
_Entry = tuple[int, str, str, bool]


def _batches(entries: Sequence[_Entry], folder: str) -> Iterator[list[_Entry]]:
    """``entries`` in order, in lists whose names fit one command line (see :data:`_ARGS_CHUNK`)."""
    # A name arrives as <folder>/.cj-<12 hex>-<pid>.tmp/<name> and a NUL.
    base = len(folder.encode("utf-8")) + 40 + (_HOME_ALLOWANCE if folder.startswith("~") else 0)
    batch: list[_Entry] = []
    length = 0
    for entry in entries:
        size = base + len(entry[1].encode("utf-8"))
        if batch and length + size > _ARGS_CHUNK:
            yield batch
            batch, length = [], 0
        batch.append(entry)
        length += size
    if batch:
        yield batch


def _files_step(folder: str, entries: Sequence[_Entry]) -> str:
    """Write the files ``entries`` of ``folder`` into a new temporary folder inside it, set their
    modes, and rename them into place together; remove the temporary folder.

    A rename within a file system is atomic, so each file appears under its
    name whole or not at all, and a script cut short (or a failure, which
    removes the temporary folder) leaves no part of a file anywhere. The
    processes started do not depend on the number of files: ``mkdir``, one
    ``chmod`` per mode and one ``mv`` per :data:`_ARGS_CHUNK` of names, ``rmdir``.
    """
    target = remote_path(folder)
    temporary = f"{target}/.cj-{secrets.token_hex(6)}-$$.tmp"
    lines = [f'cj_n={temporary}\nmkdir -- "$cj_n" || cj_fail {entries[0][0]}\ncj_d=$cj_n\n']
    for index, name, printfs, _ in entries:
        lines.append(f'{printfs} > "$cj_d"/{shlex.quote(name)} || cj_fail {index}\n')
    for mode, executable in (("755", True), ("644", False)):
        chosen = [entry for entry in entries if entry[3] == executable]
        for batch in _batches(chosen, folder):
            names = " ".join(f'"$cj_d"/{shlex.quote(name)}' for _, name, _, _ in batch)
            lines.append(f"chmod {mode} -- {names} || cj_fail {batch[0][0]}\n")
    for batch in _batches(entries, folder):
        names = " ".join(f'"$cj_d"/{shlex.quote(name)}' for _, name, _, _ in batch)
        left = " ".join(f"{index} {shlex.quote(name)}" for index, name, _, _ in batch)
        lines.append(f"mv -f -- {names} {target}/ || cj_left {left}\n")
    lines.append(f'rmdir -- "$cj_d" || cj_fail {entries[-1][0]}\ncj_d=\n')
    return "".join(lines)


def _probe_step(index: int, folder: str, probe_name: str) -> str:
    """Create ``folder``, write and remove a probe file in it; report the outcome on stderr."""
    target = remote_path(folder)
    probe = f"{target}/{probe_name}"
    return (
        f"if cj_e=$( {{ {{ [ -d {target} ] || mkdir -p -- {target}; }} && "
        f"printf 'probe\\n' > {probe} && rm -f -- {probe}; }} 2>&1 )\n"
        f"then printf '\\n%s %s ok\\n' '{_PROBE_MARK}' {index} >&2\n"
        f"else printf '\\n%s %s failed %s\\n' '{_PROBE_MARK}' {index} "
        "\"$(printf '%s' \"$cj_e\" | tr '\\n' ' ')\" >&2\nfi\n"
    )


def _stdin_script(steps: Sequence[str], command: str | None) -> str:
    """The steps, then ``command`` (run with stdin from /dev/null), as one ``{ ... }`` group."""
    tail = _wrapped(command, stdin=" </dev/null") if command is not None else "exit 0\n"
    return _SCRIPT_START + "".join(steps) + tail + "}\n"


def _chunks(steps: Sequence[str], size: int) -> Iterator[list[str]]:
    """``steps`` in order, in lists of at most ``size`` characters (a larger step alone)."""
    chunk: list[str] = []
    length = 0
    for step in steps:
        if chunk and length + len(step) > size:
            yield chunk
            chunk, length = [], 0
        chunk.append(step)
        length += len(step)
    if chunk:
        yield chunk


def _write_steps(
    files: Sequence[FileSpec], folders: Sequence[str], size: int | None = None
) -> tuple[list[str], list[str]]:
    """The steps that create ``folders`` and write ``files``, and what each step is (messages).

    ``cj_fail N`` names ``descriptions[N]``: a folder, or one file. The files
    are written folder by folder (folders in the order their first file
    comes), a folder's files in steps of at most ``size`` characters of
    script (default :data:`SCRIPT_CHUNK`; a larger file alone), so that
    :func:`_chunks` can cut between them. A path written twice gets the
    contents and mode of its last entry, as writing in order would.
    """
    size = SCRIPT_CHUNK if size is None else size
    steps = [_folder_step(i, folder) for i, folder in enumerate(folders)]
    descriptions = [f"mkdir -p -- {shlex.quote(folder)}" for folder in folders]
    by_folder: dict[str, dict[str, _Entry]] = {}
    for path, data, executable in files:
        folder, name = posixpath.split(path)
        if name in ("", ".", ".."):
            raise ValueError(
                f"cannot write the file {path!r}: the path names a folder (it ends in "
                f"{name or '/'!r}); give the path of a file in it"
            )
        entry = (len(descriptions), name, _printfs(data), executable)
        by_folder.setdefault(folder or ".", {})[name] = entry
        descriptions.append(f"write {shlex.quote(path)}")
    for folder, named in by_folder.items():
        group: list[_Entry] = []
        length = 0
        for entry in named.values():
            cost = len(entry[2]) + 3 * len(entry[1]) + 60  # its lines in _files_step
            if group and length + cost > size:
                steps.append(_files_step(folder, group))
                group, length = [], 0
            group.append(entry)
            length += cost
        steps.append(_files_step(folder, group))
    return steps, descriptions


def _take_probes(stderr: str) -> tuple[str, dict[int, str]]:
    """``stderr`` without the probe lines; probe index -> why it failed ('' if it did not)."""
    answers: dict[int, str] = {}

    def take(match: re.Match[str]) -> str:
        reason = (match.group(3) or "").strip() or "the probe failed"
        answers[int(match.group(1))] = "" if match.group(2) == "ok" else reason
        return ""

    return _PROBE_LINE.sub(take, stderr), answers


def append_line(text: str, line: str) -> str:
    """``text`` (a command's output) with ``line`` added as its last line."""
    return (text.rstrip("\n") + "\n" if text.strip() else "") + line + "\n"


def _not_found_note(host: str, path: str) -> str:
    return (
        f"clusterjob: exit code 127 means a command was not found on {host}; "
        f"PATH there is {path!r} "
        "(the PATH of a non-interactive login; is the scheduler's client installed and on it?)"
    )


class Transport:
    """Runs commands and writes files somewhere; see :func:`get_transport`."""

    remote: str | None = None

    def __init__(self) -> None:
        #: folder -> (when it was probed, why it is not writable: '' if it is)
        self._probed: dict[str, tuple[float, str]] = {}

    def run(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        check: bool = True,
        input: str | None = None,
        merge_stderr: bool = False,
        timeout: float | None = None,
        attempts: int = 1,
    ) -> CommandResult:
        """Run ``cmd`` in ``cwd`` ('' = home for remote, current dir for local).

        A list runs as program arguments, a string through ``/bin/sh -c``.
        Raises :class:`SchedulerError` on a non-zero exit if ``check``, and
        :class:`TransientTransportError` whenever ssh itself could not reach
        the remote (whatever ``check`` says: that is never the command's
        answer). ``attempts`` > 1 retries an unreachable remote with
        doubling pauses: only for commands that may safely run twice.
        """
        raise NotImplementedError

    def write_file(self, path: str, data: str, executable: bool = False) -> None:
        """Write ``data`` to ``path`` atomically enough that a half-written script is never run."""
        raise NotImplementedError

    def mkdir(self, path: str) -> None:
        """Create ``path`` and its parents if missing."""
        raise NotImplementedError

    def upload(self, localfile: str, remotefile: str) -> None:
        """Copy a local file to ``remotefile`` on the transport's machine."""
        raise NotImplementedError

    def write_files(
        self, files: Sequence[tuple[str, str, bool]], folders: Sequence[str] = ()
    ) -> None:
        """Create ``folders``, then write ``files`` ((path, data, executable) each), in order.

        What ``submit_all`` writes for a whole batch. Each file is written as
        :meth:`write_file` writes one; a remote transport may do it all in a
        few round trips instead of one per file.
        """
        for folder in folders:
            self.mkdir(folder)
        for path, data, executable in files:
            self.write_file(path, data, executable=executable)

    def probe_folders(self, folders: Sequence[str]) -> dict[str, str]:
        """Create each of ``folders`` and prove it writable (a probe file written and removed).

        Returns the folders that are not writable, each with the reason. The
        answer for a folder is remembered for :data:`MKDIR_MEMORY` seconds,
        so the folder of a thousand jobs is probed once, not per job.
        Raises TransientTransportError when a remote cannot be reached.
        """
        unknown = self.unprobed(folders)
        if unknown:
            self._remember_probes(self._probe(unknown))
        return {folder: self._probed[folder][1] for folder in folders if self._probed[folder][1]}

    def unprobed(self, folders: Sequence[str]) -> list[str]:
        """The folders among ``folders`` whose probe is not remembered (each once, in order)."""
        now = time.monotonic()
        return [
            folder
            for folder in dict.fromkeys(folders)
            if folder not in self._probed or now - self._probed[folder][0] >= MKDIR_MEMORY
        ]

    def run_with_files(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        files: Sequence[FileSpec] = (),
        folders: Sequence[str] = (),
        probe: Sequence[str] = (),
    ) -> tuple[CommandResult, dict[str, str]]:
        """:meth:`write_files`, :meth:`probe_folders` of ``probe``, then :meth:`run` of ``cmd``.

        What one ``submit()`` does: on a remote all of it is one round trip
        (see the module docstring). Returns the command's result and the
        probed folders that are not writable (with the reason); a folder
        that is not writable does not stop the command. Raises
        SchedulerError if a file cannot be written (the command is then not
        run) or the command fails, TransientTransportError when the remote
        cannot be reached (the command may or may not have run).
        """
        self.write_files(files, folders)
        unwritable = self.probe_folders(probe)
        return self.run(cmd, cwd=cwd), unwritable

    def _probe(self, folders: Sequence[str]) -> dict[str, str]:
        """Probe each folder; folder -> why it is not writable ('' if it is)."""
        raise NotImplementedError

    def _remember_probes(self, answers: dict[str, str]) -> None:
        now = time.monotonic()
        for folder, reason in answers.items():
            self._probed[folder] = (now, reason)

    def close(self) -> None:
        """Release connections kept open for reuse (nothing to do locally)."""

    def _finish(
        self, cmd: Sequence[str] | str, result: CommandResult, check: bool
    ) -> CommandResult:
        if result.returncode != 0:
            logger.debug(
                "%r exited with %d: %s",
                cmd,
                result.returncode,
                (result.stderr or result.stdout).strip(),
            )
            if check:
                raise SchedulerError(
                    result.returncode, cmd, result.stdout, result.stderr, remote=self.remote
                )
        return result


class LocalTransport(Transport):
    """This machine."""

    def run(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        check: bool = True,
        input: str | None = None,
        merge_stderr: bool = False,
        timeout: float | None = None,
        attempts: int = 1,
    ) -> CommandResult:
        directory = os.path.expanduser(cwd) if cwd else None
        logger.debug("run %r in %s", cmd, directory or os.getcwd())
        try:
            proc = subprocess.run(
                cmd if isinstance(cmd, str) else [str(a) for a in cmd],
                check=False,
                shell=isinstance(cmd, str),
                cwd=directory,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                text=True,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            if directory and not os.path.isdir(directory):
                raise SchedulerError(
                    127, cmd, "", f"working directory {directory!r} does not exist"
                ) from None
            missing = exc.filename if exc.filename else (cmd if isinstance(cmd, str) else cmd[0])
            raise SchedulerError(
                127, cmd, "",
                f"{missing!r} not found on PATH on this machine ({socket.gethostname()}, PATH="
                f"{os.environ.get('PATH', '')!r}); is the scheduler's client installed here?",
            ) from None  # fmt: skip
        except PermissionError as exc:
            raise SchedulerError(
                126, cmd, "", f"cannot execute {exc.filename or cmd!r}: {exc.strerror}"
            ) from None
        result = CommandResult(proc.returncode, proc.stdout or "", proc.stderr or "", cmd)
        if proc.returncode == NOT_FOUND_EXIT and isinstance(cmd, str):
            note = _not_found_note(socket.gethostname(), os.environ.get("PATH", ""))
            if merge_stderr:
                result = replace(result, stdout=append_line(result.stdout, note))
            else:
                result = replace(result, stderr=append_line(result.stderr, note))
        return self._finish(cmd, result, check)

    def write_file(self, path: str, data: str, executable: bool = False) -> None:
        """A new file is written in place; an existing one is replaced by a renamed temporary copy.

        Never rewritten in place: a running job may be reading it (a shell
        reads its script as it goes). A new file cannot be read by anything
        yet (the scheduler is called after it is written), so it is spared the
        temporary copy and the rename: a 1,000-job ``submit_all`` writes
        1,000 scripts.
        """
        path = os.path.expanduser(path)
        mode = 0o755 if executable else 0o644
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            self._replace(path, data, mode)
            return
        try:
            os.fchmod(fd, mode)  # whatever the umask
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
        except BaseException:
            os.unlink(path)
            raise

    def _replace(self, path: str, data: str, mode: int) -> None:
        folder = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".cj-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def mkdir(self, path: str) -> None:
        os.makedirs(os.path.expanduser(path), mode=0o750, exist_ok=True)

    def _probe(self, folders: Sequence[str]) -> dict[str, str]:
        answers = {}
        for folder in folders:
            try:
                os.makedirs(os.path.expanduser(folder), exist_ok=True)
                fd, probe = tempfile.mkstemp(dir=os.path.expanduser(folder), prefix=".cj-probe-")
                os.close(fd)
                os.unlink(probe)
                answers[folder] = ""
            except OSError as exc:
                answers[folder] = str(exc)
        return answers

    def upload(self, localfile: str, remotefile: str) -> None:
        with open(localfile, encoding="utf-8") as src:
            self.write_file(remotefile, src.read(), executable=os.access(localfile, os.X_OK))


def _private_dir(path: str) -> bool:
    """Whether ``path`` is a real directory owned by us that nobody else may enter."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


_control_dirs: dict[str, str] = {}


def _control_dir() -> str:
    """A short, private folder for ssh control sockets.

    ``$CLUSTERJOB_SSH_CONTROL_DIR``, else ``<tmp>/cj-ssh-<uid>``. A folder
    whose path is too long for a socket falls back to ``/tmp/cj-ssh-<uid>``;
    one that is not ours or is open to others is never used (someone could
    plant a socket there): a fresh private folder is used instead.
    """
    wanted = os.environ.get("CLUSTERJOB_SSH_CONTROL_DIR") or os.path.join(
        tempfile.gettempdir(), f"cj-ssh-{os.getuid()}"
    )
    if wanted in _control_dirs:
        return _control_dirs[wanted]
    base = wanted
    if len(base.encode()) > _MAX_CONTROL_DIR:
        base = f"/tmp/cj-ssh-{os.getuid()}"
        logger.warning(
            "ssh control folder %s is too long for a socket path; using %s", wanted, base
        )
    with contextlib.suppress(FileExistsError):
        os.makedirs(base, mode=0o700)
    if not _private_dir(base):
        fallback = tempfile.mkdtemp(prefix="cj-ssh-", dir="/tmp")
        logger.warning(
            "ssh control folder %s is not a private folder of this user; using %s (connections are "
            "not shared with other processes)", base, fallback,
        )  # fmt: skip
        base = fallback
    _control_dirs[wanted] = base
    return base


def _permanent_failure(stderr: str) -> str | None:
    for needle, hint in _PERMANENT_SSH_FAILURES.items():
        if needle in stderr:
            return hint
    return None


class SshTransport(Transport):
    """A remote host reached with the system ``ssh``/``scp``.

    ``ssh``/``scp`` may carry options (``"ssh -F ~/.ssh/cluster_config"``);
    they are split with :func:`shlex.split`, and a word starting with ``~``
    is expanded locally (no shell is involved). Options given there win over
    the ones clusterjob adds (ssh uses the first value it sees).
    """

    def __init__(self, remote: str, ssh: str = "ssh", scp: str = "scp") -> None:
        super().__init__()
        self.remote = remote
        self.host: str = remote
        self.ssh = [os.path.expanduser(w) for w in shlex.split(ssh)] or ["ssh"]
        self.scp = [os.path.expanduser(w) for w in shlex.split(scp)] or ["scp"]
        self._connected = False
        self._made: dict[str, float] = {}
        key = repr((self.ssh, remote)).encode("utf-8")
        self._lock_name = "first-" + hashlib.sha1(key).hexdigest()[:16] + ".lock"

    def options(self) -> list[str]:
        """The ssh options clusterjob adds: no prompts, no tty, one master connection per host."""
        return [
            "-o", "BatchMode=yes",
            "-o", "RequestTTY=no",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPersist={CONTROL_PERSIST}",
            "-o", "ControlPath=" + os.path.join(_control_dir(), "%C"),
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=3",
            "-o", "ConnectTimeout=20",
        ]  # fmt: skip

    def remote_script(self, cmd: Sequence[str] | str, cwd: str) -> str:
        """The command line sent to the remote's login shell (see module docstring)."""
        script = shell_command(cmd)
        if cwd:
            script = f"cd -- {remote_path(cwd)} && {script}"
        return encode_for_login_shell(_wrapped(script, stdin=""))

    @contextlib.contextmanager
    def _first_contact(self) -> Iterator[None]:
        """One at a time (across processes) until a command got through: it starts the master."""
        if self._connected:
            yield
            return
        fd = os.open(os.path.join(_control_dir(), self._lock_name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _ssh(self, argv: list[str], cmd: Sequence[str] | str, input: str | None, merge_stderr: bool,
             timeout: float | None) -> CommandResult:  # fmt: skip
        """Run one ssh/scp process; TransientTransportError if ssh itself failed."""
        try:
            with self._first_contact():
                proc = subprocess.run(
                    argv,
                    check=False,
                    input=input,
                    stdin=None if input is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                    text=True,
                    timeout=timeout,
                )
        except FileNotFoundError:
            raise SchedulerError(
                127,
                argv,
                "",
                f"{argv[0]!r} not found on PATH on this machine "
                f"(PATH={os.environ.get('PATH', '')!r})",
            ) from None
        except subprocess.TimeoutExpired as exc:
            self._connected = False
            raise TransientTransportError(
                SSH_FAILURE_EXIT,
                cmd,
                "",
                f"ssh to {self.remote} timed out after {exc.timeout} s",
                remote=self.remote,
            ) from None
        result = CommandResult(proc.returncode, proc.stdout or "", proc.stderr or "", cmd)
        stream = "stdout" if merge_stderr else "stderr"
        text = getattr(result, stream)
        mark = _MARK_LINE.search(text)
        if mark is not None:
            text = text[: mark.start()]
            if mark.group(1) == str(NOT_FOUND_EXIT):
                host, _, path = (mark.group(2) or "").partition(" ")
                text = append_line(text, _not_found_note(host or self.remote or "?", path))
            result = replace(result, **{stream: text})
        elif proc.returncode == SSH_FAILURE_EXIT:
            self._connected = False
            detail = (
                proc.stderr or proc.stdout or ""
            ).strip() or "ssh exited with 255 and printed nothing"
            hint = _permanent_failure(detail)
            error = TransientTransportError(
                SSH_FAILURE_EXIT, cmd, proc.stdout or "", f"ssh to {self.remote} failed: {detail}"
                + (f" ({hint})" if hint else ""), remote=self.remote,
            )  # fmt: skip
            error.permanent = hint is not None  # type: ignore[attr-defined]
            raise error
        self._connected = True
        return result

    def _retrying(
        self, attempts: int, what: str, call: Callable[[], CommandResult]
    ) -> CommandResult:
        """``call()``, retried with doubling pauses while ssh cannot reach the remote.

        Not after a login failure: waiting does not cure it.
        """
        delay = 1.0
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except TransientTransportError as exc:
                if attempt >= attempts or getattr(exc, "permanent", False):
                    raise
                logger.warning(
                    "cannot reach %s to %s (%s); retrying in %.0f s (attempt %d of %d)",
                    self.remote, what, exc.stderr, delay, attempt + 1, attempts,
                )  # fmt: skip
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def run(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        check: bool = True,
        input: str | None = None,
        merge_stderr: bool = False,
        timeout: float | None = None,
        attempts: int = 1,
    ) -> CommandResult:
        argv = [*self.ssh, *self.options(), "--", self.host, self.remote_script(cmd, cwd)]
        logger.debug("run %r on %s in %s", cmd, self.remote, cwd or "~")
        result = self._retrying(
            attempts,
            f"run {shell_command(cmd)[:60]!r}",
            lambda: self._ssh(argv, cmd, input, merge_stderr, timeout),
        )
        return self._finish(cmd, result, check)

    def write_file(self, path: str, data: str, executable: bool = False) -> None:
        # Write next to the target, then rename: a crash never leaves a half script in place.
        target = remote_path(path)
        mode = "755" if executable else "644"
        script = (
            f"tmp={target}.cj-$$.tmp && "
            f'{{ cat > "$tmp" && chmod {mode} "$tmp" && mv -f -- "$tmp" {target}; }}'
            ' || { rc=$?; rm -f -- "$tmp"; exit $rc; }'
        )
        try:
            self.run(script, input=data, attempts=IDEMPOTENT_ATTEMPTS)
        except SchedulerError:
            self._made.pop(
                posixpath.dirname(path), None
            )  # perhaps removed meanwhile: ask next time
            raise

    def mkdir(self, path: str) -> None:
        """``mkdir -p``; not asked again for a folder made less than :data:`MKDIR_MEMORY` s ago.

        Submitting many jobs into one folder then costs one round trip per
        job less (each costs a login shell start on the remote).
        """
        made = self._made.get(path)
        if made is not None and time.monotonic() - made < MKDIR_MEMORY:
            return
        self.run(f"mkdir -p -- {remote_path(path)}", attempts=IDEMPOTENT_ATTEMPTS)
        self._made[path] = time.monotonic()

    def write_files(self, files: Sequence[FileSpec], folders: Sequence[str] = ()) -> None:
        """Create ``folders`` and write ``files`` with one round trip per :data:`SCRIPT_CHUNK`.

        Retried while the remote cannot be reached (writing twice is harmless).
        Raises SchedulerError naming the folder or file that could not be written.
        """
        steps, descriptions = _write_steps(files, folders, SCRIPT_CHUNK)
        for chunk in _chunks(steps, SCRIPT_CHUNK):
            result, _ = self._run_script(
                _stdin_script(chunk, None), f"write {len(files)} file(s)", descriptions, (),
                IDEMPOTENT_ATTEMPTS,
            )  # fmt: skip
            self._finish(result.cmd, result, check=True)
        self._remember_folders(folders)

    def run_with_files(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        files: Sequence[FileSpec] = (),
        folders: Sequence[str] = (),
        probe: Sequence[str] = (),
    ) -> tuple[CommandResult, dict[str, str]]:
        """All of :meth:`Transport.run_with_files` in one ssh command (never retried: ``cmd``
        may have run when the link broke)."""
        steps, descriptions = _write_steps(files, folders)
        name = f".cj-probe-{secrets.token_hex(4)}"
        steps += [_probe_step(i, folder, name) for i, folder in enumerate(probe)]
        result, probed = self._run_script(
            _stdin_script(steps, _in_folder(cmd, cwd)), cmd, descriptions, probe, attempts=1
        )
        self._remember_folders(folders)
        return self._finish(cmd, result, check=True), {f: why for f, why in probed.items() if why}

    def _probe(self, folders: Sequence[str]) -> dict[str, str]:
        name = f".cj-probe-{secrets.token_hex(4)}"
        steps = [_probe_step(i, folder, name) for i, folder in enumerate(folders)]
        result, probed = self._run_script(
            _stdin_script(steps, None), "probe folders", [], folders, IDEMPOTENT_ATTEMPTS
        )
        self._finish(result.cmd, result, check=True)
        return probed

    def _run_script(
        self,
        script: str,
        cmd: Sequence[str] | str,
        steps: Sequence[str],
        probes: Sequence[str],
        attempts: int,
    ) -> tuple[CommandResult, dict[str, str]]:
        """Run a stdin script (see :func:`_stdin_script`); its result without the marked lines,
        and probed folder -> why it is not writable ('' if it is), remembered.

        Raises SchedulerError for a step that failed (``steps[N]`` names it).
        """
        argv = [*self.ssh, *self.options(), "--", self.host, "exec /bin/sh -s"]
        logger.debug("run a script of %d bytes on %s for %r", len(script), self.remote, cmd)
        result = self._retrying(
            attempts,
            f"run {shell_command(cmd)[:60]!r}",
            lambda: self._ssh(argv, cmd, script, False, None),
        )
        stderr, answers = _take_probes(result.stderr)
        failed = _STEP_LINE.search(stderr) if result.returncode != 0 else None
        if failed is not None:
            step = steps[int(failed.group(1))]
            raise SchedulerError(
                result.returncode, step, result.stdout, stderr[: failed.start()], remote=self.remote
            )
        probed = {
            folder: answers.get(i, "the probe gave no answer") for i, folder in enumerate(probes)
        }
        self._remember_probes(probed)
        return replace(result, stderr=stderr), probed

    def _remember_folders(self, folders: Sequence[str]) -> None:
        now = time.monotonic()
        for folder in folders:
            self._made[folder] = now

    def upload(self, localfile: str, remotefile: str) -> None:
        """Copy with ``scp``; a remote name scp might mangle goes through ssh instead.

        Legacy scp passes the remote name to the remote shell and SFTP-mode
        scp treats quotes and globs its own way, so only names of plain
        characters (and a leading ``~``) are given to scp.
        """
        if not re.match(r"^(~/)?[A-Za-z0-9._+@/-]+$", remotefile) or remotefile.startswith("-"):
            with open(localfile, encoding="utf-8") as src:
                self.write_file(remotefile, src.read(), executable=os.access(localfile, os.X_OK))
            return
        argv = [
            *self.scp,
            *self.options(),
            "--",
            os.path.abspath(localfile),
            f"{self.host}:{remotefile}",
        ]
        result = self._retrying(
            IDEMPOTENT_ATTEMPTS,
            f"copy {localfile}",
            lambda: self._ssh(argv, argv, None, False, None),
        )
        self._finish(argv, result, check=True)

    def close(self) -> None:
        """Ask the master connection (if any) to exit: ``ssh -O exit``."""
        argv = [*self.ssh, *self.options(), "-O", "exit", "--", self.host]
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        self._connected = False


_LOCAL = LocalTransport()
_transports: dict[tuple[str, str, str], SshTransport] = {}
_lock = threading.Lock()


def get_transport(remote: str | None, ssh: str = "ssh", scp: str = "scp") -> Transport:
    """The transport for ``remote`` (None: this machine), shared so connections are reused."""
    if not remote:
        return _LOCAL
    key = (remote, ssh, scp)
    with _lock:
        if key not in _transports:
            _transports[key] = SshTransport(remote, ssh=ssh, scp=scp)
        return _transports[key]


def close_all() -> None:
    """Close the master connections to every remote this process used (they persist otherwise)."""
    with _lock:
        transports = list(_transports.values())
    for transport in transports:
        transport.close()
