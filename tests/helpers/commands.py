"""Stand-ins for scheduler commands, first on ``PATH``, and commands run into a CommandResult.

Where no real scheduler can show what a test needs (LSF and PBS Pro are not installed; a
disabled accounting or a purged job cannot be made on demand), a test writes a small script
named like the scheduler's command into a folder and searches that folder first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from clusterjob.backends import Command, CommandResult


def write_executable(path: Path, text: str) -> Path:
    """``path`` holding ``text`` (a whole script, ``#!`` line included), executable by all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def fake_command(folder: Path, name: str, script: str) -> Path:
    """The command ``name`` in ``folder``: a ``/bin/sh`` script running ``script``."""
    return write_executable(folder / name, "#!/bin/sh\n" + script)


def path_first(folder: Path | str) -> str:
    """The ``PATH`` of this process with ``folder`` searched before everything on it."""
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def environment_first_on_path(folder: Path | str) -> dict[str, str]:
    """This process's environment, with ``folder`` first on ``PATH`` (for ``subprocess``)."""
    return {**os.environ, "PATH": path_first(folder)}


def run_command(command: Command, env: Mapping[str, str] | None = None) -> CommandResult:
    """Run the argument list ``command`` and keep what a backend's parser is given: exit code,
    stdout, stderr."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return CommandResult(done.returncode, done.stdout, done.stderr)


class FakeCommands:
    """Fake scheduler commands in ``<folder>/bin`` that log every call to ``<folder>/calls.log``.

    A command answers from a table (:meth:`command`) or runs a script of its own
    (:meth:`script`); either way its arguments are logged first, so that a test can check
    which commands a backend ran and how often.
    """

    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir()
        self.log = folder / "calls.log"
        self.log.touch()

    def script(self, name: str, script: str) -> Path:
        """The command ``name``: logs ``name`` and its arguments, then runs ``script`` (sh)."""
        return fake_command(self.bin, name, f'echo "{name} $*" >> "{self.log}"\n{script}')

    def command(self, name: str, *cases: tuple[str, str, str, int]) -> Path:
        """The command ``name`` answering from ``cases``: (glob over "$*", stdout, stderr, exit
        code); the first pattern that matches the arguments wins, none matching exits 0."""
        lines = ['case "$*" in']
        for pattern, stdout, stderr, code in cases:
            lines.append(f"  {pattern})")
            if stdout:
                lines.append(f"    cat <<'CJ_EOF'\n{stdout.rstrip(chr(10))}\nCJ_EOF")
            if stderr:
                lines.append(f"    cat >&2 <<'CJ_EOF'\n{stderr.rstrip(chr(10))}\nCJ_EOF")
            lines.append(f"    exit {code};;")
        lines.append("esac")
        return self.script(name, "\n".join(lines) + "\n")

    def environment(self) -> dict[str, str]:
        """This process's environment with the fake commands first on ``PATH``."""
        return environment_first_on_path(self.bin)

    def run(self, command: Command) -> CommandResult:
        """``command`` run with the fake commands first on ``PATH``."""
        return run_command(command, self.environment())

    def calls(self) -> list[str]:
        """Every call so far, oldest first: the command's name and its arguments."""
        return self.log.read_text().splitlines()
