"""Many files over the real loopback sshd: every byte and mode arrives, a few processes per folder
(not three per file), and a failure in the middle names its file and leaves no temporary file."""

from __future__ import annotations

import os
import shutil
import stat
from collections import Counter
from pathlib import Path

import pytest
from clusterjob.errors import SchedulerError, TransientTransportError
from clusterjob.transport import SshTransport
from helpers.commands import fake_command

pytestmark = pytest.mark.ssh

#: Contents a shell could misread: no final line break, quotes, backslashes, ``$``, a line
#: like a here-document delimiter, a NUL byte, non-ASCII, empty, more than one ``printf``.
CONTENTS = [
    "#!/bin/sh\necho job\n",
    "no line break $(touch x) `y` 'q' \"d\" %s %% \\ \u00fcn\u00ef",
    "'",
    "'\\''\n}\n",
    "CJ_EOF_0123456789abcdef\nEOF\n'EOF'\n",
    "a\0b\n",
    "",
    "crlf\r\n",
]
#: Large enough for more than one ``printf``, in a few of the files.
LARGE = "x" * 100_000 + "'" * 50_000


def _counting(remote, tmp_path: Path) -> tuple[SshTransport, Path, Path]:
    """A fresh transport whose ssh commands are logged to one file and whose stdin scripts run
    with stand-ins first on the remote's PATH that log each process of ``cat``, ``chmod``,
    ``mv``, ``mkdir``, ``rmdir``, ``rm``, ``printf`` to another (the remote is this machine)."""
    calls, processes, wrappers = tmp_path / "ssh-calls", tmp_path / "processes", tmp_path / "bin"
    for name in ("cat", "chmod", "mv", "mkdir", "rmdir", "rm", "printf"):
        real = shutil.which(name)
        assert real is not None, f"{name} is not on PATH here"
        fake_command(wrappers, name, f'echo {name} >> {processes}\nexec {real} "$@"\n')
    path_first = f"PATH={wrappers}:$PATH; export PATH; exec /bin/sh -s"
    ssh = fake_command(
        tmp_path,
        "counting-ssh",
        f'echo "$$" >> {calls}\n'
        'for a; do shift; [ "$a" != "exec /bin/sh -s" ] || a=' + f"'{path_first}'"
        + '; set -- "$@" "$a"; done\nexec ssh "$@"\n',
    )  # fmt: skip
    calls.touch()
    processes.touch()
    return (
        SshTransport(remote.host, ssh=f"{ssh} -F {remote.config}", scp=remote.scp),
        calls,
        processes,
    )


def test_many_files_with_hostile_names_arrive_exactly_with_a_few_processes_per_folder(
    remote, tmp_path: Path, canaries
) -> None:
    ssh, calls, processes = _counting(remote, tmp_path)
    names = canaries.names()
    folders = [str(tmp_path / "remote" / name) for name in canaries.names(newlines=False)[:4]]
    files = []
    for i in range(1200):
        name = f"{names[i % len(names)]} {i}"
        data = LARGE if i % 500 == 7 else CONTENTS[i % len(CONTENTS)]
        files.append((f"{folders[i % 4]}/{name}", data, i % 3 == 0))
    ssh.write_files(files, folders)
    assert len(calls.read_text().splitlines()) == 1
    for path, data, executable in files:
        assert Path(path).read_bytes() == data.encode("utf-8"), path
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o755 if executable else 0o644), path
    assert [p for p in (tmp_path / "remote").rglob("*") if ".cj-" in p.name] == []
    ran = Counter(processes.read_text().split())
    # per folder: mkdir -p, the temporary folder's mkdir, chmod 755, chmod 644, mv, rmdir;
    # chmod and mv once more per 64 KiB of names (300 long names a folder may take two)
    assert set(ran) == {"mkdir", "chmod", "mv", "rmdir"}, ran
    assert (
        (ran["mkdir"], ran["rmdir"]) == (8, 4) and 8 <= ran["chmod"] <= 16 and 4 <= ran["mv"] <= 8
    )
    assert canaries.fired() == []


def test_a_file_that_cannot_be_renamed_into_place_is_named_and_nothing_is_left_behind(
    remote, tmp_path: Path
) -> None:
    ssh, calls, _ = _counting(remote, tmp_path)
    folder = tmp_path / "jobs"
    (folder / "job3.sh" / "a folder in the way").mkdir(parents=True)
    files = [(str(folder / f"job{i}.sh"), f"echo {i}\n", True) for i in range(6)]
    files.append((str(tmp_path / "later" / "array.sh"), "echo array\n", True))
    ran = tmp_path / "ran"
    with pytest.raises(SchedulerError) as info:
        ssh.run_with_files(["touch", str(ran)], files=files, folders=[str(tmp_path / "later")])
    assert not isinstance(info.value, TransientTransportError)
    message = str(info.value)
    assert message.startswith(f"command 'write {folder}/job3.sh' on cjtest failed with exit")
    assert "job3.sh" in info.value.stderr and "#clusterjob" not in message
    assert not ran.exists() and not (tmp_path / "later" / "array.sh").exists()
    assert [p for p in tmp_path.rglob("*") if ".cj-" in p.name] == []
    assert len(calls.read_text().splitlines()) == 1
