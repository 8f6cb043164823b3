"""Shared fixtures: a pristine JobScript class per test, and the real schedulers.

The schedulers are started by ``tests/schedulers/up.sh`` (called by
``tests/run.sh``), which writes ``<name>.env`` files into the state folder.
A test that needs a scheduler that is not running fails with the command to
start it; deselect such tests with ``-m "not slurm"`` etc. on a laptop.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

STATE = Path(os.environ.get("CLUSTERJOB_TEST_STATE", "/var/tmp/clusterjob-test"))


def read_scheduler_env(name: str) -> dict[str, str]:
    """The KEY=VALUE pairs the bring-up script of ``name`` wrote, or a test failure."""
    path = STATE / f"{name}.env"
    if not path.exists():
        pytest.fail(
            f"{name} is not running ({path} missing): run `bash tests/schedulers/up.sh {name}` "
            f"or deselect with -m 'not {name}'",
            pytrace=False,
        )
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        parts = shlex.split(value)
        env[key] = parts[0] if parts else ""
    return env


@pytest.fixture(scope="session")
def slurm_env() -> dict[str, str]:
    return read_scheduler_env("slurm")


@pytest.fixture(scope="session")
def sge_env() -> dict[str, str]:
    return read_scheduler_env("sge")


@pytest.fixture(scope="session")
def torque_env() -> dict[str, str]:
    return read_scheduler_env("torque")


@pytest.fixture(scope="session")
def sshd_env() -> dict[str, str]:
    return read_scheduler_env("sshd")


@pytest.fixture(autouse=True)
def pristine_jobscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the documented class defaults, with its own local-backend spool."""
    from clusterjob import JobScript
    from clusterjob.plugins import reset_plugin_manager

    monkeypatch.setenv("CLUSTERJOB_LOCAL_SPOOL", str(tmp_path / "local-spool"))
    JobScript.read_defaults()
    reset_plugin_manager()
    yield
    JobScript.read_defaults()
    reset_plugin_manager()
