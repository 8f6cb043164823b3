"""The tutorial's remote section, run over SSH: the loopback sshd plays the login node.

The page runs in order up to the end of its section "Remote submission over SSH",
with the blocks that opt out of the scheduler-free run for needing SLURM or a login
node. Only the login node's name and the remote folder are replaced (by the test host
and a fresh folder in the remote home, removed afterwards); ``JobScript.ssh``/``scp``
read the test's ssh_config, as a user's ``~/.ssh/config`` would.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import sys
import types
import uuid
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.status import COMPLETED

pytestmark = [pytest.mark.ssh, pytest.mark.slurm]

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)
#: The reason by which the tutorial's remote block opts out of the scheduler-free run.
NEEDS_LOGIN_NODE = "needs a cluster's login node"


def tutorial_runner(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``tests/docs/test_tutorial_on_slurm.py``, which runs the tutorial's blocks
    (test modules cannot import each other)."""
    path = ROOT / "tests" / "docs" / "test_tutorial_on_slurm.py"
    spec = importlib.util.spec_from_file_location("docs_tutorial_runner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_tutorial_submits_to_slurm_over_ssh(
    remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = tutorial_runner(monkeypatch)
    folder = f"cj-tutorial-{uuid.uuid4().hex[:8]}"
    monkeypatch.chdir(tmp_path)
    JobScript.ssh = remote.ssh
    JobScript.scp = remote.scp
    JobScript.max_sleep_interval = 2  # the jobs take seconds: do not wait minutes between polls
    try:
        namespace = runner.run_tutorial(
            monkeypatch,
            until="## 7.",
            also_run=[runner.NEEDS_SLURM, NEEDS_LOGIN_NODE],
            replace={'"login.cluster.edu"': f'"{remote.host}"', '"~/jobs"': f'"~/{folder}"'},
        )
        result = namespace["result"]
        assert (result.remote, result.backend.name) == (remote.host, "slurm")
        assert result.status == COMPLETED
        output = HOME / folder / "hello" / f"hello-{result.job_id}.out"
        assert output.read_text().startswith(f"Hello from {result.job_id} on ")
    finally:
        shutil.rmtree(HOME / folder, ignore_errors=True)
