"""The ``clusterjob`` command on the local backend: every subcommand, option, JSON field, exit code and message.

Most tests call :func:`clusterjob.cli.main` in-process (fast); the README's
"Done when" sequence runs the installed console script in a fresh folder, as
a new user would type it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
from clusterjob import AsyncResult, JobScript, hookimpl
from clusterjob.backends import ClusterjobBackend, local
from clusterjob.backends.local import LocalBackend
from clusterjob.cli import main
from clusterjob.cli.common import CliError
from clusterjob.commands import CommandResult
from clusterjob.errors import CacheError
from clusterjob.plugins import create_plugin_manager, reset_plugin_manager
from clusterjob.status import CANCELLED, COMPLETED, FAILED, RUNNING

HEADER = ["cache_id", "job_id", "backend", "host", "status", "exit", "name"]
JOB_FIELDS = {"cache_id", "job_id", "backend", "remote", "status", "exit_code", "cache_file"}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def script(name: str, body: str) -> str:
    Path(name).write_text(f"#!/bin/bash\n{body}\n")
    return name


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[list[str]]:
    """The rows of the job table in ``out`` (after its header and dashes)."""
    lines = [line.split() for line in out.splitlines()]
    return [row for row in lines[lines.index(HEADER) + 2 :] if row]


def submit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run(capsys, "submit", "--backend", "local", "--cache-folder", "c", *argv)


def pickle_cache(path: Path, protocol: int) -> None:
    """What the original clusterjob left: its AsyncResult state pickled into the cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"job_id": "17", "remote": None, "cache_file": str(path), "status": -1}
    path.write_bytes(pickle.dumps(state, protocol=protocol))


# -- the README's sequence, with the installed command ---------------------------------


def readme_cli_blocks() -> tuple[list[str], str]:
    """The commands of the README's ``clusterjob`` section (sh block), and its sample session (text block)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The `clusterjob` command") :]
    section = section[: section.index("\n## ", 1)]
    sh = section[section.index("```sh\n") + 6 :]
    text = section[section.index("```text\n") + 8 :]
    return sh[: sh.index("```")].splitlines(), text[: text.index("```")]


def bash(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, check=False, timeout=120, env=env
    )


def test_the_readme_sequence_works_as_written(tmp_path: Path) -> None:
    """The README's commands, as a new user types them (the installed command, a fresh folder)."""
    commands, _ = readme_cli_blocks()
    assert (
        commands[0].startswith("python3 -m venv .venv")
        and "pip install ./clusterjob-core ./clusterjob-slurm" in commands[0]
    )
    bin_folder = Path(sys.executable).parent
    assert (bin_folder / "clusterjob").exists(), (
        f"the console script is not installed in {bin_folder}"
    )
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for command in commands[1:]:  # this test runs in a virtualenv with clusterjob installed
        answer = bash(command, env)
        assert answer.returncode == 0, f"{command}: {answer.stderr}"
        outputs.append(answer.stdout)
    assert "local" in outputs[0]
    [job] = json.loads(outputs[3])
    assert job == {
        "cache_id": "hello",
        "job_id": "1",
        "name": "hello",
        "backend": "local",
        "remote": None,
        "state": "submitted",
        "status": "COMPLETED",
        "exit_code": 0,
        "cache_file": "c/clusterjob.hello.cache",
    }
    assert outputs[4].splitlines()[0].split() == HEADER
    assert rows(outputs[4]) == [["hello", "1", "local", "-", "COMPLETED", "0", "hello"]]
    assert (tmp_path / "local-1.out").read_text() == "hello from 1\n"
    assert (
        tmp_path / "hello.sh"
    ).read_text() == 'echo "hello from $CLUSTERJOB_ID"\n'  # not rewritten


def test_the_readme_session_shows_what_the_command_prints(tmp_path: Path) -> None:
    """Each ``$ command`` of the README's sample session prints its lines (stdout, then the progress on stderr)."""
    _, session = readme_cli_blocks()
    Path("hello.sh").write_text('echo "hello from $CLUSTERJOB_ID"\n')
    bin_folder = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    for block in session.split("$ ")[1:]:
        command, *shown = block.rstrip("\n").split("\n")
        answer = bash(command, env)
        progress = [line for line in shown if line.startswith("[clusterjob]")]
        assert [line for line in shown if line not in progress] == answer.stdout.splitlines(), (
            command
        )
        assert all(line in answer.stderr.splitlines() for line in progress), answer.stderr


# -- submit -------------------------------------------------------------------------------


def test_submit_names_the_job_after_the_script_and_never_overwrites_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = submit(capsys, "--cache-id", "a", "--wait", script("analysis.v2.sh", "true"))
    assert (code, err.count("Traceback")) == (0, 0)
    assert rows(out) == [["a", "1", "local", "-", "COMPLETED", "0", "analysis.v2"]]
    assert (tmp_path / "analysis.v2.sh").read_text() == "#!/bin/bash\ntrue\n"
    assert (
        (tmp_path / "analysis.v2.job.sh")
        .read_text()
        .startswith("#!/bin/bash\n#LOCAL --job-name=analysis.v2\n")
    )


def test_submit_json_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = submit(capsys, "--cache-id", "j", "--json", "--wait", script("j.sh", "exit 3"))
    assert code == 1
    [job] = json.loads(out)  # nothing else on stdout
    assert JOB_FIELDS <= set(job)
    assert job | {"cache_file": None} == {
        "cache_id": "j",
        "job_id": "1",
        "name": "j",
        "backend": "local",
        "remote": None,
        "state": "submitted",
        "status": "FAILED",
        "exit_code": 3,
        "cache_file": None,
        "resumed": False,
    }
    assert job["cache_file"] == os.path.join("c", "clusterjob.j.cache")


def test_resubmitting_says_resumed_and_exits_like_the_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = script("slow.sh", "sleep 2; exit 4")
    assert submit(capsys, "--cache-id", "s", body)[:2] == (
        0,
        "submitted job 1 (slow) to local; cache file c/clusterjob.s.cache\n",
    )
    code, out, _ = submit(capsys, "--cache-id", "s", body)
    assert code == 0  # still running: not a failure yet
    assert out.startswith("resumed job 1 (slow) from the cache, not submitted again: ")
    code, out, _ = submit(capsys, "--cache-id", "s", "--wait", body)
    assert code == 1
    assert out.startswith("resumed job 1 (slow) from the cache, not submitted again: ")
    assert rows(out) == [["s", "1", "local", "-", "FAILED", "4", "slow"]]
    code, out, _ = submit(capsys, "--cache-id", "done", "--wait", script("ok.sh", "true"))
    code, out, _ = submit(capsys, "--cache-id", "done", "--json", "ok.sh")
    [job] = json.loads(out)
    assert (code, job["resumed"], job["status"], job["exit_code"]) == (0, True, "COMPLETED", 0)


def test_submit_force_submits_again(capsys: pytest.CaptureFixture[str]) -> None:
    body = script("f.sh", "true")
    submit(capsys, "--cache-id", "f", "--wait", body)
    code, out, _ = submit(capsys, "--cache-id", "f", "--force", "--wait", body)
    assert code == 0
    assert out.startswith("submitted job 2 (f) to local")


def test_submit_without_cache_folder_says_it_cannot_be_followed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "submit", "--backend", "local", "--wait", script("n.sh", "true"))
    assert code == 0
    assert out.splitlines()[0] == (
        "submitted job 1 (n) to local; not cached (no --cache-folder), so status/wait/cancel "
        "cannot find it later"
    )


def test_ini_files_then_options_then_resources(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Path("site.ini").write_text(
        "[Attributes]\nbackend = slurm\ncache_folder = from-ini\n"
        "[Resources]\njobname = ini-name\ntime = 2:00:00\nqueue = batch\n"
    )
    Path("laptop.ini").write_text("[Attributes]\nbackend = local\nmax_sleep_interval = 1\n")
    body = script("x.sh", "true")
    code, out, _ = run(capsys, "render", "--ini", "site.ini", "-r", "time=0:10:00", body)
    assert code == 0
    assert out.splitlines()[:5] == [
        "#!/bin/bash",
        "#SBATCH --job-name=ini-name",
        "#SBATCH --partition=batch",
        "#SBATCH --time=0:10:00",
        "true",
    ]
    code, out, _ = run(
        capsys,
        "submit",
        "--ini",
        "site.ini",
        "--ini",
        "laptop.ini",
        "-r",
        "jobname=mine",
        "--wait",
        body,
    )
    assert code == 0
    assert out.startswith("submitted job 1 (mine) to local; cache file from-ini/clusterjob.mine-")
    assert JobScript.cache_folder is None and JobScript.backend == "slurm"  # nobody else's class


def test_render_submits_nothing_and_takes_the_options_of_submit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = script("r.sh", "echo {greeting} $CLUSTERJOB_ID")
    Path("g.ini").write_text("[Attributes]\ngreeting = hi\n")
    argv = [
        "--backend",
        "local",
        "--cache-folder",
        "c",
        "--cache-id",
        "r",
        "--ini",
        "g.ini",
        "--wait",
    ]
    code, out, err = run(capsys, "render", *argv, "-r", "threads=2", body)
    assert (code, err) == (0, "")
    assert out == "#!/bin/bash\n#LOCAL --job-name=r\n#LOCAL --threads=2\necho hi $LOCAL_JOB_ID\n"
    assert sorted(os.listdir(tmp_path)) == ["g.ini", "r.sh"]  # no script written, no cache


def test_render_json_says_what_submit_would_write(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "render", "--backend", "local", "--json", "-r", "jobname=j", script("r.sh", "true")
    )
    assert code == 0
    assert json.loads(out) == {
        "name": "j",
        "backend": "local",
        "remote": None,
        "filename": "j.job.sh",
        "script": "#!/bin/bash\n#LOCAL --job-name=j\ntrue\n",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--ini", "missing.ini"],
            "cannot read config file 'missing.ini': No such file or directory\n",
        ),
        (["-r", "nodes=two"], "-r nodes=two: nodes = 'two' is not an integer\n"),
        (
            ["--backend", "slrum"],
            "backend 'slrum' is not installed: pip install clusterjob-slrum (installed backends: local,",
        ),
        (
            ["--cache-id", "x"],
            "--cache-id x needs a cache folder: add --cache-folder DIR (or cache_folder in an --ini file)\n",
        ),
        (
            ["--backend", "local", "-r", "colour=red"],
            "the local backend does not support resource colour='red'",
        ),
    ],
)
def test_configuration_errors_exit_2_with_the_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "submit", *argv, script("e.sh", "true"))
    assert (code, out) == (2, "")
    assert err.startswith("clusterjob: error: " + message) and "Traceback" not in err


def test_a_missing_script_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("submit", "render"):
        assert run(capsys, command, "--backend", "local", "nope.sh") == (
            2,
            "",
            "clusterjob: error: cannot read job script nope.sh: No such file or directory\n",
        )


def test_an_ini_error_names_file_section_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    Path("bad.ini").write_text("[Resources]\nnodes = two\n")
    code, _, err = run(capsys, "render", "--ini", "bad.ini", script("b.sh", "true"))
    assert (code, err) == (
        2,
        "clusterjob: error: config file 'bad.ini', section [Resources], key 'nodes': nodes = 'two' is not an integer\n",
    )


# -- status, wait, cancel -------------------------------------------------------------------


def submitted(capsys: pytest.CaptureFixture[str], cache_id: str, body: str, *extra: str) -> None:
    assert submit(capsys, "--cache-id", cache_id, *extra, script(f"{cache_id}.sh", body))[0] in (
        0,
        1,
    )


def started(cache_file: str, timeout: float = 60.0) -> None:
    """Wait until the job of ``cache_file`` runs: a loaded machine can take seconds to start it."""
    result = AsyncResult.from_cache(cache_file)
    deadline = time.monotonic() + timeout
    while result.status != RUNNING:
        assert time.monotonic() < deadline, f"{cache_file} did not start within {timeout} s"
        time.sleep(0.1)


def test_status_over_a_folder_by_id_and_by_file(capsys: pytest.CaptureFixture[str]) -> None:
    submitted(capsys, "ok", "true", "--wait")
    submitted(capsys, "long", "sleep 60")
    started("c/clusterjob.long.cache")  # the table below is about the rows, not start-up latency
    code, out, err = run(capsys, "status", "--cache-folder", "c")
    assert (code, err) == (0, "")  # running is no failure
    assert rows(out) == [
        ["long", "2", "local", "-", "RUNNING", "-", "long"],
        ["ok", "1", "local", "-", "COMPLETED", "0", "ok"],
    ]
    code, out, _ = run(capsys, "status", "--cache-folder", "c", "--json", "ok")
    [job] = json.loads(out)
    assert (code, job["cache_id"], job["status"], job["exit_code"]) == (0, "ok", "COMPLETED", 0)
    code, out, _ = run(capsys, "status", "c/clusterjob.long.cache")
    assert rows(out) == [["long", "2", "local", "-", "RUNNING", "-", "long"]]
    code, out, _ = run(capsys, "cancel", "--cache-folder", "c", "long")
    assert code == 0
    assert rows(out) == [["long", "2", "local", "-", "CANCELLED", "-", "long"]]
    assert AsyncResult.from_cache("c/clusterjob.long.cache").status == CANCELLED
    code, out, _ = run(capsys, "status", "--cache-folder", "c")
    assert code == 1  # a job was cancelled
    code, out, _ = run(capsys, "cancel", "--cache-folder", "c", "--json")  # finished: left alone
    assert code == 0 and [j["status"] for j in json.loads(out)] == ["CANCELLED", "COMPLETED"]


def test_wait_exit_codes_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    submitted(capsys, "a", "sleep 1")
    submitted(capsys, "b", "sleep 1; exit 5")
    code, out, err = run(capsys, "wait", "--cache-folder", "c", "a")
    assert code == 0 and rows(out) == [["a", "1", "local", "-", "COMPLETED", "0", "a"]]
    assert (
        err.splitlines()[-1]
        == "[clusterjob] 1/1 finished: 0 pending, 0 running, 1 completed, 0 failed"
    )
    code, out, err = run(capsys, "wait", "--cache-folder", "c", "--json")
    assert code == 1
    assert [(j["cache_id"], j["status"], j["exit_code"]) for j in json.loads(out)] == [
        ("a", "COMPLETED", 0),
        ("b", "FAILED", 5),
    ]
    submitted(capsys, "h", "sleep 60")
    code, out, err = run(capsys, "wait", "--cache-folder", "c", "--timeout", "1", "h")
    assert code == 1
    assert "clusterjob: 1 of 1 jobs still unfinished after 1.0 s" in err
    run(capsys, "cancel", "--cache-folder", "c", "h")


@pytest.mark.parametrize("timeout", ["-5", "nan"])
def test_wait_refuses_a_timeout_that_is_no_wait(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NaN waited for ever and a negative timeout was taken; now both are usage errors."""
    with pytest.raises(SystemExit) as stopped:
        main(["wait", "--cache-folder", "c", "--timeout", timeout])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"clusterjob wait: error: argument --timeout: {timeout!r} is not a number of seconds"
        " >= 0 (for example --timeout 3600)\n"
    )


def test_wait_redraws_one_line_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    submitted(capsys, "t", "sleep 1")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["wait", "--cache-folder", "c"]) == 0
    shown = terminal.getvalue()
    assert "\r" in shown and "1 completed" in shown  # a redrawn line, or tqdm's bar
    assert rows(capsys.readouterr().out) == [["t", "1", "local", "-", "COMPLETED", "0", "t"]]


@pytest.mark.parametrize(
    "command", ["status", "wait", "cancel", "cache list", "cache show", "cache clear"]
)
def test_naming_no_jobs_is_a_usage_error(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(command.split())
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: clusterjob {command}")
    assert err.endswith("error: name the jobs: --cache-folder DIR, or cache files\n")


@pytest.mark.parametrize(
    "command", ["status", "wait", "cancel", "cache list", "cache show", "cache clear"]
)
def test_what_is_not_there_exits_2(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = command.split()
    assert run(capsys, *argv, "--cache-folder", "nowhere") == (
        2,
        "",
        "clusterjob: error: cache folder nowhere does not exist: give the --cache-folder the jobs were submitted with\n",
    )
    Path("c").mkdir()
    assert run(capsys, *argv, "--cache-folder", "c", "hello") == (
        2,
        "",
        "clusterjob: error: no job with cache id 'hello' in c; `clusterjob cache list --cache-folder c` lists them\n",
    )
    assert run(capsys, *argv, "x.cache") == (
        2,
        "",
        "clusterjob: error: x.cache: no such cache file; name a cache file, or a cache id with --cache-folder DIR\n",
    )


def test_an_empty_folder_lists_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    Path("c").mkdir()
    assert run(capsys, "status", "--cache-folder", "c") == (0, "", "")
    assert run(capsys, "cache", "list", "--cache-folder", "c", "--json") == (0, "[]\n", "")


def test_a_cache_id_with_another_prefix_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    Path("p.ini").write_text("[Attributes]\ncache_prefix = proj\nbackend = local\n")
    assert (
        run(
            capsys,
            "submit",
            "--ini",
            "p.ini",
            "--cache-folder",
            "c",
            "--cache-id",
            "one",
            "--wait",
            script("one.sh", "true"),
        )[0]
        == 0
    )
    code, out, _ = run(capsys, "status", "--cache-folder", "c", "one")
    assert code == 0 and rows(out) == [["one", "1", "local", "-", "COMPLETED", "0", "one"]]


# -- cache list, show, clear ----------------------------------------------------------------


def test_cache_list_reads_without_asking_the_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    submitted(capsys, "l", "sleep 60")
    intent = Path("c/clusterjob.cut.cache")
    intent.write_text(
        json.dumps(
            {
                "clusterjob_cache": 1,
                "state": "submitting",
                "cache_id": "cut",
                "backend": "local",
                "jobname": "cut",
                "tag": "cj-x",
            }
        )
    )
    code, out, _ = run(capsys, "cache", "list", "--cache-folder", "c")
    assert code == 0
    assert rows(out) == [
        ["cut", "-", "local", "-", "submitting", "-", "cut"],
        ["l", "1", "local", "-", "PENDING", "-", "l"],  # as cached: nobody asked since
    ]
    [cut, _] = json.loads(run(capsys, "cache", "list", "--cache-folder", "c", "--json")[1])
    assert (cut["state"], cut["status"], cut["job_id"]) == ("submitting", None, None)
    run(capsys, "cancel", "--cache-folder", "c", "l")


def test_cache_show_prints_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    submitted(capsys, "s", "true", "--wait")
    code, out, _ = run(capsys, "cache", "show", "--cache-folder", "c", "s")
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines() if len(line.split(None, 1)) == 2)
    assert fields["cache_file"] == "c/clusterjob.s.cache"
    assert (fields["status"], fields["exit_code"], fields["jobname"]) == ("COMPLETED", "0", "s")
    assert fields["tag"].startswith("cj-")
    [shown] = json.loads(run(capsys, "cache", "show", "--json", "c/clusterjob.s.cache")[1])
    assert JOB_FIELDS <= set(shown)
    assert shown["record"]["tag"] == fields["tag"] and shown["record"]["clusterjob_cache"] == 1


def test_cache_clear_keeps_unfinished_jobs_unless_all(capsys: pytest.CaptureFixture[str]) -> None:
    submitted(capsys, "done", "true", "--wait")
    submitted(capsys, "run", "sleep 60")
    pickle_cache(Path("c/clusterjob.old.cache"), protocol=2)
    code, out, _ = run(capsys, "cache", "clear", "--cache-folder", "c")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "removed c/clusterjob.done.cache (done: COMPLETED)"
    assert lines[1].startswith(
        "kept c/clusterjob.old.cache: unreadable (cache file c/clusterjob.old.cache is a pickle"
    )
    assert lines[2] == (
        "kept c/clusterjob.run.cache (run: PENDING): it may still run; cancel it, refresh its status "
        "with `clusterjob status`, or remove it anyway with --all"
    )
    assert sorted(os.listdir("c")) == [
        ".clusterjob-journal",  # the run job's intent, until this process checkpoints it
        "clusterjob.old.cache",
        "clusterjob.run.cache",
        "clusterjob.run.cache.lock",
    ]
    run(capsys, "cancel", "--cache-folder", "c", "run")
    code, out, _ = run(capsys, "cache", "clear", "--cache-folder", "c", "--all", "--json")
    assert code == 0
    report = json.loads(out)
    assert [(r["cache_file"], r["removed"]) for r in report] == [
        ("c/clusterjob.old.cache", True),
        ("c/clusterjob.run.cache", True),
    ]
    assert os.listdir("c") == []


# -- old pickle cache files: named, never unpickled ---------------------------------------


PICKLE_MESSAGE = (
    "cache file {path} is a pickle written by the original clusterjob (before 3.0); clusterjob "
    "now caches JSON and never unpickles a file (that could run any code), so it was not read and "
    "was left untouched. If its job may still run, check the scheduler first; then delete the file "
    "to submit the job again, or resubmit with force (submit(force=True), clusterjob submit "
    "--force), which sets the file aside"
)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_cache_file_is_named_not_unpickled(
    protocol: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c" / "clusterjob.old.cache"
    pickle_cache(path, protocol)
    before = path.read_bytes()
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(CacheError) as raised:
        AsyncResult().load(str(path))
    assert str(raised.value) == PICKLE_MESSAGE.format(path=path)
    with pytest.raises(CacheError, match="is a pickle written by the original clusterjob"):
        AsyncResult.from_cache(str(path))
    JobScript.cache_folder = str(tmp_path / "c")
    job = JobScript("true", jobname="old", backend="local")
    with pytest.raises(CacheError) as raised:
        job.submit(cache_id="old")
    assert str(raised.value) == PICKLE_MESSAGE.format(path=path)
    assert path.read_bytes() == before  # left untouched


def test_submit_force_sets_a_pickle_aside(tmp_path: Path) -> None:
    path = tmp_path / "c" / "clusterjob.old.cache"
    pickle_cache(path, 4)
    JobScript.cache_folder = str(tmp_path / "c")
    result = JobScript("true", jobname="old", backend="local").submit(cache_id="old", force=True)
    assert isinstance(result, AsyncResult) and result.job_id == "1"
    [aside] = [p for p in os.listdir(tmp_path / "c") if ".corrupt-" in p]
    assert pickle.loads((tmp_path / "c" / aside).read_bytes())["job_id"] == "17"  # kept as it was


def test_the_command_line_names_a_pickle_and_the_way_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pickle_cache(Path("c/clusterjob.old.cache"), 2)
    message = "clusterjob: error: " + PICKLE_MESSAGE.format(path="c/clusterjob.old.cache") + "\n"
    for argv in (
        ["status", "--cache-folder", "c"],
        ["cache", "list", "--cache-folder", "c"],
        ["status", "c/clusterjob.old.cache"],
    ):
        assert run(capsys, *argv) == (2, "", message)
    code, out, err = submit(capsys, "--cache-id", "old", script("old.sh", "true"))
    assert (code, out, err) == (2, "", message)
    code, out, _ = submit(capsys, "--cache-id", "old", "--force", "old.sh")
    assert code == 0 and out.startswith("submitted job 1 (old) to local")


#: What Python 2's original clusterjob wrote: its AsyncResult instance, pickled with protocols 0 and 2.
PYTHON2_PICKLES = [
    b"ccopy_reg\n_reconstructor\np0\n(cclusterjob\nAsyncResult\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n(dp5\nS'cache_file'\np6\nS'x'\np7\nsS'remote'\np8\nNsS'job_id'\np9\nS'12'\np10\nsb.",
    b"\x80\x02cclusterjob\nAsyncResult\nq\x00)\x81q\x01}q\x02(U\ncache_fileq\x03U\x01xq\x04U\x06remoteq\x05NU\x06job_idq\x06U\x0212q\x07ub.",
]


@pytest.mark.parametrize("content", PYTHON2_PICKLES)
def test_a_python2_pickle_of_an_async_result_is_recognized(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "clusterjob.old.cache"
    path.write_bytes(content)
    with pytest.raises(CacheError) as raised:
        AsyncResult.from_cache(str(path))  # unpickling it would import clusterjob.AsyncResult
    assert str(raised.value) == PICKLE_MESSAGE.format(path=path)


def test_other_unreadable_files_are_not_called_pickles(tmp_path: Path) -> None:
    for content in (
        b"nope",
        b"\x80\x04 not really.",
        b"(dp0\n",
        b"hello.",
        b'{"clusterjob_cache": 1.',
    ):
        path = tmp_path / "x.cache"
        path.write_bytes(content)
        with pytest.raises(CacheError, match="is not valid clusterjob JSON"):
            AsyncResult.from_cache(str(path))


# -- exit codes of jobs -----------------------------------------------------------------------


def test_exit_code_is_recorded_and_cached(tmp_path: Path) -> None:
    JobScript.cache_folder = str(tmp_path / "c")
    JobScript.max_sleep_interval = 1
    ok = JobScript("true", jobname="ok", backend="local").submit(cache_id="ok")
    bad = JobScript("exit 7", jobname="bad", backend="local").submit(cache_id="bad")
    assert ok.exit_code is None
    ok.wait(60)
    bad.wait(60)
    assert (ok.status, ok.exit_code) == (COMPLETED, 0)
    assert (bad.status, bad.exit_code) == (FAILED, 7)
    assert AsyncResult.from_cache(bad.cache_file).exit_code == 7
    assert json.loads(Path(bad.cache_file).read_text())["exit_code"] == 7


def test_a_cache_file_without_exit_code_loads_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "clusterjob.o.cache"
    record = {
        "clusterjob_cache": 1,
        "state": "submitted",
        "backend": "local",
        "status": "COMPLETED",
        "job_id": "3",
    }
    path.write_text(json.dumps(record))
    assert AsyncResult.from_cache(str(path)).exit_code is None


def test_the_local_backend_reads_exit_codes_through_other_lines() -> None:
    answer = CommandResult(
        returncode=0,
        stdout="Welcome 2024\n3 COMPLETED\n3 exit-code 0\n4 FAILED\n4 exit-code -15\n5 RUNNING\n",
        stderr="",
    )
    backend = LocalBackend()
    assert backend.parse_exit_codes(answer, ["3", "4", "5"]) == {"3": 0, "4": -15}
    assert backend.parse_status(answer, ["3", "4", "5"]) == {"3": COMPLETED, "4": FAILED, "5": -1}
    failed = CommandResult(returncode=1, stdout="3 exit-code 0\n", stderr="spool unreadable")
    assert backend.parse_exit_codes(failed, ["3"]) == {}


def test_a_backend_that_reports_no_exit_codes_leaves_them_unknown() -> None:
    answer = CommandResult(0, "3 exit-code 0\n", "")
    assert ClusterjobBackend.parse_exit_codes(LocalBackend(), answer, ["3"]) == {}


def test_the_runner_prints_exit_codes_on_lines_of_their_own(tmp_path: Path) -> None:
    JobScript.max_sleep_interval = 1
    result = JobScript("exit 2", jobname="r", backend="local", rootdir=str(tmp_path)).submit()
    result.wait(60)
    answer = subprocess.run(
        [sys.executable, "-m", "clusterjob.backends.local_runner", "status", result.job_id, "99"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert answer.stdout == f"{result.job_id} FAILED\n{result.job_id} exit-code 2\n99 UNKNOWN\n"


# -- help, usage errors, backends ---------------------------------------------------------------


SUBCOMMANDS = [
    "submit",
    "render",
    "status",
    "wait",
    "cancel",
    "cache",
    "cache list",
    "cache show",
    "cache clear",
    "backends",
]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_help_ends_with_a_worked_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*command.split(), "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: clusterjob {command}")
    example = out[out.rindex("example:") :].splitlines()
    assert example[1].startswith(f"  $ clusterjob {command}")


def test_the_main_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    for line in (
        "  0  all jobs completed",
        "  1  some job failed or was cancelled",
        "  2  usage or configuration error",
    ):
        assert line in out
    assert (
        "  $ clusterjob submit --backend local --cache-folder c --cache-id hello --wait hello.sh"
        in out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["status", "--no-such-option", "x.cache"], "unrecognized arguments: --no-such-option"),
        (["submit"], "the following arguments are required: SCRIPT"),
        (
            ["submit", "-r", "time", "x.sh"],
            "argument -r/--resource: 'time' is not KEY=VALUE (for example -r time=1:00:00)",
        ),
        (["cache"], "the following arguments are required: ACTION"),
        (
            ["wait", "--timeout", "soon", "x.cache"],
            "argument --timeout: 'soon' is not a number of seconds >= 0 (for example --timeout 3600)",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: clusterjob") and message in err


def test_cli_reports_bad_cache_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.cache"
    bad.write_text("nope")
    assert main(["status", str(bad)]) == 2
    assert (
        f"clusterjob: error: cache file {bad} is not valid clusterjob JSON"
        in capsys.readouterr().err
    )


def test_python_m_clusterjob_cli_runs_the_command() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "clusterjob.cli", "status", "--cache-folder", "nowhere"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (answer.returncode, answer.stdout) == (2, "")
    assert (
        answer.stderr
        == "clusterjob: error: cache folder nowhere does not exist: give the --cache-folder the jobs were submitted with\n"
    )


def test_cli_lists_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["backend", "distribution", "version", "scheduler", "commands"]
    assert any(
        line.split(None, 3)[::3] == ["local", "python -I -S local_runner.py"] for line in lines[2:]
    )


def test_cli_backends_exits_1_when_a_plugin_failed(capsys: pytest.CaptureFixture[str]) -> None:
    broken = ModuleType("clusterjob_broken")

    @hookimpl
    def clusterjob_backends() -> list[object]:
        raise ImportError("needs libfoo")

    broken.clusterjob_backends = clusterjob_backends  # type: ignore[attr-defined]
    reset_plugin_manager(create_plugin_manager(load_entrypoints=False, plugins=(local, broken)))
    assert main(["backends"]) == 1
    captured = capsys.readouterr()
    assert (
        "local    -             -        python -I -S local_runner.py" in captured.out.splitlines()
    )
    failed = "  clusterjob_broken (no distribution): clusterjob_backends() raised ImportError: needs libfoo"
    assert captured.out.splitlines().count(failed) == 1
    assert captured.err == ""


def test_a_scheduler_error_exits_2_with_its_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Path("p.ini").write_text(
        textwrap.dedent("""\
        [Attributes]
        backend = local
        prologue = exit 9
    """)
    )
    code, out, err = submit(capsys, "--ini", "p.ini", script("p.sh", "true"))
    assert (code, out) == (2, "")
    assert (
        err.startswith("clusterjob: error: Command '[")
        and "returned non-zero exit status 9." in err
    )


def test_verbose_shows_the_traceback_of_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CliError, match="cache folder nowhere does not exist"):
        main(["-v", "status", "--cache-folder", "nowhere"])


def test_rows_show_the_host_and_interrupted_submissions_are_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("c").mkdir()
    remote = {"clusterjob_cache": 1, "state": "submitted", "backend": "local", "remote": "login1"}
    remote |= {
        "status": "COMPLETED",
        "job_id": "8",
        "cache_id": "far",
        "jobname": "far",
        "exit_code": 1,
    }
    Path("c/clusterjob.far.cache").write_text(json.dumps(remote))
    intent = {"clusterjob_cache": 1, "state": "submitting", "backend": "local", "cache_id": "cut"}
    Path("c/clusterjob.cut.cache").write_text(json.dumps(intent))
    code, out, _ = run(capsys, "cache", "list", "--cache-folder", "c", "far")
    assert (code, rows(out)) == (0, [["far", "8", "local", "login1", "COMPLETED", "1", "far"]])
    code, out, err = run(capsys, "status", "--cache-folder", "c", "cut")
    assert (code, out) == (2, "")
    assert err == (
        "clusterjob: error: cache file c/clusterjob.cut.cache holds an interrupted submission "
        "(state 'submitting'), not a result; submitting it again with the same cache id "
        "(submit(), or clusterjob submit) finds its job or submits it\n"
    )


def test_a_reader_that_leaves_early_ends_the_listing_quietly(tmp_path: Path) -> None:
    """``clusterjob cache list --json | head``: no BrokenPipeError traceback, SIGPIPE's status."""
    template = json.loads(
        '{"backend": "local", "cache_id": "x", "clusterjob_cache": 1, "job_id": "1", '
        '"jobname": "x", "state": "submitted", "status": "COMPLETED"}'
    )
    (tmp_path / "c").mkdir()
    for number in range(600):  # more than a pipe holds, so the listing outlives its reader
        record = {**template, "cache_id": f"job{number}", "jobname": f"job{number}"}
        (tmp_path / "c" / f"clusterjob.job{number}.cache").write_text(json.dumps(record))
    bin_folder = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    answer = bash(
        f"cd {tmp_path} && clusterjob cache list --cache-folder c --json | head -c 10; "
        'echo " status=${PIPESTATUS[0]}"',
        env,
    )
    assert answer.stderr == ""
    assert answer.stdout.endswith(" status=141\n")
