"""Bad input gets a clear error and loses nothing.

INI files, walltimes, backends and resources a backend cannot express, broken
cache files of remote jobs, scheduler commands that answer garbage or are not
installed (here and on the remote), and an ssh that is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript
from clusterjob.backends import ResourcesNotSupportedError
from clusterjob.backends import local as local_plugin
from clusterjob.errors import (
    BackendNotInstalledError,
    CacheError,
    ConfigError,
    SchedulerError,
    SubmitError,
)
from clusterjob.plugins import create_plugin_manager, reset_plugin_manager
from clusterjob.status import COMPLETED, PENDING, RUNNING
from helpers.commands import fake_command, path_first

# -- INI files (the cases tests/core/test_jobscript.py does not have) -----------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[Attributes]\ntext = caf\xe9\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xe9 at offset 23\); save it as UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", r"is not UTF-8 text \(byte 0x89 at offset 0\)"),
        (b"[Resources]\nexclusive\n", r"(?s)is not a valid INI file: Source contains parsing errors.*line  2.*exclusive"),
        (b"[Attributes]\nshell = /bin/sh\n[Attributes]\nx = 1\n", r"is not a valid INI file: .*section 'Attributes' already exists"),
        (b"[Attributes]\nbackend =\n", r"key 'backend': JobScript.backend must be a non-empty string, not ''"),
        (b"[Attributes]\nssh =\n", r"key 'ssh': JobScript.ssh must be a non-empty string"),
        (b"[Attributes]\ncache_prefix = a/b\n", r"key 'cache_prefix': JobScript.cache_prefix must not contain '/'"),
        (b"[Attributes]\nrootdir =\n  a\n  b\n[Resources]\nnodes = 1.0\n", r"key 'nodes': nodes = '1.0' is not an integer"),
    ],
)  # fmt: skip
def test_malformed_ini_files_name_the_file_and_change_nothing(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "cluster.ini"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        JobScript.read_defaults(str(path))
    assert str(path) in str(info.value)
    assert JobScript.shell == "/bin/bash" and JobScript.rootdir == "." and JobScript.resources == {}


def test_ini_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "windows.ini"
    path.write_bytes("\ufeff[Attributes]\nshell = /bin/sh\n".encode("utf-8"))
    JobScript.read_defaults(str(path))
    assert JobScript.shell == "/bin/sh"


def test_multi_line_resource_from_an_ini_file_is_refused_at_submission(tmp_path: Path) -> None:
    path = tmp_path / "cluster.ini"
    path.write_text("[Resources]\nstdout =\n    out.txt\n    touch pwned\n")
    JobScript.read_defaults(str(path))
    JobScript.cache_folder = str(tmp_path / "cache")
    with pytest.raises(
        ResourcesNotSupportedError,
        match=r"resource stdout='\\nout.txt\\ntouch pwned': a line break",
    ):
        JobScript("true", jobname="ini", backend="local", rootdir=str(tmp_path)).submit(
            cache_id="ini"
        )
    assert list(tmp_path.glob("cache/*.cache")) == []


# -- walltimes, backends, resources ---------------------------------------------------

BAD_TIMES = ["1 day", "1:2:3:4:5", "-5", "abc", "90s", "1-", "", "1.5"]


@pytest.mark.parametrize("value", BAD_TIMES)
@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("local", "backend 'local' cannot express resource time={value!r}: a walltime is minutes, minutes:seconds"),
        pytest.param("slurm", "backend 'slurm' cannot express resource time={value!r}: a walltime is minutes,",
                     marks=pytest.mark.slurm),
    ],
)  # fmt: skip
def test_unsupported_time_strings_are_named(
    tmp_path: Path, backend: str, message: str, value: str
) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript(
        "true", jobname="t", backend=backend, rootdir=str(tmp_path / "root"), time=value
    )
    with pytest.raises(ResourcesNotSupportedError, match=re.escape(message.format(value=value))):
        job.submit(cache_id="t")
    assert not (tmp_path / "cache" / "clusterjob.t.cache").exists()
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []


def test_unknown_backend_names_the_distribution_to_install(tmp_path: Path) -> None:
    with pytest.raises(
        BackendNotInstalledError,
        match=r"backend 'nosuch' is not installed: pip install clusterjob-nosuch \(installed backends: .*local",
    ):
        JobScript("true", jobname="x", backend="nosuch", rootdir=str(tmp_path)).submit()


def test_cached_job_of_a_backend_no_longer_installed(tmp_path: Path) -> None:
    """Resuming a workflow after uninstalling a backend names the distribution and keeps the cache file."""
    JobScript.cache_folder = str(tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / "clusterjob.old.cache"
    record = {
        "clusterjob_cache": 1,
        "state": "submitted",
        "backend": "slurm",
        "status": "RUNNING",
        "job_id": "42",
    }
    path.write_text(json.dumps(record))
    reset_plugin_manager(
        create_plugin_manager(load_entrypoints=False, plugins=(local_plugin,))
    )  # only core installed
    with pytest.raises(
        BackendNotInstalledError,
        match="backend 'slurm' is not installed: pip install clusterjob-slurm",
    ):
        JobScript("true", jobname="old", backend="local").submit(cache_id="old")
    with pytest.raises(BackendNotInstalledError, match="pip install clusterjob-slurm"):
        AsyncResult.from_cache(str(path))
    assert json.loads(path.read_text()) == record


@pytest.mark.slurm
def test_resources_slurm_cannot_express_name_the_key(tmp_path: Path) -> None:
    JobScript.rootdir = str(tmp_path)
    for kwargs, message in [
        ({"time": "2 hours"}, r"resource time='2 hours': a walltime is minutes"),
        (
            {"mail_user": "a\nb"},
            r"resource mail_user='a\\nb': a line break cannot stand in a '#SBATCH' header line",
        ),
    ]:
        with pytest.raises(ResourcesNotSupportedError, match=message):
            JobScript("true", jobname="r", backend="slurm", **kwargs).submit()


# -- cache files of remote jobs --------------------------------------------------------


@pytest.mark.ssh
def test_truncated_cache_of_a_remote_job_is_named_kept_and_set_aside_on_force(
    remote, local_over_ssh, tmp_path: Path
) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("true", jobname="remote-cached", backend="local", remote=remote.host, ssh=remote.ssh,
                    rootdir=str(tmp_path / "remote"), max_sleep_interval=1)  # fmt: skip
    first = job.submit(cache_id="r")
    assert first.get(60) == COMPLETED
    path = Path(first.cache_file)
    text = path.read_bytes()
    path.write_bytes(text[: len(text) // 2])  # a disk that filled up, a copy interrupted
    spool = Path(os.environ["CLUSTERJOB_LOCAL_SPOOL"])
    with pytest.raises(
        CacheError,
        match=r"cache file .*clusterjob.r.cache is not valid clusterjob JSON .* left untouched",
    ):
        job.submit(cache_id="r")
    assert path.read_bytes() == text[: len(text) // 2]
    assert len(list(spool.glob("*/meta.json"))) == 1
    second = job.submit(cache_id="r", force=True)
    assert second.job_id != first.job_id and second.get(60) == COMPLETED
    assert [p.read_bytes() for p in path.parent.glob("clusterjob.r.cache.corrupt-*")] == [
        text[: len(text) // 2]
    ]
    assert len(list(spool.glob("*/meta.json"))) == 2


# -- scheduler commands that answer garbage or are missing --------------------------------


def _intent(cache: Path, cache_id: str) -> dict:
    return json.loads((cache / f"clusterjob.{cache_id}.cache").read_text())


@pytest.mark.slurm
@pytest.mark.parametrize(
    "reached", [True, False], ids=["sbatch-submitted", "sbatch-did-not-submit"]
)
def test_sbatch_printing_garbage_keeps_the_intent_and_the_rerun_does_not_duplicate(
    reached: bool, tmp_path: Path, prefix: str, slurm_jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which("sbatch")
    assert real
    submit_line = f'{real} "$@" >/dev/null || exit $?\n' if reached else ""
    shims = tmp_path / "shims"
    fake_command(
        shims, "sbatch", submit_line + "echo 'sbatch: the queue is having a bad day (code 7)'\n"
    )
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", path_first(shims))
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript(
        "true", jobname=f"{prefix}-g", backend="slurm", rootdir=str(tmp_path), time="1", hold=True
    )
    with pytest.raises(SubmitError, match=(
        r"could not read a job ID from the output of \['sbatch', '.*-g.slr'\]: "
        r"stdout='sbatch: the queue is having a bad day \(code 7\)'.*the intent in .* find the job by its tag"
    )):  # fmt: skip
        job.submit(cache_id="g")
    intent = _intent(tmp_path / "cache", "g")
    assert intent["state"] == "submitting" and intent["tag"].startswith("cj-")
    assert len(slurm_jobs(prefix).get(f"{prefix}-g", [])) == (1 if reached else 0)
    monkeypatch.setenv("PATH", path)  # sbatch fixed
    result = job.submit(cache_id="g")
    assert result.resumed is reached
    assert slurm_jobs(prefix) == {f"{prefix}-g": [result.job_id]}
    assert _intent(tmp_path / "cache", "g")["state"] == "submitted"


@pytest.mark.slurm
@pytest.mark.ssh
def test_sbatch_printing_garbage_over_ssh_then_adopted(
    remote, tmp_path: Path, prefix: str, slurm_jobs
) -> None:
    from clusterjob_slurm import SlurmBackend

    real = shutil.which("sbatch")
    shim = fake_command(
        tmp_path / "remote-bin",
        "sbatch",
        f'{real} "$@" >/dev/null || exit $?\necho "<html>502 Bad Gateway</html>"\n',
    )

    class GarbageSlurm(SlurmBackend):
        """sbatch on the remote answers garbage (the shim is a file on the remote, called by path)."""

        def cmd_submit(self, jobscript):  # type: ignore[no-untyped-def]
            return [str(shim), *list(super().cmd_submit(jobscript))[1:]]

    JobScript.register_backend(GarbageSlurm(), name="slurm")
    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("true", jobname=f"{prefix}-r", backend="slurm", remote=remote.host, ssh=remote.ssh,
                    scp=remote.scp, rootdir=str(tmp_path / "root"), time="1", hold=True)  # fmt: skip
    with pytest.raises(SubmitError, match=r"stdout='<html>502 Bad Gateway</html>'"):
        job.submit(cache_id="r")
    assert _intent(tmp_path / "cache", "r")["state"] == "submitting"
    JobScript.register_backend(SlurmBackend(), name="slurm")  # fixed
    result = job.submit(cache_id="r")
    assert result.resumed and result.remote == remote.host
    assert slurm_jobs(prefix) == {f"{prefix}-r": [result.job_id]}


@pytest.mark.slurm
def test_squeue_and_sacct_printing_garbage_never_become_a_status(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="clusterjob")
    JobScript.cache_folder = str(tmp_path / "cache")
    # Without exit markers every poll asks squeue/sacct: their answers are under test.
    result = JobScript("sleep 2", jobname=f"{prefix}-s", backend="slurm", rootdir=str(tmp_path), time="1",
                       max_sleep_interval=1, exit_markers=False).submit(cache_id="s")  # fmt: skip
    cached = Path(result.cache_file).read_bytes()
    path = os.environ["PATH"]
    shims = tmp_path / "shims"
    for tool in ("squeue", "sacct"):
        fake_command(shims, tool, "echo 'Lorem ipsum|dolor|sit'\necho 'COMPLETED' \n")
    monkeypatch.setenv("PATH", path_first(shims))
    for _ in range(3):
        assert result.poll() in (PENDING, RUNNING)
    assert "the scheduler reports no status" in caplog.text
    assert Path(result.cache_file).read_bytes() == cached
    monkeypatch.setenv("PATH", path)
    assert result.get(120) == COMPLETED


@pytest.mark.slurm
def test_sbatch_missing_from_path_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    JobScript.cache_folder = str(tmp_path / "cache")
    with pytest.raises(SchedulerError, match=(
        rf"command 'sbatch .*' failed with exit code 127: 'sbatch' not found on PATH on this machine "
        rf"\({os.uname().nodename}, PATH='{empty}'\); is the scheduler's client installed here\?"
    )):  # fmt: skip
        JobScript("true", jobname="m", backend="slurm", rootdir=str(tmp_path)).submit(cache_id="m")
    assert not (
        tmp_path / "cache" / "clusterjob.m.cache"
    ).exists()  # no job can exist: nothing to find later


@pytest.mark.ssh
def test_scheduler_command_missing_on_the_remote(remote, local_over_ssh, tmp_path: Path) -> None:
    class Uninstalled(type(local_over_ssh)):  # type: ignore[misc]
        def cmd_submit(self, jobscript):  # type: ignore[no-untyped-def]
            return ["cj-sbatch-not-installed", jobscript.script_filename()]

    JobScript.register_backend(Uninstalled(), name="uninstalled")
    JobScript.cache_folder = str(tmp_path / "cache")
    with pytest.raises(SchedulerError) as info:
        JobScript("true", jobname="m", backend="uninstalled", remote=remote.host, ssh=remote.ssh,
                  rootdir=str(tmp_path)).submit(cache_id="m")  # fmt: skip
    message = str(info.value)
    assert "command 'cj-sbatch-not-installed m.sh' on cjtest failed with exit code 127" in message
    assert "cj-sbatch-not-installed: not found" in message
    assert f"a command was not found on {os.uname().nodename}; PATH there is '" in message
    assert not (tmp_path / "cache" / "clusterjob.m.cache").exists()


def test_ssh_itself_missing(tmp_path: Path) -> None:
    JobScript.cache_folder = str(tmp_path / "cache")
    with pytest.raises(
        SchedulerError, match=r"'cj-no-such-ssh' not found on PATH on this machine \(PATH="
    ):
        JobScript("true", jobname="x", backend="local", remote="somewhere", ssh="cj-no-such-ssh -F cfg",
                  rootdir="/tmp").submit(cache_id="x")  # fmt: skip
    assert not (tmp_path / "cache" / "clusterjob.x.cache").exists()


@pytest.mark.ssh
def test_tag_lookup_that_cannot_run_on_the_remote_never_resubmits(
    remote, local_over_ssh, tmp_path: Path
) -> None:
    """After an interrupted submission, a lookup command missing on the remote proves nothing: no second job."""
    base = type(local_over_ssh)

    class Mumbling(base):  # type: ignore[misc,valid-type]
        def get_job_id(self, response):  # type: ignore[no-untyped-def]
            return None  # the job reaches the scheduler, its ID is lost: the intent stays

    class LookupMissing(base):  # type: ignore[misc,valid-type]
        def cmd_find_tag(self, tag):  # type: ignore[no-untyped-def]
            return ["cj-find-tag-not-installed", tag]

    JobScript.cache_folder = str(tmp_path / "cache")
    job = JobScript("true", jobname="lookup", backend="local", remote=remote.host, ssh=remote.ssh,
                    rootdir=str(tmp_path / "remote"), max_sleep_interval=1)  # fmt: skip
    JobScript.register_backend(Mumbling(), name="local")
    with pytest.raises(SubmitError, match="could not read a job ID"):
        job.submit(cache_id="l")
    spool = Path(os.environ["CLUSTERJOB_LOCAL_SPOOL"])
    assert len(list(spool.glob("*/meta.json"))) == 1
    JobScript.register_backend(LookupMissing(), name="local")
    with pytest.raises(SubmitError, match=(
        r"(?s)interrupted .*clusterjob.l.cache.* the command that looks for its job \(tag cj-.*\) could not run on "
        r"cjtest: .*cj-find-tag-not-installed: not found.*Fix that, then submit again"
    )):  # fmt: skip
        job.submit(cache_id="l")
    assert len(list(spool.glob("*/meta.json"))) == 1
    assert _intent(tmp_path / "cache", "l")["state"] == "submitting"
    JobScript.register_backend(base(), name="local")
    adopted = job.submit(cache_id="l")
    assert adopted.resumed and adopted.get(60) == COMPLETED
    assert len(list(spool.glob("*/meta.json"))) == 1
