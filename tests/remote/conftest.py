"""Fixtures of the remote (SSH), hostile-input and exactly-once tests.

* ``remote``: how to reach the loopback sshd of ``tests/schedulers/sshd.sh``,
  directly (host alias ``cjtest``) and through a :class:`LinkProxy` (alias
  ``cjproxy``), a TCP relay the tests can cut and restore, and that counts the
  TCP connections it accepted (= connections sshd would have accepted).
* All ssh control sockets of this session live in a private folder; the
  master connections are closed (``ssh -O exit``, by socket) at the end.
* ``slurm_jobs``: the jobs SLURM received whose name starts with a prefix
  (controller and accounting, so nothing is missed or counted twice).
* ``report``: lines for the summary printed after the test session (the
  fault-injection table and the measured figures), visible in the normal
  ``bash tests/run.sh`` output without ``-s``.

Helpers that hold state of the session are handed out by fixtures; plain helpers
(``wait_for``, fake commands) are in ``tests/helpers``, which every test module imports.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clusterjob.backends.local import LocalBackend, runner_on_a_remote

REPORT_KEY = pytest.StashKey[dict[str, list[str]]]()


# -- the cuttable link -----------------------------------------------------------


class LinkProxy:
    """A TCP relay on 127.0.0.1 in front of sshd that can be cut and restored.

    ``cut()`` resets every relayed connection (RST, like a dropped VPN) and
    closes the listening socket, so new connections are refused;
    ``restore()`` listens again on the same port. ``accepted`` counts the
    TCP connections relayed so far.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.restore()

    @property
    def up(self) -> bool:
        return self._listener is not None

    def restore(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            listener.settimeout(0.2)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._sockets = self._sockets, set()
            self.cuts += 1
        if listener is not None:
            listener.close()
        for sock in live:
            self._reset(sock)

    def stop(self) -> None:
        self.cut()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv()
        except OSError:
            pass
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    self._reset(client)
                    self._reset(upstream)
                    return
                self.accepted += 1
                self._sockets.update((client, upstream))
            done = threading.Semaphore(0)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, done), daemon=True).start()
            threading.Thread(
                target=self._close_when_done, args=(client, upstream, done), daemon=True
            ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, done: threading.Semaphore) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            done.release()

    def _close_when_done(
        self, client: socket.socket, upstream: socket.socket, done: threading.Semaphore
    ) -> None:
        done.acquire()
        done.acquire()
        with self._lock:
            self._sockets.discard(client)
            self._sockets.discard(upstream)
        client.close()
        upstream.close()


# -- ssh set-up ------------------------------------------------------------------


@dataclass
class Remote:
    """How the tests reach the loopback sshd."""

    config: str  # ssh_config with Host cjtest (direct) and cjproxy (through the proxy)
    identity: str
    port: int
    proxy: LinkProxy
    control_dir: str
    host: str = "cjtest"
    proxy_host: str = "cjproxy"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ssh(self) -> str:
        return f"ssh -F {self.config}"

    @property
    def scp(self) -> str:
        return f"scp -F {self.config}"

    def close_masters(self) -> None:
        """Close every master connection of this session (by control socket)."""
        for sock in Path(self.control_dir).iterdir():
            if sock.is_socket():
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "cj-unused"],
                    stdin=subprocess.DEVNULL, capture_output=True, check=False,
                )  # fmt: skip


def _write_ssh_config(
    path: Path, sshd_env: dict[str, str], proxy_port: int, known_hosts: Path
) -> None:
    common = f"""    User {sshd_env.get("SSH_USER", "root")}
    IdentityFile {sshd_env["SSH_IDENTITY"]}
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile {known_hosts}
    BatchMode yes
    LogLevel ERROR
"""
    path.write_text(
        f"# written by tests/remote/conftest.py\n"
        f"Host cjtest\n    HostName 127.0.0.1\n    Port {sshd_env['SSH_PORT']}\n{common}"
        f"Host cjproxy\n    HostName 127.0.0.1\n    Port {proxy_port}\n    HostKeyAlias cjtest\n{common}"
    )


@pytest.fixture(scope="session")
def remote(sshd_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    folder = tmp_path_factory.mktemp("ssh")
    proxy = LinkProxy(int(sshd_env["SSH_PORT"]))
    config = folder / "ssh_config"
    _write_ssh_config(config, sshd_env, proxy.port, folder / "known_hosts")
    # Short and private: socket paths are limited to ~100 bytes.
    control_dir = Path(f"/tmp/cjt-{os.getpid()}")
    control_dir.mkdir(mode=0o700, exist_ok=True)
    previous = os.environ.get("CLUSTERJOB_SSH_CONTROL_DIR")
    os.environ["CLUSTERJOB_SSH_CONTROL_DIR"] = str(control_dir)
    info = Remote(
        str(config), sshd_env["SSH_IDENTITY"], int(sshd_env["SSH_PORT"]), proxy, str(control_dir)
    )
    try:
        yield info
    finally:
        info.close_masters()
        proxy.stop()
        if previous is None:
            os.environ.pop("CLUSTERJOB_SSH_CONTROL_DIR", None)
        else:
            os.environ["CLUSTERJOB_SSH_CONTROL_DIR"] = previous
        shutil.rmtree(control_dir, ignore_errors=True)


@pytest.fixture
def link(remote: Remote) -> Iterator[LinkProxy]:
    """The proxy, guaranteed up again after the test whatever happened."""
    remote.proxy.restore()
    yield remote.proxy
    remote.proxy.restore()


# -- backends for the tests ------------------------------------------------------


def local_runner_on_the_remote(spool: str) -> list[str]:
    """How the (loopback) remote runs the ``local`` backend's runner: this test's Python, spool ``spool``.

    It stands in for the ``python3`` the real backend runs on a remote, which
    on a fresh test machine is not the virtualenv clusterjob is installed in;
    and the spool variable of the test does not cross ssh. Both are explicit.
    The rest is the real backend's remote command: the runner file of the
    installed clusterjob-core, found and run without importing the package.
    """
    return ["env", f"CLUSTERJOB_LOCAL_SPOOL={spool}", *runner_on_a_remote(sys.executable)]


class LocalBackendHere(LocalBackend):
    """The ``local`` backend, whose commands for the remote run :func:`local_runner_on_the_remote`.

    A command built for this machine (``remote`` None) is left exactly as the
    real backend builds it. Sent over ssh by mistake, it runs without the
    test's spool and finds none of its jobs, just as this machine's
    interpreter would not run on a real remote: the mistake shows.
    """

    @staticmethod
    def _runner(remote: str | None) -> list[str]:
        if remote is None:
            return LocalBackend._runner(remote)
        return local_runner_on_the_remote(os.environ["CLUSTERJOB_LOCAL_SPOOL"])


@pytest.fixture(scope="session")
def remote_runner() -> Callable[[str], list[str]]:
    """:func:`local_runner_on_the_remote`, for workflows run in a subprocess."""
    return local_runner_on_the_remote


@pytest.fixture
def local_over_ssh() -> LocalBackendHere:
    """Register :class:`LocalBackendHere` as ``local`` for this test."""
    from clusterjob import JobScript

    backend = LocalBackendHere()
    JobScript.register_backend(backend, name="local")
    return backend


# -- hostile input -----------------------------------------------------------------


@dataclass
class Canaries:
    """Names that would create a canary file if a shell ever interpreted them.

    Every name carries shell syntax (``$()``, backticks, ``;``, quotes,
    newlines...) whose only effect, if executed anywhere (locally, in the
    remote home, in a job folder), is to create a file ``<token>-N``.
    """

    token: str
    places: list[Path]

    def names(self, newlines: bool = True) -> list[str]:
        t = self.token
        names = [
            f"sp ace $(touch {t}-1)",
            f"back `touch {t}-2` tick",
            f"semi;touch {t}-3;#",
            f"sq'uote'$(touch {t}-4)",
            f"amp & touch {t}-5 | cat",
            f"--dash=$(touch {t}-9)",
            "dollar $HOME ${PATH} %s %% !bang \\back ~tilde glob*?[x] {curly} ünï",
            f"dq\"uote\"$(touch {t}-6)'\"'; touch {t}-7; echo '",
        ]
        if newlines:
            names.append(f"new\nline\ntouch {t}-8\n")
        return names

    def fired(self) -> list[str]:
        hits: list[str] = []
        for place in self.places:
            if place.is_dir():
                hits.extend(str(p) for p in place.rglob(f"{self.token}-*"))
        return hits


@pytest.fixture
def canaries(tmp_path: Path) -> Iterator[Canaries]:
    import pwd

    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    found = Canaries(f"cjcanary{uuid.uuid4().hex[:8]}", [tmp_path])
    yield found
    # The remote home is searched only at its top (a fired canary lands in the login folder).
    stray = sorted(str(p) for p in home.glob(f"{found.token}-*")) + sorted(
        str(p) for p in Path.cwd().glob(f"{found.token}-*")
    )
    assert not stray, f"hostile input was executed: {stray}"


# -- SLURM bookkeeping -------------------------------------------------------------

SESSION_START = time.time()


def _slurm_jobs(prefix: str) -> dict[str, list[str]]:
    """Job name -> sorted job IDs of every job SLURM knows (queue or accounting) named ``prefix*``.

    sacct prints a ``"`` in a job name as a backquote while squeue prints it as is;
    names are given in sacct's spelling so that one job is one entry.
    """
    found: dict[str, set[str]] = {}
    queue = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%j"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(SESSION_START - 600))
    accounting = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", start, "-E", "now", "--format=JobID,JobName"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for line in (queue + accounting).splitlines():
        job_id, _, name = line.partition("|")
        name = name.replace('"', "`")
        if name.startswith(prefix) and job_id.strip().isdigit():
            found.setdefault(name, set()).add(job_id.strip())
    return {name: sorted(ids, key=int) for name, ids in sorted(found.items())}


@pytest.fixture(scope="session")
def slurm_jobs(slurm_env: dict[str, str]) -> Callable[[str], dict[str, list[str]]]:
    return _slurm_jobs


@pytest.fixture
def prefix(request: pytest.FixtureRequest, slurm_env: dict[str, str]) -> Iterator[str]:
    """A job-name prefix unique to this test; its jobs still queued at the end are cancelled (by ID)."""
    value = f"cjr{uuid.uuid4().hex[:6]}"
    yield value
    leftover = [i for ids in _slurm_jobs(value).values() for i in ids]
    if leftover:
        subprocess.run(["scancel", *leftover], capture_output=True, check=False)


# -- the session summary -------------------------------------------------------------


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> dict[str, list[str]]:
    """Section title -> lines, printed after the session (see :func:`pytest_terminal_summary`)."""
    return request.config.stash.setdefault(REPORT_KEY, {})


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    sections = config.stash.get(REPORT_KEY, {})
    for title in sorted(sections):
        terminalreporter.section(title)
        for line in sections[title]:
            terminalreporter.write_line(line)
