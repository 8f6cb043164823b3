"""Exit markers over SSH to the real SLURM: one ssh command reads the markers of all jobs per cycle."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import clusterjob.polling
import pytest
from clusterjob import JobScript, wait_all
from clusterjob.status import COMPLETED, FAILED

pytestmark = [pytest.mark.ssh, pytest.mark.slurm]

HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)


@pytest.fixture
def hostile_home_folder() -> Iterator[str]:
    """A fresh ``~/<name with quotes, spaces and $(...)>`` on the remote (= this machine's home)."""
    name = f"cj-remote it's $(touch pwned) {uuid.uuid4().hex[:8]}"
    yield name
    shutil.rmtree(HOME / name, ignore_errors=True)


def test_markers_over_ssh_are_read_with_one_command_per_cycle(
    remote, prefix: str, hostile_home_folder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    JobScript.backend = "slurm"
    JobScript.remote, JobScript.ssh, JobScript.scp = remote.host, remote.ssh, remote.scp
    JobScript.rootdir = f"~/{hostile_home_folder}"
    JobScript.max_sleep_interval = 1
    reads: list[int] = []
    real_read = clusterjob.polling.read_markers

    def counting_read(transport, entries):  # type: ignore[no-untyped-def]
        reads.append(len(entries))
        return real_read(transport, entries)

    monkeypatch.setattr(clusterjob.polling, "read_markers", counting_read)
    results = [
        JobScript(body, jobname=f"{prefix}-m{i}", workdir=f"w{i}", time="1").submit()
        for i, body in enumerate(["sleep 2", "sleep 2; exit 3", "true"])
    ]
    assert [r.marker_folder for r in results] == [
        f"{hostile_home_folder}/w{i}/.clusterjob-markers" for i in range(3)
    ]
    assert wait_all(results, timeout=180) == [COMPLETED, FAILED, COMPLETED]
    assert [r.exit_code for r in results] == [0, 3, 0]
    assert reads[0] == 3, "the first cycle reads all three jobs' markers with one command"
    for i, result in enumerate(results):
        marker = (
            HOME
            / hostile_home_folder
            / f"w{i}"
            / ".clusterjob-markers"
            / f"{result.marker_name}.exit"
        )
        assert marker.read_text() == f"exit {result.exit_code}\n"
    assert not list(HOME.glob("pwned")) and not list((HOME / hostile_home_folder).rglob("pwned"))


def test_an_unwritable_remote_marker_folder_falls_back_with_one_warning(
    remote, prefix: str, hostile_home_folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    (HOME / hostile_home_folder).mkdir()
    (HOME / hostile_home_folder / "file").write_text("")
    JobScript.backend = "slurm"
    JobScript.remote, JobScript.ssh, JobScript.scp = remote.host, remote.ssh, remote.scp
    JobScript.rootdir = f"~/{hostile_home_folder}"
    JobScript.marker_folder = "file/markers"  # below a regular file: mkdir fails on the remote
    JobScript.max_sleep_interval = 1
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        results = [
            JobScript("exit 3", jobname=f"{prefix}-ro{i}", time="1").submit() for i in range(2)
        ]
        assert wait_all(results, timeout=180) == [FAILED, FAILED]
    assert [r.marker_name for r in results] == [None, None]
    warnings = [r.getMessage() for r in caplog.records if "exit markers" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"cannot write exit markers into {hostile_home_folder}/file/markers on {remote.host} (mkdir: "
    )
