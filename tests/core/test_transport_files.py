"""Writing files for a submission: the stdin script of the SSH transport (run here by ``sh``),
the folder probe remembered per process, and the local ``run_with_files``."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from clusterjob import transport as transport_module
from clusterjob.errors import SchedulerError
from clusterjob.transport import LocalTransport

#: Contents that need each way of writing a file: plain, no final line break, NUL, empty,
#: lines that look like delimiters, shell syntax, and more than one printf chunk.
CONTENTS = [
    "#!/bin/sh\necho plain\n",
    "no line break $(touch pwned) `x` 'q' \"d\" %s %% \\ \u00fcn\u00ef",
    "a\0b\n",
    "",
    "CJ_EOF_0123456789abcdef\nEOF\n",
    "z" * 40_000,
]


def _run_script(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-s"], input=script, cwd=cwd, capture_output=True, text=True, check=False
    )


def test_the_stdin_script_writes_every_byte_and_mode(tmp_path: Path) -> None:
    files = [(str(tmp_path / "f o" / f"file{i}"), data, i == 0) for i, data in enumerate(CONTENTS)]
    steps, _ = transport_module._write_steps(files, [str(tmp_path / "f o")])
    done = _run_script(transport_module._stdin_script(steps, "pwd; cat"), tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{tmp_path}\n", "")
    for path, data, executable in files:
        assert Path(path).read_bytes() == data.encode("utf-8")
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o755 if executable else 0o644)
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.rglob("*.cj-*"))


def test_a_truncated_stdin_script_runs_nothing(tmp_path: Path) -> None:
    """A link that breaks while the script is sent leaves no file and runs no command."""
    files = [(str(tmp_path / "a"), "a\n", False), (str(tmp_path / "b"), "b" * 1000 + "\n", False)]
    steps, _ = transport_module._write_steps(files, [])
    script = transport_module._stdin_script(steps, f"touch {tmp_path}/ran")
    for cut in (len(script) // 3, len(script) // 2, len(script) - 3):
        _run_script(script[:cut], tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_step_is_reported_on_a_marked_line_and_stops_the_script(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    files = [(str(tmp_path / "ok"), "ok\n", False), (str(tmp_path / "file" / "x"), "x\n", False)]
    steps, descriptions = transport_module._write_steps(files, [])
    done = _run_script(transport_module._stdin_script(steps, f"touch {tmp_path}/ran"), tmp_path)
    assert done.returncode != 0
    assert done.stderr.endswith(f"\n{transport_module._STEP_MARK} 1\n")
    assert descriptions[1] == f"write {tmp_path}/file/x"
    assert not (tmp_path / "ran").exists() and (tmp_path / "ok").read_text() == "ok\n"


def test_probe_lines_are_read_and_removed(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    folders = [str(tmp_path / "m"), str(tmp_path / "file" / "m")]
    steps = [transport_module._probe_step(i, f, ".cj-probe-x") for i, f in enumerate(folders)]
    done = _run_script(transport_module._stdin_script(steps, "echo err >&2"), tmp_path)
    stderr, answers = transport_module._take_probes(done.stderr)
    assert stderr == "err\n"
    assert answers[0] == "" and "Not a directory" in answers[1]
    assert (tmp_path / "m").is_dir() and not (tmp_path / "m" / ".cj-probe-x").exists()


def test_probe_folders_probes_each_folder_once_per_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalTransport()
    probed: list[str] = []
    real_probe = local._probe

    def counting(folders):  # type: ignore[no-untyped-def]
        probed.extend(folders)
        return real_probe(folders)

    monkeypatch.setattr(local, "_probe", counting)
    (tmp_path / "file").write_text("")
    good, bad = str(tmp_path / "markers"), str(tmp_path / "file" / "markers")
    for _ in range(3):
        unwritable = local.probe_folders([good, bad, good])
        assert list(unwritable) == [bad]
        assert unwritable[bad] == f"[Errno 20] Not a directory: '{bad}'"
    assert probed == [good, bad]
    assert os.path.isdir(good) and os.listdir(good) == []
    monkeypatch.setattr(transport_module, "MKDIR_MEMORY", 0.0)
    assert local.unprobed([good, bad]) == [good, bad]
    local.probe_folders([good])
    assert probed == [good, bad, good]


def test_run_with_files_on_this_machine_writes_probes_and_runs(tmp_path: Path) -> None:
    local = LocalTransport()
    folder = tmp_path / "job"
    (tmp_path / "file").write_text("")
    answer, unwritable = local.run_with_files(
        ["sh", "-c", "cat job.sh aux.sh"], cwd=str(folder),
        files=[(str(folder / "job.sh"), "echo job\n", True), (str(folder / "aux.sh"), "aux", False)],
        folders=[str(folder)], probe=[str(folder / "m"), str(tmp_path / "file" / "m")],
    )  # fmt: skip
    assert answer.stdout == "echo job\naux"
    assert list(unwritable) == [str(tmp_path / "file" / "m")]
    with pytest.raises(SchedulerError, match="exit code 3"):
        local.run_with_files("exit 3", cwd=str(folder))
