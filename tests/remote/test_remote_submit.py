"""Submitting over SSH to the real SLURM (the loopback sshd plays the login node) and to the local backend.

Also the documented prologue/epilogue rsync examples, run as written.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterjob import JobScript, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, RUNNING
from helpers.commands import fake_command, path_first, write_executable
from helpers.documented import DOCUMENTED_INI
from helpers.waiting import wait_for

pytestmark = pytest.mark.ssh

HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)


@pytest.fixture
def remote_home_folder() -> Iterator[str]:
    """A fresh ``~/<name>`` on the remote (= this machine's real home), removed afterwards."""
    name = f"cj-remote-{uuid.uuid4().hex[:8]}"
    yield name
    shutil.rmtree(HOME / name, ignore_errors=True)


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A different local ``$HOME``: anything that lands in the real home was expanded on the remote."""
    home = tmp_path / "local-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.slurm
def test_slurm_over_ssh_submit_status_cancel(
    remote, prefix: str, slurm_jobs, local_home: Path, remote_home_folder: str
) -> None:
    JobScript.backend = "slurm"
    JobScript.remote = remote.host
    JobScript.ssh = remote.ssh
    JobScript.scp = remote.scp
    JobScript.rootdir = f"~/{remote_home_folder}"
    JobScript.max_sleep_interval = 2
    ok = JobScript(
        'echo "$CLUSTERJOB_ID $CLUSTERJOB_NAME $CLUSTERJOB_WORKDIR" > ok.out; ./aux.sh >> ok.out',
        jobname=f"{prefix}-ok", workdir="ok", time="1", aux_scripts={"aux.sh": "echo aux ran"},
    ).submit()  # fmt: skip
    failing = JobScript("exit 3", jobname=f"{prefix}-fail", workdir="fail", time="1").submit()
    cancelled = JobScript(
        "sleep 120", jobname=f"{prefix}-cancel", workdir="cancel", time="5"
    ).submit()
    cancelled.cancel()
    assert wait_all([ok, failing, cancelled], timeout=180) == [COMPLETED, FAILED, CANCELLED]
    folder = HOME / remote_home_folder / "ok"
    assert (folder / "ok.out").read_text() == f"{ok.job_id} {prefix}-ok {folder}\naux ran\n"
    assert stat.S_IMODE((folder / f"{prefix}-ok.slr").stat().st_mode) == 0o755
    assert not (local_home / remote_home_folder).exists()
    assert slurm_jobs(prefix) == {
        f"{prefix}-cancel": [cancelled.job_id],
        f"{prefix}-fail": [failing.job_id],
        f"{prefix}-ok": [ok.job_id],
    }


def test_local_backend_over_ssh(remote, local_over_ssh, tmp_path: Path) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript(
        "echo $CLUSTERJOB_ID > id.txt; sleep 1", jobname="over-ssh", backend="local", remote=remote.host,
        ssh=remote.ssh, scp=remote.scp, rootdir=str(tmp_path / "remote"), workdir="w", max_sleep_interval=1,
    )  # fmt: skip
    result = job.submit(cache_id="one")
    assert result.get(60) == COMPLETED
    assert (tmp_path / "remote" / "w" / "id.txt").read_text().strip() == result.job_id
    again = job.submit(cache_id="one")
    assert again.job_id == result.job_id and again.resumed
    long = JobScript("sleep 60", jobname="cancel-me", backend="local", remote=remote.host, ssh=remote.ssh,
                     rootdir=str(tmp_path / "remote"), max_sleep_interval=1).submit(cache_id="long")  # fmt: skip
    long.cancel()
    assert long.get(60) == CANCELLED


# -- a remote login shell that prints a banner before every command --------------------

#: What the remote's login shell prints first: a coloured banner with a number in it, Last login,
#: a blank line (``\r\n`` line ends), then (``.bashrc``) a window title without a line break of
#: its own, so that it is glued to the first line of the command's output.
REMOTE_BANNER = (
    "\\033[1;33mWelcome to cluster X (2 nodes)\\033[0m\\r\\n"
    "Last login: Mon Jun  3 09:12:44 2024 from 10.0.0.7\\r\\n\\r\\n"
    "\\033]0;login1: ~\\007"
)


@pytest.fixture
def banner_ssh(remote, tmp_path: Path) -> str:
    """An ``ssh`` command whose remote login shell prints :data:`REMOTE_BANNER` before every command.

    The last argument of a command ssh (``-- host COMMAND``) is the command line for the remote's
    login shell; a ``printf`` is put in front of it there, so the banner comes from the remote side,
    through sshd, as a site's profile would print it. Control commands (``-O exit``) pass unchanged.
    """
    wrapper = write_executable(
        tmp_path / "banner-ssh",
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"banner = {REMOTE_BANNER!r}\n"
        "args = sys.argv[1:]\n"
        "if len(args) >= 3 and args[-3] == '--':\n"
        '    args[-1] = "printf \'" + banner + "\'; " + args[-1]\n'
        "os.execvp('ssh', ['ssh', *args])\n",
    )
    ssh = f"{wrapper} -F {remote.config}"
    probe = subprocess.run(
        [*ssh.split(), "--", remote.host, "echo probe"], capture_output=True, text=True, check=True
    )
    assert probe.stdout.startswith("\x1b[1;33mWelcome") and probe.stdout.endswith(
        "\n\n\x1b]0;login1: ~\x07probe\n"
    )
    return ssh


@pytest.mark.slurm
def test_slurm_over_ssh_through_a_login_shell_that_prints_a_banner(
    remote, banner_ssh: str, prefix: str, slurm_jobs, tmp_path: Path
) -> None:
    """The job IDs of sbatch and the states of squeue and sacct are read past the banner (the window
    title glued to the first line of squeue/sacct output hid that job's record: with one job per
    query, its status was never found). One job at a time, so that each query is about one job."""
    JobScript.backend = "slurm"
    JobScript.remote = remote.host
    JobScript.ssh = banner_ssh
    JobScript.scp = remote.scp
    JobScript.rootdir = str(tmp_path / "remote")
    JobScript.max_sleep_interval = 2
    ok = JobScript("true", jobname=f"{prefix}-banner-ok", workdir="ok", time="1").submit()
    assert ok.job_id.isdigit()
    assert ok.get(120) == COMPLETED
    failing = JobScript(
        "exit 3", jobname=f"{prefix}-banner-fail", workdir="fail", time="1"
    ).submit()
    assert failing.get(120) == FAILED
    assert slurm_jobs(prefix) == {
        f"{prefix}-banner-ok": [ok.job_id],
        f"{prefix}-banner-fail": [failing.job_id],
    }


def test_local_backend_over_ssh_through_a_login_shell_that_prints_a_banner(
    remote, banner_ssh: str, local_over_ssh, tmp_path: Path
) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("sleep 1", jobname="banner", backend="local", remote=remote.host, ssh=banner_ssh,
                    scp=remote.scp, rootdir=str(tmp_path / "remote"), max_sleep_interval=1)  # fmt: skip
    result = job.submit(cache_id="banner")
    assert result.job_id.isdigit()
    assert result.get(60) == COMPLETED


# -- the documented rsync prologue and epilogue ------------------------------------------


def _shims(tmp_path: Path, config: str) -> Path:
    """``ssh``/``scp`` commands that read ``config``: what a user's ``~/.ssh/config`` would do."""
    folder = tmp_path / "shims"
    for tool in ("ssh", "scp"):
        real = shutil.which(tool)
        assert real is not None
        fake_command(folder, tool, f'exec {real} -F {config} "$@"\n')
    return folder


def test_documented_ini_with_rsync_prologue_and_epilogue_as_written(
    remote,
    local_over_ssh,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_home: Path,
    remote_home_folder: str,
) -> None:
    """The docs' example verbatim, for a user whose plain ``ssh`` reaches the host (``~/.ssh/config``).

    The test may not touch ``~/.ssh``: ``ssh``/``scp`` shims first on ``PATH``
    read the test's ssh_config instead (rsync runs ``ssh`` from ``PATH``).
    """
    monkeypatch.setenv("PATH", path_first(_shims(tmp_path, remote.config)))
    monkeypatch.chdir(tmp_path)
    ini = tmp_path / "cluster.ini"
    # The documented INI example, with only the host and the remote root changed.
    ini.write_text(
        DOCUMENTED_INI.replace("login.cluster.edu", remote.host).replace(
            "rootdir = ~/jobs/", f"rootdir = ~/{remote_home_folder}/"
        )
    )
    JobScript.read_defaults(str(ini))
    JobScript.backend = "local"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input.txt").write_text("hello from the laptop\n")
    job = JobScript("tr a-z A-Z < input.txt > output.txt; echo {text} >> output.txt", jobname="docs",
                    workdir="data", max_sleep_interval=1)  # fmt: skip
    result = job.submit()
    assert result.get(60) == COMPLETED
    remote_folder = HOME / remote_home_folder / "data"
    assert (remote_folder / "input.txt").read_text() == "hello from the laptop\n"
    assert (tmp_path / "data" / "output.txt").read_text() == "HELLO FROM THE LAPTOP\nHello World\n"
    assert not (local_home / remote_home_folder).exists()


@pytest.mark.slurm
def test_rsync_prologue_and_epilogue_with_ssh_options_on_slurm(
    remote,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_home: Path,
    remote_home_folder: str,
) -> None:
    """``ssh = "ssh -F <config>"``: the prologue says ``{ssh} {remote}``; rsync reads ``RSYNC_RSH``.

    That is what a user with the cluster in a separate ssh config writes
    (see docs): the rsync lines stay exactly as documented.
    """
    monkeypatch.setenv("RSYNC_RSH", remote.ssh)
    monkeypatch.chdir(tmp_path)
    JobScript.backend = "slurm"
    JobScript.remote = remote.host
    JobScript.ssh = remote.ssh
    JobScript.scp = remote.scp
    JobScript.rootdir = f"~/{remote_home_folder}/"
    JobScript.prologue = (
        "{ssh} {remote} 'mkdir -p {rootdir}/{workdir}'\n"
        "rsync -av {workdir}/ {remote}:{rootdir}/{workdir}\n"
    )
    JobScript.epilogue = "rsync -av {remote}:{rootdir}/{workdir}/ {workdir}\n"
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "input.txt").write_text("to the cluster\n")
    result = JobScript("tr a-z A-Z < input.txt > output.txt", jobname=f"{prefix}-rsync", workdir="inputs",
                       time="1", max_sleep_interval=2).submit()  # fmt: skip
    assert result.get(180) == COMPLETED
    assert (HOME / remote_home_folder / "inputs" / "input.txt").exists()
    assert (tmp_path / "inputs" / "output.txt").read_text() == "TO THE CLUSTER\n"
    assert not (local_home / remote_home_folder).exists()


def test_each_submit_over_ssh_is_one_ssh_command(
    remote, local_over_ssh, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The job folder, the script and its auxiliary script, the marker folder's probe and the
    submission travel in one ssh command per ``submit()`` (there were about two); an unwritable
    marker folder costs one warning and no extra command, and its jobs carry no markers."""
    calls = tmp_path / "ssh-calls"
    calls.touch()
    wrapper = fake_command(tmp_path, "counting-ssh", f'echo "$$" >> {calls}\nexec ssh "$@"\n')
    JobScript.cache_folder = str(tmp_path / "cache")
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "file").write_text("")

    def job(i: int, **attributes: str) -> JobScript:
        return JobScript(
            "./aux.sh > id.txt", jobname=f"one{i}", backend="local", remote=remote.host,
            ssh=f"{wrapper} -F {remote.config}", rootdir=str(tmp_path / "remote"),
            workdir=f"w{i % 2}", aux_scripts={"aux.sh": "echo $CLUSTERJOB_ID"},
            max_sleep_interval=1, **attributes,
        )  # fmt: skip

    results = [job(i).submit(cache_id=f"one{i}") for i in range(6)]
    assert len(calls.read_text().splitlines()) == 6
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        unmarked = [
            job(i, marker_folder=str(tmp_path / "remote" / "file" / "m")).submit(cache_id=f"u{i}")
            for i in range(6, 9)
        ]
    assert len(calls.read_text().splitlines()) == 9
    warnings = [r.getMessage() for r in caplog.records if "exit markers" in r.getMessage()]
    assert len(warnings) == 1 and "Not a directory" in warnings[0], warnings
    assert [r.marker_name for r in unmarked] == [None] * 3
    assert all(r.marker_name for r in results)
    assert wait_all(results + unmarked, timeout=120) == [COMPLETED] * 9
    for i, result in enumerate(results + unmarked):
        assert (tmp_path / "remote" / f"w{i % 2}" / "id.txt").exists()
        assert json.loads(Path(result.cache_file).read_text())["marker_name"] == result.marker_name


def test_a_job_folder_that_cannot_be_made_over_ssh_is_named_and_leaves_no_intent(
    remote, local_over_ssh, tmp_path: Path
) -> None:
    """The intent is written before the round trip; a folder or script that cannot be written
    stops it before the submission, so the intent goes again (no job can exist)."""
    from clusterjob.errors import SchedulerError

    (tmp_path / "file").write_text("")
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("true", jobname="nowhere", backend="local", remote=remote.host,
                    ssh=remote.ssh, rootdir=str(tmp_path / "file"), workdir="w")  # fmt: skip
    with pytest.raises(SchedulerError) as info:
        job.submit(cache_id="nowhere")
    assert str(info.value).startswith(
        f"command 'mkdir -p -- {tmp_path}/file/w' on {remote.host} failed with exit code 1: "
        f"mkdir: cannot create directory '{tmp_path}/file': Not a directory"
    )
    assert list((tmp_path / "cache").glob("*.cache")) == []
    spool = Path(os.environ["CLUSTERJOB_LOCAL_SPOOL"])
    assert not spool.exists() or not list(spool.glob("*/meta.json"))


def test_write_over_ssh_is_one_ssh_command(remote, tmp_path: Path) -> None:
    calls = tmp_path / "ssh-calls"
    calls.touch()
    wrapper = fake_command(tmp_path, "counting-ssh", f'echo "$$" >> {calls}\nexec ssh "$@"\n')
    job = JobScript(
        "echo {jobname}", jobname="written", backend="slurm", remote=remote.host,
        ssh=f"{wrapper} -F {remote.config}", rootdir=str(tmp_path / "new" / "folder"),
        aux_scripts={"a.sh": "echo a", "b.sh": "echo b\n"},
    )  # fmt: skip
    job.write()
    assert len(calls.read_text().splitlines()) == 1
    folder = tmp_path / "new" / "folder"
    assert (folder / "written.slr").read_text() == str(job)
    assert [(folder / name).read_text() for name in ("a.sh", "b.sh")] == [
        "#!/bin/bash\necho a",
        "#!/bin/bash\necho b\n",
    ]


def test_running_status_comes_over_ssh(remote, local_over_ssh, tmp_path: Path) -> None:
    job = JobScript("sleep 30", jobname="running", backend="local", remote=remote.host, ssh=remote.ssh,
                    rootdir=str(tmp_path), max_sleep_interval=1)  # fmt: skip
    result = job.submit()
    wait_for(lambda: result.status == RUNNING, "the job to run", timeout=120)
    result.cancel()
    assert result.get(60) == CANCELLED
