"""The fixture of the tests that run on the real Grid Engine cell of tests/schedulers/sge.sh."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from clusterjob import JobScript
from helpers.commands import path_first


@pytest.fixture
def sge(sge_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Grid Engine's commands first on PATH (never slurm-wlm-torque's qsub); jobs in a fresh folder."""
    monkeypatch.setenv("SGE_ROOT", sge_env["SGE_ROOT"])
    monkeypatch.setenv("SGE_CELL", sge_env["SGE_CELL"])
    monkeypatch.setenv("PATH", path_first(sge_env.get("SGE_BIN", "/usr/bin")))
    qsub = shutil.which("qsub")
    assert qsub is not None
    banner = subprocess.run(
        [qsub, "-help"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    assert banner and banner[0].startswith("SGE"), f"{qsub} is not Grid Engine's qsub: {banner}"
    tmp_path.chmod(0o755)
    JobScript.rootdir = str(tmp_path)
    JobScript.backend = "sge"
    JobScript.max_sleep_interval = 2
    return tmp_path
