"""Run commands and write files, on this machine or on a remote over SSH.

Everything clusterjob does to a machine goes through a :class:`Transport`,
so backends never care where the scheduler lives. Remote commands use the
system ``ssh`` with ``BatchMode=yes`` (never a password prompt) and one
multiplexed master connection per host (``ControlMaster=auto``,
``ControlPersist``), so polling many jobs does not open many TCP
connections. Every argument that crosses the remote shell is quoted with
:func:`shlex.quote`; ``~`` at the start of a remote path expands on the
remote.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from clusterjob.errors import SchedulerError, TransientTransportError

__all__ = ["CommandResult", "Transport", "LocalTransport", "SshTransport", "get_transport", "remote_path"]

logger = logging.getLogger("clusterjob.transport")

#: ssh exits with 255 when it, not the remote command, failed.
SSH_FAILURE_EXIT = 255

#: Seconds an idle master connection stays open after the last command.
CONTROL_PERSIST = os.environ.get("CLUSTERJOB_SSH_CONTROL_PERSIST", "600")


@dataclass
class CommandResult:
    """What a command printed and how it ended."""

    cmd: Sequence[str] | str
    returncode: int
    stdout: str
    stderr: str


def remote_path(path: str) -> str:
    """Quote ``path`` for a POSIX shell, keeping a leading ``~`` expandable there."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def shell_command(cmd: Sequence[str] | str) -> str:
    """A shell string for ``cmd``: list items are quoted, a string is used as is."""
    if isinstance(cmd, str):
        return cmd
    return " ".join(shlex.quote(str(arg)) for arg in cmd)


class Transport:
    """Runs commands and writes files somewhere; see :func:`get_transport`."""

    remote: str | None = None

    def run(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        check: bool = True,
        input: str | None = None,
        merge_stderr: bool = False,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run ``cmd`` in ``cwd`` ('' = home for remote, current dir for local).

        A list runs as program arguments, a string through ``/bin/sh -c``.
        Raises :class:`SchedulerError` on a non-zero exit if ``check``, and
        :class:`TransientTransportError` whenever ssh itself could not reach
        the remote (whatever ``check`` says: that is never the command's answer).
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

    def _finish(self, cmd: Sequence[str] | str, proc: subprocess.CompletedProcess[str], check: bool) -> CommandResult:
        result = CommandResult(cmd, proc.returncode, proc.stdout or "", proc.stderr or "")
        if proc.returncode != 0:
            logger.debug("%r exited with %d: %s", cmd, proc.returncode, (result.stderr or result.stdout).strip())
            if check:
                raise SchedulerError(proc.returncode, cmd, result.stdout, result.stderr, remote=self.remote)
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
    ) -> CommandResult:
        directory = os.path.expanduser(cwd) if cwd else None
        logger.debug("run %r in %s", cmd, directory or os.getcwd())
        try:
            proc = subprocess.run(
                cmd if isinstance(cmd, str) else [str(a) for a in cmd],
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
            missing = exc.filename if exc.filename else (cmd if isinstance(cmd, str) else cmd[0])
            if directory and not os.path.isdir(directory):
                raise SchedulerError(127, cmd, "", f"working directory {directory!r} does not exist") from None
            raise SchedulerError(
                127, cmd, "", f"{missing!r} not found on PATH; is the scheduler's client installed here?"
            ) from None
        return self._finish(cmd, proc, check)

    def write_file(self, path: str, data: str, executable: bool = False) -> None:
        path = os.path.expanduser(path)
        folder = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".cj-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.chmod(tmp, 0o755 if executable else 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def mkdir(self, path: str) -> None:
        os.makedirs(os.path.expanduser(path), mode=0o750, exist_ok=True)

    def upload(self, localfile: str, remotefile: str) -> None:
        with open(localfile, encoding="utf-8") as src:
            self.write_file(remotefile, src.read(), executable=os.access(localfile, os.X_OK))


def _control_dir() -> str:
    """A short, private folder for ssh control sockets (socket paths are limited to ~100 bytes)."""
    base = os.environ.get("CLUSTERJOB_SSH_CONTROL_DIR") or os.path.join(tempfile.gettempdir(), f"cj-ssh-{os.getuid()}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    return base


class SshTransport(Transport):
    """A remote host reached with the system ``ssh``/``scp``.

    ``ssh``/``scp`` may carry options (``"ssh -F ~/.ssh/cluster_config"``);
    they are split with :func:`shlex.split`.
    """

    def __init__(self, remote: str, ssh: str = "ssh", scp: str = "scp") -> None:
        self.remote = remote
        self.ssh = shlex.split(ssh) or ["ssh"]
        self.scp = shlex.split(scp) or ["scp"]

    def options(self) -> list[str]:
        return [
            "-o", "BatchMode=yes",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPersist={CONTROL_PERSIST}",
            "-o", "ControlPath=" + os.path.join(_control_dir(), "%C"),
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=3",
            "-o", "ConnectTimeout=20",
        ]  # fmt: skip

    def remote_script(self, cmd: Sequence[str] | str, cwd: str) -> str:
        script = shell_command(cmd)
        if cwd:
            script = f"cd {remote_path(cwd)} && {script}"
        # The login shell may be csh or fish: hand the script to sh explicitly.
        return "exec /bin/sh -c " + shlex.quote(script)

    def run(
        self,
        cmd: Sequence[str] | str,
        cwd: str = "",
        check: bool = True,
        input: str | None = None,
        merge_stderr: bool = False,
        timeout: float | None = None,
    ) -> CommandResult:
        argv = [*self.ssh, *self.options(), self.remote, self.remote_script(cmd, cwd)]
        logger.debug("run %r on %s in %s", cmd, self.remote, cwd or "~")
        try:
            proc = subprocess.run(
                argv,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                text=True,
                timeout=timeout,
            )
        except FileNotFoundError:
            raise SchedulerError(127, argv, "", f"ssh executable {self.ssh[0]!r} not found on PATH") from None
        except subprocess.TimeoutExpired as exc:
            raise TransientTransportError(SSH_FAILURE_EXIT, cmd, "", f"ssh timed out after {exc.timeout} s", remote=self.remote) from None
        if proc.returncode == SSH_FAILURE_EXIT:
            raise TransientTransportError(proc.returncode, cmd, proc.stdout or "", proc.stderr or "", remote=self.remote)
        return self._finish(cmd, proc, check)

    def write_file(self, path: str, data: str, executable: bool = False) -> None:
        # Write next to the target, then rename: a crash never leaves a half script in place.
        target = remote_path(path)
        mode = "755" if executable else "644"
        script = (
            f'tmp={target}.cj-$$.tmp && cat > "$tmp" && chmod {mode} "$tmp" && mv -f "$tmp" {target}'
        )
        self.run(script, input=data)

    def mkdir(self, path: str) -> None:
        self.run(f"mkdir -p {remote_path(path)}")

    def upload(self, localfile: str, remotefile: str) -> None:
        argv = [*self.scp, *self.options(), localfile, f"{self.remote}:{remotefile}"]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        except FileNotFoundError:
            raise SchedulerError(127, argv, "", f"scp executable {self.scp[0]!r} not found on PATH") from None
        if proc.returncode == SSH_FAILURE_EXIT:
            raise TransientTransportError(proc.returncode, argv, proc.stdout, proc.stderr, remote=self.remote)
        self._finish(argv, proc, check=True)


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
