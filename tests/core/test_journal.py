"""The intent journal: one flush per submission, and intents a machine restart lost come back.

A real power loss cannot be caused in a test; what it does to a cache folder can:
files written without a flush are gone or hold what they held before, and the
journal's entries are from the boot before. Those are set up here by hand (the
file removed or replaced, the entries' boot id changed) after real submissions.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clusterjob import JobScript, cache, journal, submit_all

JOURNAL = journal.JOURNAL_NAME


@pytest.fixture(autouse=True)
def local_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    JobScript.cache_folder = str(tmp_path / "cache")
    # Each test starts as a fresh process would: nothing settled, journaled or in flight.
    for state in ("_journals", "_settled", "_written", "_inflight"):
        monkeypatch.setattr(cache, state, type(getattr(cache, state))())
    return tmp_path / "cache"


def spool_jobs() -> dict[str, list[str]]:
    """Job name -> IDs of all jobs the local backend received in this test."""
    jobs: dict[str, list[str]] = {}
    for meta in sorted(Path(os.environ["CLUSTERJOB_LOCAL_SPOOL"]).glob("*/meta.json")):
        data = json.loads(meta.read_text())
        jobs.setdefault(data["name"], []).append(data["job_id"])
    return jobs


def entries(folder: Path) -> list[dict[str, object]]:
    path = folder / JOURNAL
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def as_before_a_restart(folder: Path) -> None:
    """Make every entry of the journal look written in the boot before this one."""
    lines = [{**entry, "boot": "boot-before-the-restart"} for entry in entries(folder)]
    (folder / JOURNAL).write_text("".join(json.dumps(line) + "\n" for line in lines))


WORKFLOW = textwrap.dedent(
    """
    import logging, sys
    from clusterjob import JobScript
    logging.basicConfig(level=logging.WARNING)
    JobScript.backend = "local"
    JobScript.rootdir = sys.argv[1]
    JobScript.cache_folder = sys.argv[1] + "/cache"
    for i in range(3):
        JobScript("echo $CLUSTERJOB_ID >> ran-{jobname}", jobname=f"job{i}").submit(
            cache_id=f"job{i}"
        )
    """
)


def run_workflow(tmp_path: Path, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CLUSTERJOB_FAULT_INJECT"}
    if fault:
        env["CLUSTERJOB_FAULT_INJECT"] = fault
    return subprocess.run(
        [sys.executable, "-c", WORKFLOW, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip


def test_a_submission_flushes_the_journal_once_and_no_cache_file(
    local_cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasyncs: list[int] = []
    fsyncs: list[int] = []
    monkeypatch.setattr(journal, "_datasync", datasyncs.append)
    monkeypatch.setattr(os, "fsync", fsyncs.append)
    for i in range(3):
        JobScript("true", jobname=f"j{i}").submit(cache_id=f"j{i}")

    assert len(datasyncs) == 3  # one per intent, none for the results
    assert len(fsyncs) == 1  # the folder, once, when the journal was created
    assert [entry["name"] for entry in entries(local_cached)] == [
        f"clusterjob.j{i}.cache" for i in range(3)
    ]
    assert {entry["record"]["state"] for entry in entries(local_cached)} == {"submitting"}


def test_a_batch_flushes_the_journal_once_whatever_its_size(
    local_cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasyncs: list[int] = []
    monkeypatch.setattr(journal, "_datasync", datasyncs.append)
    submit_all([JobScript("true", jobname=f"b{i}") for i in range(30)], [str(i) for i in range(30)])

    assert len(datasyncs) == 1
    assert len(entries(local_cached)) == 30


def test_after_a_restart_a_lost_intent_comes_back_and_its_job_is_adopted(
    tmp_path: Path, local_cached: Path
) -> None:
    crashed = run_workflow(tmp_path, fault="after_submit")  # job0 submitted, its result not written
    assert crashed.returncode == -9, crashed.stderr
    # The power loss: job0's intent had not reached the disk, the journal had.
    (local_cached / "clusterjob.job0.cache").unlink()
    as_before_a_restart(local_cached)

    rerun = run_workflow(tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "restored" in rerun.stderr and "clusterjob.job0.cache" in rerun.stderr
    jobs = spool_jobs()
    assert sorted(jobs) == ["job0", "job1", "job2"]
    assert all(len(ids) == 1 for ids in jobs.values()), jobs  # job0 adopted, not submitted again
    assert entries(local_cached) == []  # the rerun exited normally: checkpointed


def test_a_restart_puts_a_forced_submission_back_over_the_older_result(
    local_cached: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = JobScript("true", jobname="f")
    old = job.submit(cache_id="f")
    path = local_cached / "clusterjob.f.cache"
    old_file = path.read_text()
    forced = job.submit(cache_id="f", force=True)
    path.write_text(old_file)  # the forced submission's files were lost, the old result is back
    as_before_a_restart(local_cached)
    cache._settled.clear()

    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        again = job.submit(cache_id="f")  # would return the old result without settling first
    assert f"restored {path} from the journal" in caplog.text
    assert again.resumed and again.job_id == forced.job_id != old.job_id
    assert spool_jobs() == {"f": [old.job_id, forced.job_id]}
    assert json.loads(path.read_text())["job_id"] == forced.job_id


def test_settling_keeps_files_that_hold_their_entry_and_other_machines_entries(
    local_cached: Path, caplog: pytest.LogCaptureFixture
) -> None:
    JobScript("true", jobname="k").submit(cache_id="k")
    path = local_cached / "clusterjob.k.cache"
    before = path.read_text()  # the result, with the intent's tag
    as_before_a_restart(local_cached)
    other = {**entries(local_cached)[0], "host": "other-login-node", "name": "clusterjob.o.cache"}
    with open(local_cached / JOURNAL, "a") as out:
        out.write(json.dumps(other) + "\n")
    cache._settled.clear()

    with caplog.at_level(logging.WARNING, logger="clusterjob"), cache.locked(str(path)):
        pass
    assert path.read_text() == before
    assert not (local_cached / "clusterjob.o.cache").exists()  # for that machine to settle
    assert entries(local_cached) == [other]
    assert "restored" not in caplog.text


def test_a_garbled_file_is_set_aside_and_its_record_restored(local_cached: Path) -> None:
    JobScript("true", jobname="g").submit(cache_id="g")
    path = local_cached / "clusterjob.g.cache"
    path.write_bytes(b"\0\0\0\0")  # what a restart can leave of a file never flushed
    as_before_a_restart(local_cached)
    cache._settled.clear()

    with cache.locked(str(path)):
        pass
    assert json.loads(path.read_text())["state"] == "submitting"
    [aside] = local_cached.glob("clusterjob.g.cache.corrupt-*")
    assert aside.read_bytes() == b"\0\0\0\0"


def test_a_killed_process_leaves_its_entries_and_the_next_one_forgets_them(
    tmp_path: Path, local_cached: Path
) -> None:
    killed = run_workflow(tmp_path, fault="after_submit")
    assert killed.returncode == -9
    assert [entry["name"] for entry in entries(local_cached)] == ["clusterjob.job0.cache"]

    rerun = run_workflow(tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert (
        "restored" not in rerun.stderr
    )  # same boot: the files are as the killed process left them
    assert entries(local_cached) == []
    assert (local_cached / JOURNAL).stat().st_size == 0


def test_a_long_journal_is_checkpointed_by_its_writer(
    local_cached: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "CHECKPOINT_BYTES", 1)
    for i in range(4):
        JobScript("true", jobname=f"l{i}").submit(cache_id=f"l{i}")
    # Each intent's append finds the journal too long and forgets the entries whose
    # results are written: only the last submission's intent is left.
    assert [entry["name"] for entry in entries(local_cached)] == ["clusterjob.l3.cache"]


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    book = journal.Journal(str(tmp_path))
    host, boot = journal.machine()
    entry = journal.Entry("a.cache", {"tag": "t"}, host, boot, os.getpid())
    with book.locked() as fd:
        book.append(fd, [entry])
    with open(book.path, "a") as out:
        out.write('{"name": "b.cache", "rec')  # a writer killed in the middle of its append
    with book.locked() as fd:
        assert book.read(fd) == [entry]


def test_a_writer_waiting_while_the_journal_is_replaced_writes_to_the_new_file(
    tmp_path: Path,
) -> None:
    host, boot = journal.machine()
    first, second = journal.Journal(str(tmp_path)), journal.Journal(str(tmp_path))
    kept = journal.Entry("other.cache", {"tag": "o"}, "other-host", boot, 1)
    with first.locked() as fd:
        first.append(fd, [kept])
    with second.locked() as fd:
        second.keep_only(fd, [kept])  # a checkpoint that keeps an entry: a new file
    late = journal.Entry("late.cache", {"tag": "l"}, host, boot, os.getpid())
    with first.locked() as fd:  # first still had the old file open
        first.append(fd, [late])
    with second.locked() as fd:
        assert second.read(fd) == [kept, late]


def test_cache_clear_forgets_the_entries_so_a_restart_brings_nothing_back(
    local_cached: Path,
) -> None:
    JobScript("true", jobname="c").submit(cache_id="c", block=True)
    path = local_cached / "clusterjob.c.cache"
    path.unlink()
    cache.forget([str(path)])
    assert not (local_cached / JOURNAL).exists()
