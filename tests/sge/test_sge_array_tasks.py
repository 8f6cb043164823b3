"""Array tasks as jobs of their own (what ``submit_all`` packs), from captured Son of Grid Engine
8.1.9 output (tests/sge/data).

The captures, from arrays of 4 tasks submitted with ``-t 1-4``, ``-A <tag>`` and
``-ac CLUSTERJOB_TAG=<tag>`` (the dispatcher's headers):

* ``qstat_xml_array_pending_range.xml``: job 338 with tasks 1 and 2 running (one entry
  each) and 3, 4 pending in one entry ``3,4``; job 339 all pending, ``1-4:1``.
* ``qstat_xml_array_pending_list_after_qdel.xml``: the same after ``qdel 339.2`` and
  ``qdel 339 -t 3``: job 339's pending entry is ``1,4``.
* ``qacct_array_tasks_killed_exit3_ok.txt``: ``qacct -j 338`` once it ended: task 1 deleted
  while running (``failed 100``, ``exit_status 137``), task 2 ``exit 3``, tasks 3 and 4 exit 0.
* ``qstat_j_all_array_with_tag.txt``: ``qstat -j '*'`` of array job 340, tagged.
"""

from __future__ import annotations

import pytest
from clusterjob import JobScript
from clusterjob.backends import SubmissionContext
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_sge import SgeBackend
from clusterjob_sge.parsing import listed_tasks, parse_qstat_xml_entries
from helpers.data import DataFolder
from helpers.results import job_result, ok

DATA = DataFolder(__file__)


@pytest.fixture
def backend() -> SgeBackend:
    return SgeBackend()


def test_grid_engine_packs_with_sge_task_id_up_to_max_aj_tasks(backend: SgeBackend) -> None:
    """sge_conf(5): max_aj_tasks defaults to 75000 (the test cell's ``qconf -sconf`` says so too);
    the task's index is in SGE_TASK_ID; array task 4 of job 338 is ``338.4`` to qstat/qdel."""
    assert backend.can_pack()
    assert (backend.array_task_variable, backend.max_array_size) == ("SGE_TASK_ID", 75000)
    assert backend.task_job_id("338", 4) == "338.4"
    assert backend.array_resources({"jobname": "sweep"}, 1, 4) == {"jobname": "sweep", "-t": "1-4"}


def test_the_array_option_is_a_t_header_line_and_the_tag_stays_in_account_and_context(
    backend: SgeBackend,
) -> None:
    """What the tag lookup finds the array by: ``-A`` and ``-ac`` of the array's own headers."""
    job = JobScript("true", jobname="sweep", backend="sge")
    job.resources.update(backend.array_resources(dict(job.resources), 1, 4))
    lines = backend.resource_headers(job, SubmissionContext(tag="cj-probe-tag"))
    assert "#$ -t 1-4" in lines
    assert {"#$ -A cj-probe-tag", "#$ -ac CLUSTERJOB_TAG=cj-probe-tag"} <= set(lines)
    assert backend.array_task_ids(job) == ["1", "2", "3", "4"]


def test_pending_tasks_share_an_entry_and_running_ones_have_their_own(backend: SgeBackend) -> None:
    listing = ok(DATA.read("qstat_xml_array_pending_range.xml"))
    asked = [f"338.{k}" for k in range(1, 5)] + [f"339.{k}" for k in (1, 4, 5)]
    statuses = backend.parse_status(listing, asked)
    assert [statuses[j] for j in asked] == [RUNNING, RUNNING, PENDING, PENDING] + [
        PENDING,
        PENDING,
        None,  # no task 5: not listed, so qacct is asked
    ]
    assert (statuses["338"], statuses["339"]) == (RUNNING, PENDING)  # the whole arrays


def test_tasks_deleted_while_pending_leave_the_pending_list(backend: SgeBackend) -> None:
    """After ``qdel 339.2`` and ``qdel 339 -t 3`` qstat lists job 339's pending tasks as ``1,4``."""
    listing = ok(DATA.read("qstat_xml_array_pending_list_after_qdel.xml"))
    asked = [f"339.{k}" for k in range(1, 5)]
    assert [backend.parse_status(listing, asked)[j] for j in asked] == [
        PENDING,
        None,
        None,
        PENDING,
    ]


def test_a_task_list_qstat_cannot_have_printed_is_unknown_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = DATA.read("qstat_xml_array_pending_range.xml").replace("1-4:1", "1-x")
    entries = parse_qstat_xml_entries(text)
    assert entries is not None
    assert ("339", "1") not in listed_tasks(entries)
    assert "cannot read the tasks '1-x' of Grid Engine job 339" in caplog.text


def test_each_task_ends_by_its_own_accounting_record(backend: SgeBackend) -> None:
    accounting = ok(DATA.read("qacct_array_tasks_killed_exit3_ok.txt"))
    asked = [f"338.{k}" for k in range(1, 6)]
    statuses = backend.parse_status(accounting, asked, finished=True)
    assert [statuses[j] for j in asked] == [CANCELLED, FAILED, COMPLETED, COMPLETED, None]
    assert statuses["338"] == FAILED  # the whole array: a task failed
    assert backend.parse_exit_codes(accounting, [*asked, "338"], finished=True) == {
        "338.2": 3,
        "338.3": 0,
        "338.4": 0,  # deleted task 1: 137 is qdel's SIGKILL, not the script's
    }


def test_exit_code_of_a_job_from_accounting_only_when_it_ended_on_its_own(
    backend: SgeBackend,
) -> None:
    """``failed 0``: the script's exit status; qdel (100) or h_rt (37): Grid Engine's kill."""
    assert backend.parse_exit_codes(ok(DATA.read("qacct_failed.txt")), ["5"], finished=True) == {
        "5": 3
    }
    for fixture, number in [("qacct_cancelled_running.txt", "6"), ("qacct_timeout_h_rt.txt", "8")]:
        assert backend.parse_exit_codes(ok(DATA.read(fixture)), [number], finished=True) == {}
    assert backend.parse_exit_codes(ok(DATA.read("qacct_failed.txt")), ["5"]) == {}  # the listing


def test_one_accounting_query_per_array_whatever_the_number_of_tasks(backend: SgeBackend) -> None:
    runs = [job_result(backend, f"338.{k}") for k in range(1, 5)] + [job_result(backend, "12")]
    command = backend.status_command(runs, finished=True)
    assert command is not None and command[-2:] == ["338", "12"]
    assert backend.status_command(runs) == ["qstat", "-xml"]


def test_cancel_of_a_task_deletes_that_task_only(backend: SgeBackend) -> None:
    """``qdel 339.2`` answered "root has deleted job-array task 339.2" and left 1, 3, 4 queued."""
    assert backend.cmd_cancel(job_result(backend, "339.2")) == ["qdel", "339.2"]
    assert backend.cmd_cancel(job_result(backend, "339")) == ["qdel", "339"]


def test_the_tag_lookup_finds_the_array_job_once(backend: SgeBackend) -> None:
    """Queued: ``qstat -j '*'`` has one block per job, tasks included; ended: ``qacct`` has one
    record per task, all with the array's account: the array's number, once."""
    queued = ok(DATA.read("qstat_j_all_array_with_tag.txt"))
    assert backend.parse_tag_lookup(queued, "cj-probe-tag") == ["340"]
    assert backend.get_job_id("340.1-4:1\n") == "340"  # what task_job_id is given
    ended = ok(DATA.read("qacct_array_tasks_killed_exit3_ok.txt"))
    assert backend.parse_tag_lookup(ended, "cj-probe-tag", finished=True) == ["338"]
