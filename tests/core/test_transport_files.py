"""Writing files for a submission: the stdin script of the SSH transport (run here by ``sh``),
the folder probe remembered per process, and the local ``run_with_files``."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
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


#: Shells a remote's ``/bin/sh`` may be; the stdin script must mean the same in each.
SHELLS = {
    "sh": ["/bin/sh"],
    "dash": ["/bin/dash"],
    "bash": ["/bin/bash"],
    "bash --posix": ["/bin/bash", "--posix"],
    "ksh": ["/bin/ksh"],
    "busybox sh": ["/bin/busybox", "sh"],
}


def _run_script(
    script: str, cwd: Path, shell: Sequence[str] = ("/bin/sh",), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*shell, "-s"], input=script, cwd=cwd, capture_output=True, text=True, check=False, env=env
    )


def _shell(name: str) -> list[str]:
    """The command line of the shell ``name``; the test is skipped, saying so, if it is missing."""
    argv = SHELLS[name]
    if not os.access(argv[0], os.X_OK):
        pytest.skip(f"{argv[0]} is not installed here (apt-get install {name.split()[0]})")
    return argv


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


# -- many files: exact bytes, modes, few processes, failures in the middle ---------------

#: Names a shell could take apart: spaces, a leading dash, globs, quotes, ``$``, a
#: backslash, a line break, non-ASCII, a hidden name.
AWKWARD_NAMES = [
    "sp ace", "-dash", "*", "glob*?[x]", "q'uote", 'd"q', "back\\slash", "$HOME $(touch pwned)",
    "new\nline", "\u00fcn\u00ef", ".hidden", "CJ_EOF_0123456789abcdef",
]  # fmt: skip
#: Contents that a ``%s`` argument in single quotes has to carry as they are.
AWKWARD_CONTENTS = [
    *CONTENTS,
    "'",
    "'\\''\n'",
    "}\n' ; touch pwned ; '\n",
    "crlf\r\nline\r\n",
    "\u00fc" * 20_000 + "'" * 20_000,
]


def _awkward_files(tmp_path: Path) -> list[tuple[str, str, bool]]:
    """Files in four folders (one relative, one the current folder), awkward names and contents."""
    folders = [str(tmp_path / "f o"), str(tmp_path / "-lead"), str(tmp_path / "g*?[x]"), "rel dir"]
    files = []
    for i, name in enumerate(AWKWARD_NAMES * 2):
        folder = folders[(i + i // len(AWKWARD_NAMES)) % len(folders)]  # a name once per folder
        data = AWKWARD_CONTENTS[i % len(AWKWARD_CONTENTS)]
        files.append((f"{folder}/{name}", data, i % 3 == 0))
    files.append(("in the current folder", "here\n", False))
    return files


@pytest.mark.parametrize("shell", list(SHELLS))
def test_every_shell_writes_awkward_names_and_contents_exactly(shell: str, tmp_path: Path) -> None:
    """Whatever the remote's ``sh`` is, and whatever its umask: every byte, every mode."""
    argv = _shell(shell)
    files = _awkward_files(tmp_path)
    files.append((files[1][0], "written twice: the last one wins\n", True))
    folders = sorted({os.path.dirname(path) for path, _, _ in files} - {""})
    steps, _ = transport_module._write_steps(files, folders)
    script = "umask 077\n" + transport_module._stdin_script(steps, "pwd")
    done = _run_script(script, tmp_path, argv)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{tmp_path}\n", "")
    last = {path: (data, executable) for path, data, executable in files}
    assert len(last) == len(files) - 1
    for path, (data, executable) in last.items():
        written = tmp_path / path
        assert written.read_bytes() == data.encode("utf-8"), path
        assert stat.S_IMODE(written.stat().st_mode) == (0o755 if executable else 0o644), path
    assert not list(tmp_path.rglob("pwned")) and not list(tmp_path.rglob(".cj-*"))


def _counting_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ``PATH`` starts with a folder of stand-ins that log their name to
    the returned file and run the real command: a builtin is never logged."""
    wrappers, log = tmp_path / "wrappers", tmp_path / "processes.log"
    wrappers.mkdir()
    for name in ("cat", "chmod", "mv", "mkdir", "rmdir", "rm", "printf", "test", "[", "cp", "tee"):
        real = shutil.which(name)
        if real is not None:
            (wrappers / name).write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec {real} "$@"\n')
            (wrappers / name).chmod(0o755)
    return {**os.environ, "PATH": f"{wrappers}:{os.environ['PATH']}"}, log


@pytest.mark.parametrize("shell", list(SHELLS))
def test_the_processes_of_a_write_do_not_grow_with_the_number_of_files(
    shell: str, tmp_path: Path
) -> None:
    """Contents are written by the builtin ``printf``; a folder costs ``mkdir``, a ``chmod`` per
    mode, a ``mv`` and ``rmdir`` (``chmod`` and ``mv`` once more per 64 KiB of names)."""
    argv = _shell(shell)
    env, log = _counting_path(tmp_path)
    counts = {}
    for n in (20, 2000):
        where = tmp_path / f"n{n}"
        folders = [str(where / "a"), str(where / "b")]
        files = [(f"{folders[i % 2]}/job{i}.sh", f"echo {i}\n" * 5, i % 3 == 0) for i in range(n)]
        files += [(f"{folders[0]}/aux{i}", f"aux {i}", False) for i in range(n // 2)]
        steps, _ = transport_module._write_steps(files, folders)
        log.write_text("")
        done = _run_script(transport_module._stdin_script(steps, None), tmp_path, argv, env)
        assert (done.returncode, done.stderr) == (0, "")
        assert all(Path(path).read_text() == data for path, data, _ in files)
        counts[n] = log.read_text().split()
    # 2 folders: mkdir -p of each, then mkdir, chmod 755, chmod 644, mv, rmdir
    if shell != "busybox sh":  # busybox runs some commands as applets, without PATH
        assert sorted(counts[20]) == sorted(["mkdir"] * 4 + ["chmod"] * 4 + ["mv", "rmdir"] * 2)
    assert set(counts[2000]) <= {"mkdir", "chmod", "mv", "rmdir"}
    assert len(counts[2000]) <= 30  # 3,000 files: 9,000 processes before


def test_a_failed_rename_in_the_middle_names_its_file_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    """Of one ``mv`` of several files, the first that is still in the temporary folder is named."""
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    (folder_b / "b2" / "in the way").mkdir(parents=True)  # a folder where b2 should go
    files = [
        (str(folder_a / "a1"), "a1\n", False),
        (str(folder_b / "b1"), "b1\n", True),
        (str(folder_b / "b2"), "b2\n", True),
        (str(folder_b / "b3"), "b3\n", False),
        (str(tmp_path / "c" / "c1"), "c1\n", False),
    ]
    steps, descriptions = transport_module._write_steps(files, [str(folder_a), str(tmp_path / "c")])
    for name in ("sh", "dash", "bash"):
        done = _run_script(
            transport_module._stdin_script(steps, f"touch {tmp_path}/ran"), tmp_path, _shell(name)
        )
        assert done.returncode != 0
        assert done.stderr.endswith(f"\n{transport_module._STEP_MARK} 4\n"), name
        assert descriptions[4] == f"write {folder_b}/b2"
        assert "b2" in done.stderr  # mv's own message says why
        assert (folder_a / "a1").read_text() == "a1\n" and not (tmp_path / "c" / "c1").exists()
        assert not (tmp_path / "ran").exists()
        assert [p for p in tmp_path.rglob("*") if ".cj-" in p.name] == []


def test_a_failed_write_in_the_middle_names_its_file_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    """A file that cannot be created (its name is too long) stops the script before anything of
    its folder is renamed into place; the temporary folder is removed."""
    files = [(str(tmp_path / "a" / f"a{i}"), f"a{i}\n", False) for i in range(3)]
    files.insert(2, (str(tmp_path / "a" / ("n" * 300)), "too long a name\n", False))
    steps, descriptions = transport_module._write_steps(files, [str(tmp_path / "a")])
    for name in ("sh", "dash", "bash"):
        done = _run_script(
            transport_module._stdin_script(steps, "echo ran"), tmp_path, _shell(name)
        )
        assert done.returncode != 0 and done.stdout == ""
        assert done.stderr.endswith(f"\n{transport_module._STEP_MARK} 3\n"), name
        assert descriptions[3] == f"write {tmp_path}/a/{'n' * 300}"
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["a"]


def test_a_path_that_names_a_folder_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    for path in (f"{tmp_path}/", f"{tmp_path}/.", f"{tmp_path}/sub/.."):
        with pytest.raises(ValueError, match=f"cannot write the file '{path}': the path names a"):
            transport_module._write_steps(
                [(str(tmp_path / "ok"), "ok\n", False), (path, "x", False)], []
            )


def test_large_writes_are_cut_into_steps_that_chunks_can_send_apart(tmp_path: Path) -> None:
    """One folder's files are cut into steps of at most ``size`` characters of script, each a
    complete write (its own temporary folder), so that a chunk never holds half of one."""
    folder = tmp_path / "jobs"
    files = [(str(folder / f"job{i}.sh"), f"echo {i}\n" * 100, i % 2 == 0) for i in range(200)]
    steps, _ = transport_module._write_steps(files, [str(folder)], size=16 * 1024)
    assert 8 <= len(steps) - 1 <= 16
    assert all(len(step) <= 16 * 1024 + 2000 for step in steps)
    for chunk in transport_module._chunks(steps, 32 * 1024):
        done = _run_script(transport_module._stdin_script(chunk, None), tmp_path)
        assert (done.returncode, done.stderr) == (0, "")
    for path, data, executable in files:
        assert Path(path).read_text() == data
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o755 if executable else 0o644)
    assert [p.name for p in folder.iterdir() if ".cj-" in p.name] == []
