"""Shared fixtures: a pristine JobScript class per test, and the real schedulers.

The schedulers are started by ``tests/schedulers/up.sh`` (called by
``tests/run.sh``), which writes ``<name>.env`` files into the state folder.
A test that needs a scheduler that is not running fails with the command to
start it; deselect such tests with ``-m "not slurm"`` etc. on a laptop.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator
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


# -- what login shells print around a command's output ------------------------------

#: Printed before the command's output by site profiles on real clusters: a
#: coloured banner with a number in it, ``Last login``, a blank line.
LOGIN_BANNER = (
    "\x1b[1;33mWelcome to cluster X (2 nodes)\x1b[0m\n"
    "Last login: Mon Jun  3 09:12:44 2024 from 10.0.0.7\n"
    "[I] possible CPU types = Haswell(24) Broadwell(36)\n"
    "\n"
)
#: ``.bashrc`` setting the terminal title: an escape sequence without a line break of its own.
WINDOW_TITLE = "\x1b]0;user@login1: ~\x07"
#: Lines a parser does not know, put between the lines of the output (none has ``=`` or ``|``).
UNKNOWN_LINES = (
    "",
    "\x1b[2mmodule: gcc/12.2 loaded\x1b(B\x1b[m",
    "   ",
    "Welcome to cluster X (2 nodes)",
)


def add_login_noise(text: str, interleave: bool = True) -> str:
    """``text`` as a noisy login shell delivers it: banner, window title, ``\\r\\n`` line ends,
    and (``interleave``) unknown and blank lines between its lines, then a colour reset."""
    lines = text.splitlines()
    noisy: list[str] = []
    for number, line in enumerate(lines):
        noisy.append(line)
        if interleave:
            noisy.append(UNKNOWN_LINES[number % len(UNKNOWN_LINES)])
    return (LOGIN_BANNER + WINDOW_TITLE + "\n".join(noisy) + "\n\x1b[0m\n").replace("\n", "\r\n")


@pytest.fixture
def login_noise() -> Callable[..., str]:
    """:func:`add_login_noise`, for parser tests (test modules cannot import this file)."""
    return add_login_noise
