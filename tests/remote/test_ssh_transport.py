"""The SSH transport against the real loopback sshd: quoting, ``~``, exit codes, failures, one connection."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob import transport as transport_module
from clusterjob.errors import SchedulerError, TransientTransportError
from clusterjob.status import COMPLETED, PENDING, RUNNING
from clusterjob.transport import (
    LocalTransport,
    SshTransport,
    encode_for_login_shell,
    get_transport,
    remote_path,
)
from clusterjob.utils import run_cmd, upload_file

pytestmark = pytest.mark.ssh


def _transport(remote, via_proxy: bool = False) -> SshTransport:
    """A fresh transport (no state shared with other tests)."""
    return SshTransport(
        remote.proxy_host if via_proxy else remote.host, ssh=remote.ssh, scp=remote.scp
    )


def test_every_byte_of_an_argument_arrives_unchanged(remote, canaries) -> None:
    ssh = _transport(remote)
    arguments = [*canaries.names(), "", " ", "'", '"', "\\", "\n", "-n", "--", "a\tb", "\x01ctl"]
    answer = ssh.run(["printf", "%s\\0", *arguments])
    assert answer.stdout.split("\0")[:-1] == arguments
    assert canaries.fired() == []


@pytest.mark.parametrize("shell", ["sh", "bash", "dash", "zsh", "tcsh", "fish"])
def test_the_encoded_command_line_means_the_same_in_any_login_shell(shell: str, canaries) -> None:
    """The line ssh hands to the remote login shell contains nothing that shell could interpret."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here")
    script = transport_module.shell_command(["printf", "%s\\0", *canaries.names()])
    line = encode_for_login_shell(script)
    assert set(line) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,._+:@=/-\\'\"$()"
    )
    proc = subprocess.run(
        [shell, "-c", line], capture_output=True, text=True, check=True, cwd=canaries.places[0]
    )
    assert proc.stdout.split("\0")[:-1] == canaries.names()
    assert canaries.fired() == []


def test_folders_and_files_with_hostile_names(remote, tmp_path: Path, canaries) -> None:
    ssh = _transport(remote)
    source = tmp_path / "upload source.txt"
    source.write_text("uploaded\n")
    for name in canaries.names():
        folder = str(tmp_path / "remote" / name)
        ssh.mkdir(folder + "/sub")
        ssh.write_file(folder + "/" + name, f"data of {name}\n", executable=True)
        ssh.upload(str(source), folder + "/up " + name)
        assert (Path(folder) / name).read_text() == f"data of {name}\n"
        assert os.access(Path(folder) / name, os.X_OK)
        assert (Path(folder) / ("up " + name)).read_text() == "uploaded\n"
        assert ssh.run(["pwd"], cwd=folder + "/sub").stdout == folder + "/sub\n"
        assert run_cmd(
            ["ls"],
            remote=remote.host,
            rootdir=str(tmp_path / "remote"),
            workdir=name,
            ssh=remote.ssh,
        ) == ("\n".join(sorted(["sub", name, "up " + name])) + "\n")
    assert [p.name for p in (tmp_path / "remote").iterdir() if p.name.startswith(".cj-")] == []
    assert canaries.fired() == []


def test_plain_names_go_through_scp_and_a_leading_tilde_is_the_remote_home(
    remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A different local HOME: whatever lands in the real home was expanded on the remote.
    monkeypatch.setenv("HOME", str(tmp_path / "local-home"))
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    name = f"cj-tilde-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "plain.txt"
    source.write_text("plain\n")
    try:
        upload_file(str(source), remote.host, f"~/{name}.txt", scp=remote.scp)
        ssh = get_transport(remote.host, ssh=remote.ssh, scp=remote.scp)
        ssh.mkdir(f"~/{name}/a b")
        ssh.write_file(f"~/{name}/a b/f", "x")
        assert (home / f"{name}.txt").read_text() == "plain\n"
        assert (home / name / "a b" / "f").read_text() == "x"
        assert ssh.run(["pwd"], cwd=f"~/{name}/a b").stdout == f"{home}/{name}/a b\n"
        assert not (tmp_path / "local-home").exists()
    finally:
        shutil.rmtree(home / name, ignore_errors=True)
        (home / f"{name}.txt").unlink(missing_ok=True)


def test_remote_path_quotes_all_but_a_leading_tilde() -> None:
    assert remote_path("~") == '"$HOME"'
    assert remote_path("~/a b") == "\"$HOME\"/'a b'"
    assert remote_path("~alice/x") == "~alice/x"
    assert remote_path("~$(x)/y") == "'~$(x)/y'"
    assert remote_path("a/~/b") == "'a/~/b'"
    assert remote_path("$(x)") == "'$(x)'"


def test_a_command_exiting_255_is_its_answer_not_a_broken_link(remote) -> None:
    ssh = _transport(remote)
    answer = ssh.run("echo out; echo err >&2; exit 255", check=False)
    assert (answer.returncode, answer.stdout, answer.stderr) == (255, "out\n", "err\n")
    with pytest.raises(SchedulerError) as info:
        ssh.run(["sh", "-c", "exec sh -c 'exit 255'"])
    assert not isinstance(info.value, TransientTransportError)
    assert "failed with exit code 255" in str(info.value)


def test_missing_command_is_named_with_the_host_and_its_path(remote) -> None:
    ssh = _transport(remote)
    with pytest.raises(SchedulerError) as info:
        ssh.run(["cj-no-such-command", "x"], cwd="/")
    message = str(info.value)
    assert "command 'cj-no-such-command x' on cjtest failed with exit code 127" in message
    assert "cj-no-such-command: not found" in message
    assert "a command was not found on " + os.uname().nodename in message
    assert "PATH there is '" in message and "/usr/bin" in message
    with pytest.raises(
        SchedulerError, match=r"'cj-no-such-command' not found on PATH on this machine \(.*PATH="
    ):
        LocalTransport().run(["cj-no-such-command", "x"])


def test_unreachable_remote_is_transient_and_retried_with_backoff(remote, link, caplog) -> None:
    ssh = _transport(remote, via_proxy=True)
    ssh.run(["true"])
    link.cut()
    with pytest.raises(TransientTransportError, match="ssh to cjproxy failed: "):
        ssh.run(["true"], check=False)
    caplog.set_level(logging.WARNING, logger="clusterjob")
    threading.Timer(1.5, link.restore).start()
    assert ssh.run(["echo", "back"], attempts=4).stdout == "back\n"
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert retries and "cannot reach cjproxy to run 'echo back'" in retries[0]


def test_login_failure_says_why_and_is_not_retried(remote, tmp_path: Path) -> None:
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "config"
    # Another user, so that no master connection of root's is reused.
    config.write_text(
        f"Host cjstranger\n HostName 127.0.0.1\n Port {remote.port}\n User nobody\n IdentityFile {key}\n"
        f" IdentitiesOnly yes\n StrictHostKeyChecking no\n UserKnownHostsFile {tmp_path}/kh\n LogLevel ERROR\n"
    )
    ssh = SshTransport("cjstranger", ssh=f"ssh -F {config}")
    with pytest.raises(TransientTransportError, match=r"Permission denied.*BatchMode=yes") as info:
        ssh.run(["true"], attempts=5)
    assert info.value.permanent  # type: ignore[attr-defined]


def test_control_folder_must_be_private_and_short(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="clusterjob")
    shared = Path(f"/tmp/cjs-{uuid.uuid4().hex[:6]}")  # short enough for a socket path
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant a socket here
    monkeypatch.setenv("CLUSTERJOB_SSH_CONTROL_DIR", str(shared))
    try:
        chosen = transport_module._control_dir()
    finally:
        shared.rmdir()
    assert chosen != str(shared) and (os.stat(chosen).st_mode & 0o077) == 0
    assert "is not a private folder of this user" in caplog.text
    monkeypatch.setenv("CLUSTERJOB_SSH_CONTROL_DIR", "/tmp/" + "x" * 80)
    assert transport_module._control_dir() == f"/tmp/cj-ssh-{os.getuid()}"
    assert "too long for a socket path" in caplog.text
    shutil.rmtree(chosen)


def test_parallel_first_commands_open_one_connection(remote, link) -> None:
    remote.close_masters()
    ssh = _transport(remote, via_proxy=True)
    before = link.accepted
    errors: list[BaseException] = []

    def one() -> None:
        try:
            assert ssh.run(["echo", "ok"]).stdout == "ok\n"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert link.accepted - before == 1


def test_status_and_wait_while_the_link_is_cut(
    remote, link, local_over_ssh, tmp_path: Path, caplog
) -> None:
    """An unreachable remote is never a status; the cached result stays; wait() resumes."""
    caplog.set_level(logging.WARNING, logger="clusterjob")
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript(
        "sleep 4", jobname="cut", backend="local", remote=remote.proxy_host, ssh=remote.ssh, scp=remote.scp,
        rootdir=str(tmp_path / "remote"), max_sleep_interval=1,
    )  # fmt: skip
    result = job.submit(cache_id="cut")
    assert result.status in (PENDING, RUNNING)
    cached = Path(result.cache_file).read_bytes()
    link.cut()
    before = result._status
    with pytest.raises(TransientTransportError):
        result.status  # noqa: B018 - the property polls
    assert result._status == before
    assert Path(result.cache_file).read_bytes() == cached
    threading.Timer(3.0, link.restore).start()
    result.wait(120)
    assert result.status == COMPLETED
    assert "cannot reach cjproxy" in caplog.text
    assert (
        JobScript("sleep 4", jobname="cut", backend="local").submit(cache_id="cut").job_id
        == result.job_id
    )
