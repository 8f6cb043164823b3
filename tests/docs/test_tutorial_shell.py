"""The tutorial's shell section runs as written, with the installed ``clusterjob`` command.

Its ``sh`` block is typed into bash line by line in a fresh folder; the ``text`` block
after it is what the resubmission and ``clusterjob status`` print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "tutorial.md"
SECTION = "## 9. From a shell"


def section_blocks() -> tuple[list[str], list[str]]:
    """The commands of the section's ``sh`` block and the lines of its ``text`` block."""
    text = PAGE.read_text(encoding="utf-8")
    assert SECTION in text, f"{PAGE.name} has no section {SECTION!r} any more"
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", 1)]
    sh = section[section.index("```sh\n") + len("```sh\n") :]
    shown = section[section.index("```text\n") + len("```text\n") :]
    return sh[: sh.index("```")].splitlines(), shown[: shown.index("```")].splitlines()


def test_the_shell_section_runs_and_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    commands, shown = section_blocks()
    bin_folder = Path(sys.executable).parent
    assert (bin_folder / "clusterjob").exists(), f"no clusterjob command in {bin_folder}"
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for command in commands:
        answer = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=120,
        )
        assert answer.returncode == 0, f"{command}: {answer.stderr}"
        outputs.append(answer.stdout)
    resubmitted, status = outputs[2], outputs[3]
    assert (resubmitted + status).splitlines() == shown
    [job] = json.loads(outputs[4])
    assert (job["cache_id"], job["status"], job["exit_code"]) == ("hello", "COMPLETED", 0)
    assert (tmp_path / f"local-{job['job_id']}.out").read_text() == f"hello from {job['job_id']}\n"
