"""The queries' fallbacks, run against fake squeue/sacct/scontrol (what the test cluster cannot show)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from clusterjob.backends import CommandResult
from clusterjob.status import CANCELLED, FAILED
from clusterjob_slurm import SlurmBackend, TagLookupError
from clusterjob_slurm.queries import MAX_LISTED_IDS, sacct_selection, squeue_command

DATA = Path(__file__).parent / "data"
TAG = "cj-0123456789-abcdef"
backend = SlurmBackend()


class Run:
    def __init__(self, job_id: str, submitted_at: float | None = None) -> None:
        self.job_id = job_id
        self.submitted_at = submitted_at


class FakeSlurm:
    """Fake SLURM commands on PATH. Each answers from a table: first matching argument pattern wins."""

    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir()
        self.log = folder / "calls.log"
        self.log.touch()

    def command(self, name: str, *cases: tuple[str, str, str, int]) -> None:
        """cases: (glob over "$*", stdout, stderr, exit code)."""
        lines = ["#!/bin/sh", f'echo "{name} $*" >> "{self.log}"', 'case "$*" in']
        for pattern, stdout, stderr, code in cases:
            lines.append(f"  {pattern})")
            if stdout:
                lines.append(f"    cat <<'CJ_EOF'\n{stdout.rstrip(chr(10))}\nCJ_EOF")
            if stderr:
                lines.append(f"    cat >&2 <<'CJ_EOF'\n{stderr.rstrip(chr(10))}\nCJ_EOF")
            lines.append(f"    exit {code};;")
        lines.append("esac")
        path = self.bin / name
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o755)

    def run(self, command: object) -> CommandResult:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # type: ignore[call-overload]
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
def fake(tmp_path: Path) -> FakeSlurm:
    return FakeSlurm(tmp_path)


COMMENTS_STORED = "AccountingStoreFlags    = job_comment\n"


# -- finished jobs: sacct, then the job completion log ----------------------------------


def test_accounting_disabled_falls_back_to_job_completion_log(fake: FakeSlurm) -> None:
    fake.command(
        "sacct",
        (
            "-c*",
            (DATA / "sacct_jobcomp.txt").read_text(),
            (DATA / "sacct_jobcomp.stderr").read_text(),
            0,
        ),
        ("*", "", (DATA / "sacct_accounting_disabled.stderr").read_text(), 1),
    )
    runs = [Run("3"), Run("4"), Run("10")]
    answer = fake.run(backend.status_command(runs, finished=True))  # type: ignore[arg-type]
    assert answer.returncode == 0 and "Slurm accounting storage is disabled" in answer.stderr
    assert backend.parse_status(answer, ["3", "4", "10"], finished=True) == {
        "3": FAILED,
        "4": CANCELLED,
        "10": None,
    }
    assert [c.split()[:2] for c in fake.calls()] == [["sacct", "-X"], ["sacct", "-c"]]


def test_no_accounting_and_no_completion_log_is_unknown(fake: FakeSlurm) -> None:
    fake.command(
        "sacct",
        ("-c*", "", "Slurm job completion is disabled\n", 1),
        ("*", "", "Slurm accounting storage is disabled\n", 1),
    )
    answer = fake.run(backend.status_command([Run("3")], finished=True))  # type: ignore[list-item]
    assert answer.returncode == 1
    assert backend.parse_status(answer, ["3"], finished=True) == {"3": None}


def test_squeue_lists_ids_up_to_a_limit_then_selects_by_user(fake: FakeSlurm) -> None:
    assert squeue_command(["1", "2"])[-1] == "--jobs=1,2"
    many = [str(n) for n in range(MAX_LISTED_IDS + 1)]
    fake.command("squeue", ("*", "5|RUNNING|None\n7|COMPLETED|None", "", 0))
    answer = fake.run(squeue_command(many))
    assert fake.calls() == [f"squeue --states=all --noheader --format=%i|%T|%r -u {os.getuid()}"]
    statuses = backend.parse_status(answer, many)
    assert statuses["5"] == -1 and statuses["7"] == 0 and statuses["6"] is None


def test_sacct_selects_many_runs_by_submission_time() -> None:
    assert sacct_selection([Run("1"), Run("2")]) == ["-j", "1,2"]  # type: ignore[list-item]
    many = [Run(str(n), submitted_at=1000.0 + n) for n in range(MAX_LISTED_IDS + 1)]
    assert sacct_selection(many, now=5000.0) == ["-S", "now-7600seconds", "-E", "now"]  # type: ignore[arg-type]
    many[3].submitted_at = None  # adopted after a crash: submission time unknown
    assert sacct_selection(many, now=5000.0) == ["-S", "2000-01-01T00:00:00", "-E", "now"]  # type: ignore[arg-type]


# -- the tag lookup -----------------------------------------------------------------------


def find(fake: FakeSlurm) -> list[str]:
    """The two lookups as clusterjob makes them: the queue, then accounting if the queue has no hit."""
    for finished in (False, True):
        answer = fake.run(backend.tag_lookup_command(TAG, finished=finished))
        found = backend.parse_tag_lookup(answer, TAG, finished)
        if found is not None:
            return found
    raise AssertionError("the accounting lookup always concludes")


def test_tag_found_in_queue_stops_there(fake: FakeSlurm) -> None:
    fake.command(
        "squeue", ("*", f"12|(null)\n13|{TAG}\n14_[1-3]|other cj-0123456789-abcdeg\n", "", 0)
    )
    assert find(fake) == ["13"]
    assert len(fake.calls()) == 1


def test_tag_with_the_users_comment_in_accounting_of_all_history(fake: FakeSlurm) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", COMMENTS_STORED, "", 0))
    fake.command(
        "sacct",
        ("*2000-01-01*", f"20|project x\n8_1|project x {TAG}\n8_2|project x {TAG}\n", "", 0),
    )
    assert find(fake) == ["8"]
    assert [c.split()[0] for c in fake.calls()] == ["squeue", "scontrol", "sacct"]


def test_tag_provably_absent(fake: FakeSlurm) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", COMMENTS_STORED, "", 0))
    fake.command("sacct", ("*", "20|project x\n", "", 0))
    assert find(fake) == []


def test_tag_lookup_refuses_to_guess_when_squeue_fails(fake: FakeSlurm) -> None:
    fake.command(
        "squeue",
        ("*", "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)", 1),
    )
    with pytest.raises(TagLookupError) as info:
        find(fake)
    message = str(info.value)
    assert f"cannot tell whether the interrupted submission with tag {TAG} reached SLURM" in message
    assert (
        "squeue exited with 1: slurm_load_jobs error: Unable to contact slurm controller" in message
    )
    assert message.endswith("then remove the cache file or submit with force=True")


def test_tag_lookup_refuses_to_guess_when_sacct_fails(fake: FakeSlurm) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", COMMENTS_STORED, "", 0))
    fake.command(
        "sacct", ("*", "", "sacct: error: Problem talking to the database: Connection refused", 1)
    )
    with pytest.raises(
        TagLookupError,
        match=r"scontrol show config or sacct exited with 1: sacct: error: Problem talking",
    ):
        find(fake)


def test_tag_lookup_refuses_when_comments_are_not_stored(fake: FakeSlurm) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", "AccountingStoreFlags    = (null)\n", "", 0))
    fake.command("sacct", ("*", "20|\n", "", 0))
    with pytest.raises(TagLookupError, match=r"needs AccountingStoreFlags=job_comment"):
        find(fake)


def test_tag_still_found_in_queue_when_accounting_is_down(fake: FakeSlurm) -> None:
    fake.command("squeue", ("*", f"13|{TAG}\n", "", 0))
    fake.command("sacct", ("*", "", "sacct: error: Problem talking to the database", 1))
    assert find(fake) == ["13"]


def test_a_failed_or_empty_lookup_is_not_a_proof() -> None:
    """Regression for the echoed ``done|`` line it replaces: the exit code and the config decide."""
    killed = CommandResult(143, "12|(null)\n", "")
    with pytest.raises(TagLookupError, match="exited with 143"):
        backend.parse_tag_lookup(killed, TAG)
    assert (
        backend.parse_tag_lookup(CommandResult(0, ""), TAG) is None
    )  # not in the queue: ask accounting
    with pytest.raises(TagLookupError, match="does not store job comments"):
        backend.parse_tag_lookup(CommandResult(0, ""), TAG, finished=True)  # scontrol said nothing
