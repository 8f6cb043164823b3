"""The queries' fallbacks, run against fake squeue/sacct/scontrol (what the test cluster cannot show)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clusterjob.backends import CommandResult
from clusterjob.status import CANCELLED, FAILED
from clusterjob_slurm import SlurmBackend, TagLookupError
from clusterjob_slurm.queries import MAX_LISTED_IDS, sacct_selection, squeue_command
from helpers.commands import FakeCommands
from helpers.data import DataFolder
from helpers.results import job_result, look_up_tag

DATA = DataFolder(__file__)
TAG = "cj-0123456789-abcdef"
backend = SlurmBackend()


@pytest.fixture
def fake(tmp_path: Path) -> FakeCommands:
    """Fake squeue/sacct/scontrol: each answers from a table, the first matching pattern wins."""
    return FakeCommands(tmp_path)


COMMENTS_STORED = "AccountingStoreFlags    = job_comment\n"


# -- finished jobs: sacct, then the job completion log ----------------------------------


def test_accounting_disabled_falls_back_to_job_completion_log(fake: FakeCommands) -> None:
    fake.command(
        "sacct",
        (
            "-c*",
            DATA.read("sacct_jobcomp.txt"),
            DATA.read("sacct_jobcomp.stderr"),
            0,
        ),
        ("*", "", DATA.read("sacct_accounting_disabled.stderr"), 1),
    )
    runs = [job_result(backend, job_id) for job_id in ("3", "4", "10")]
    answer = fake.run(backend.status_command(runs, finished=True))
    assert answer.returncode == 0 and "Slurm accounting storage is disabled" in answer.stderr
    assert backend.parse_status(answer, ["3", "4", "10"], finished=True) == {
        "3": FAILED,
        "4": CANCELLED,
        "10": None,
    }
    assert [c.split()[:2] for c in fake.calls()] == [["sacct", "-X"], ["sacct", "-c"]]


def test_no_accounting_and_no_completion_log_is_unknown(fake: FakeCommands) -> None:
    fake.command(
        "sacct",
        ("-c*", "", "Slurm job completion is disabled\n", 1),
        ("*", "", "Slurm accounting storage is disabled\n", 1),
    )
    answer = fake.run(backend.status_command([job_result(backend, "3")], finished=True))
    assert answer.returncode == 1
    assert backend.parse_status(answer, ["3"], finished=True) == {"3": None}


def test_squeue_lists_ids_up_to_a_limit_then_selects_by_user(fake: FakeCommands) -> None:
    assert squeue_command(["1", "2"])[-1] == "--jobs=1,2"
    many = [str(n) for n in range(MAX_LISTED_IDS + 1)]
    fake.command("squeue", ("*", "5|RUNNING|None\n7|COMPLETED|None", "", 0))
    answer = fake.run(squeue_command(many))
    assert fake.calls() == [f"squeue --states=all --noheader --format=%i|%T|%r -u {os.getuid()}"]
    statuses = backend.parse_status(answer, many)
    assert statuses["5"] == -1 and statuses["7"] == 0 and statuses["6"] is None


def test_sacct_selects_many_runs_by_submission_time() -> None:
    assert sacct_selection([job_result(backend, "1"), job_result(backend, "2")]) == ["-j", "1,2"]
    many = [job_result(backend, str(n), submitted_at=1000.0 + n) for n in range(MAX_LISTED_IDS + 1)]
    assert sacct_selection(many, now=5000.0) == ["-S", "now-7600seconds", "-E", "now"]
    many[3].submitted_at = None  # adopted after a crash: submission time unknown
    assert sacct_selection(many, now=5000.0) == ["-S", "2000-01-01T00:00:00", "-E", "now"]


# -- the tag lookup -----------------------------------------------------------------------


def find(fake: FakeCommands) -> list[str]:
    """The jobs carrying TAG, as clusterjob looks them up: the queue, then the accounting."""
    return look_up_tag(backend, TAG, fake.run)


def test_tag_found_in_queue_stops_there(fake: FakeCommands) -> None:
    fake.command(
        "squeue", ("*", f"12|(null)\n13|{TAG}\n14_[1-3]|other cj-0123456789-abcdeg\n", "", 0)
    )
    assert find(fake) == ["13"]
    assert len(fake.calls()) == 1


def test_tag_with_the_users_comment_in_accounting_of_all_history(fake: FakeCommands) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", COMMENTS_STORED, "", 0))
    fake.command(
        "sacct",
        ("*2000-01-01*", f"20|project x\n8_1|project x {TAG}\n8_2|project x {TAG}\n", "", 0),
    )
    assert find(fake) == ["8"]
    assert [c.split()[0] for c in fake.calls()] == ["squeue", "scontrol", "sacct"]


def test_tag_provably_absent(fake: FakeCommands) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", COMMENTS_STORED, "", 0))
    fake.command("sacct", ("*", "20|project x\n", "", 0))
    assert find(fake) == []


def test_tag_lookup_refuses_to_guess_when_squeue_fails(fake: FakeCommands) -> None:
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


def test_tag_lookup_refuses_to_guess_when_sacct_fails(fake: FakeCommands) -> None:
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


def test_tag_lookup_refuses_when_comments_are_not_stored(fake: FakeCommands) -> None:
    fake.command("squeue", ("*", "12|(null)\n", "", 0))
    fake.command("scontrol", ("*", "AccountingStoreFlags    = (null)\n", "", 0))
    fake.command("sacct", ("*", "20|\n", "", 0))
    with pytest.raises(TagLookupError, match=r"needs AccountingStoreFlags=job_comment"):
        find(fake)


def test_tag_still_found_in_queue_when_accounting_is_down(fake: FakeCommands) -> None:
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
