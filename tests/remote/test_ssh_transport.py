"""The SSH transport against the real loopback sshd: quoting, ``~``, exit codes, failures, one connection."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
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
from helpers.commands import fake_command

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


# -- files and the command in one round trip -------------------------------------------


def _counting(remote, tmp_path: Path) -> tuple[SshTransport, Path]:
    """A fresh transport whose ssh commands are logged, one line each, to the returned file."""
    calls = tmp_path / "ssh-calls"
    wrapper = fake_command(tmp_path, "counting-ssh", f'echo "$$" >> {calls}\nexec ssh "$@"\n')
    calls.touch()
    return SshTransport(remote.host, ssh=f"{wrapper} -F {remote.config}", scp=remote.scp), calls


def _ssh_commands(calls: Path) -> int:
    return len(calls.read_text().splitlines())


def test_files_folders_probe_and_command_travel_in_one_ssh_command(
    remote, tmp_path: Path, canaries
) -> None:
    """Every byte of every file arrives: no final line break, NUL, an empty file, a line that
    looks like a here-document delimiter, more than the 128 KiB of one argument, hostile names."""
    ssh, calls = _counting(remote, tmp_path)
    folder = str(tmp_path / "remote" / canaries.names(newlines=False)[0])
    contents = [
        "#!/bin/sh\necho job\n",
        "no line break at the end $(touch x) 'q' \"d\" %s %% \\ \u00fcn\u00ef",
        "a\0b\n",
        "",
        "CJ_EOF_0123456789abcdef\nEOF\n'EOF'\n",
        "x" * 200_000 + "\n",
        "y" * 200_000,
    ]
    names = canaries.names()[: len(contents)]
    files = [
        (f"{folder}/{name}", data, i == 0) for i, (name, data) in enumerate(zip(names, contents))
    ]
    probe = [f"{folder}/markers", str(tmp_path / "remote" / "file" / "markers")]
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "file").write_text("")
    answer, unwritable = ssh.run_with_files(
        ["sh", "-c", 'pwd; cat; echo "to stderr" >&2'], cwd=folder, files=files, folders=[folder],
        probe=probe,
    )  # fmt: skip
    assert _ssh_commands(calls) == 1
    assert (answer.stdout, answer.stderr) == (folder + "\n", "to stderr\n")  # cat read /dev/null
    for (path, data, executable), name in zip(files, names):
        assert Path(path).read_bytes() == data.encode("utf-8"), name
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o755 if executable else 0o644)
    assert (Path(folder) / "markers").is_dir()
    assert list(unwritable) == [probe[1]] and "Not a directory" in unwritable[probe[1]]
    assert [p.name for p in Path(folder).rglob("*") if p.name.startswith(".cj-")] == []
    assert ssh.probe_folders(probe) == unwritable  # remembered: no second probe
    assert _ssh_commands(calls) == 1
    assert canaries.fired() == []


def test_a_file_that_cannot_be_written_is_named_and_the_command_does_not_run(
    remote, tmp_path: Path
) -> None:
    ssh, calls = _counting(remote, tmp_path)
    (tmp_path / "file").write_text("")
    ran = tmp_path / "ran"
    with pytest.raises(SchedulerError) as info:
        ssh.run_with_files(
            ["touch", str(ran)], files=[(str(tmp_path / "ok"), "ok\n", False),
                                        (str(tmp_path / "file" / "job.sh"), "x\n", True)],
        )  # fmt: skip
    assert not isinstance(info.value, TransientTransportError)
    message = str(info.value)
    assert message.startswith(f"command 'write {tmp_path}/file/job.sh' on cjtest failed with exit")
    assert "cannot create" in message and "#clusterjob" not in message
    assert not ran.exists() and (tmp_path / "ok").read_text() == "ok\n"
    assert [p.name for p in tmp_path.iterdir() if ".cj-" in p.name] == []
    with pytest.raises(
        SchedulerError, match=rf"command 'mkdir -p -- {tmp_path}/file/sub' on cjtest"
    ):
        ssh.write_files([], folders=[str(tmp_path / "file" / "sub")])
    assert _ssh_commands(calls) == 2


def test_the_command_of_a_round_trip_keeps_its_exit_codes(remote, tmp_path: Path) -> None:
    """255 from the command is its answer, not a broken link; 127 names the host's PATH."""
    ssh = _transport(remote)
    files = [(str(tmp_path / "f"), "f\n", False)]
    with pytest.raises(SchedulerError) as info:
        ssh.run_with_files("echo out; exit 255", files=files)
    assert not isinstance(info.value, TransientTransportError) and info.value.returncode == 255
    assert info.value.output == "out\n"
    with pytest.raises(SchedulerError, match="PATH there is '") as missing:
        ssh.run_with_files(["cj-no-such-command"], files=files)
    assert missing.value.returncode == 127


def test_writing_many_files_takes_one_ssh_command_per_chunk(
    remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh, calls = _counting(remote, tmp_path)
    files = [
        (str(tmp_path / f"w{i // 100}" / f"job{i}.sh"), f"echo {i}\n" * 20, True)
        for i in range(1000)
    ]
    folders = [str(tmp_path / f"w{i}") for i in range(10)]
    ssh.write_files(files, folders)
    assert _ssh_commands(calls) == 1
    assert all(Path(path).read_text() == data for path, data, _ in files)
    monkeypatch.setattr(transport_module, "SCRIPT_CHUNK", 64 * 1024)
    ssh.write_files([(p, d.upper(), x) for p, d, x in files], folders)
    script_bytes = sum(len(d) + 2 * len(p) + 120 for p, d, _ in files)
    assert 1 < _ssh_commands(calls) - 1 <= script_bytes // (64 * 1024) + 2
    assert all(Path(path).read_text() == data.upper() for path, data, _ in files)
