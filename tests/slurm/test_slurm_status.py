"""Reading squeue/sacct results (captured from the test cluster, see capture_fixtures.sh) into statuses.

A parser gets the whole result (exit code, stdout, stderr), as the command left it.
"""

from __future__ import annotations

import logging

import pytest
from clusterjob import JobScript
from clusterjob.backends import CommandResult
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_slurm import SlurmBackend
from clusterjob_slurm.queries import expand_tasks, finished_statuses, queue_statuses, task_statuses
from clusterjob_slurm.states import aggregate, parse_records, state_to_status
from helpers.data import DataFolder
from helpers.results import ok

DATA = DataFolder(__file__)

backend = SlurmBackend()


def statuses(
    stdout: str, job_ids: list[str], finished: bool = False, site: SlurmBackend = backend
) -> dict:
    """Status per asked job ID from a successful query's stdout (other jobs it reports left out)."""
    found = site.parse_status(ok(stdout), job_ids, finished)
    return {job_id: found[job_id] for job_id in job_ids}


@pytest.mark.parametrize(
    ("states", "status"),
    [
        (["PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"], PENDING),
        (["RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"], RUNNING),
        (["COMPLETED"], COMPLETED),
        (["CANCELLED", "CANCELLED by 0", "CANCELLED by 1000", "CANCELLED+", "REVOKED"], CANCELLED),
        (["FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
          "SPECIAL_EXIT"], FAILED),
        (["PD", "CF", "RQ"], PENDING),
        (["R", "CG", "S"], RUNNING),
        (["CD"], COMPLETED),
        (["CA"], CANCELLED),
        (["F", "TO", "NF", "OOM", "PR", "BF", "DL"], FAILED),
    ],
)  # fmt: skip
def test_every_state_maps(states: list[str], status: int) -> None:
    for state in states:
        assert state_to_status(state) == status, state


def test_status_mapping_attribute_is_the_long_form_table() -> None:
    assert backend.status_mapping["TIMEOUT"] == FAILED
    assert backend.status_mapping["COMPLETING"] == RUNNING
    assert len(backend.status_mapping) >= 24


def test_status_mapping_of_a_site_subclass_is_honoured() -> None:
    """Regression: every query read the module's table, so an overridden ``status_mapping`` was ignored."""

    class CheckpointingSite(SlurmBackend):
        # Jobs here checkpoint and stop at their walltime: that is success.
        status_mapping = {**SlurmBackend.status_mapping, "TIMEOUT": COMPLETED}

    site = CheckpointingSite()
    assert site.get_status("5|TIMEOUT|None\n") == COMPLETED
    assert (
        site.get_status("5|TO|None\n") == COMPLETED
    )  # squeue's compact code, read as its long name
    assert statuses("5|TIMEOUT|None\n6|RUNNING|None\n", ["5", "6"], site=site) == {
        "5": COMPLETED,
        "6": RUNNING,
    }
    accounting = "5|TIMEOUT|None|0:0\n6|FAILED|None|1:0\n"
    assert (
        site.get_status(accounting, finished=True) is None
    )  # two jobs: the single query does not tell
    assert statuses(accounting, ["5", "6"], finished=True, site=site) == {
        "5": COMPLETED,
        "6": FAILED,
    }
    assert site.get_task_status("9_1|TIMEOUT|None|0:0\n", None) == {"1": COMPLETED}  # type: ignore[arg-type]
    assert backend.get_status("5|TIMEOUT|None\n") == FAILED  # the class itself is unchanged


def test_unknown_state_is_unknown_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clusterjob.slurm"):
        assert state_to_status("SOMETHING_NEW") is None
    assert "unknown SLURM job state 'SOMETHING_NEW'" in caplog.text
    assert backend.get_status("5|SOMETHING_NEW|None\n") is None


def test_dependency_never_satisfied_is_final_cancelled() -> None:
    assert state_to_status("PENDING", "DependencyNeverSatisfied") == CANCELLED
    assert state_to_status("PENDING", "Dependency") == PENDING
    assert backend.get_status("30|PENDING|DependencyNeverSatisfied\n") == CANCELLED
    assert backend.get_status(DATA.read("squeue_dependency_never_satisfied.txt")) == CANCELLED


def test_parse_records_skips_steps_errors_and_blank_lines() -> None:
    records = parse_records(
        "12|RUNNING|None\n12.batch|RUNNING|\nslurm_load_jobs error: x\n\n12_[3-4%1]|PENDING|JobArrayTaskLimit\n"
    )
    assert [(r.job_id, r.base_id, r.task, r.state) for r in records] == [
        ("12", "12", None, "RUNNING"),
        ("12_[3-4%1]", "12", "[3-4%1]", "PENDING"),
    ]


def test_aggregate_rules() -> None:
    assert aggregate([PENDING, PENDING]) == PENDING
    assert aggregate([PENDING, RUNNING]) == RUNNING
    assert aggregate([PENDING, COMPLETED]) == RUNNING  # under way
    assert aggregate([COMPLETED, COMPLETED]) == COMPLETED
    assert aggregate([COMPLETED, CANCELLED]) == CANCELLED
    assert aggregate([CANCELLED, FAILED, COMPLETED]) == FAILED
    assert aggregate([COMPLETED, None]) is None
    assert aggregate([]) is None


# -- squeue -----------------------------------------------------------------------


def test_single_job_in_queue() -> None:
    assert backend.get_status("33|PENDING|Priority\n") == PENDING
    assert backend.get_status("33|RUNNING|None\n") == RUNNING
    assert backend.get_status("33|COMPLETING|None\n") == RUNNING
    assert (
        backend.get_status("33|COMPLETED|None\n") == COMPLETED
    )  # squeue --states=all: until MinJobAge
    assert backend.get_status("33|TIMEOUT|TimeLimit\n") == FAILED


def test_purged_job_is_not_in_queue_not_a_failure() -> None:
    assert "Invalid job id specified" in DATA.read("squeue_purged_single.stderr")
    assert backend.get_status(DATA.read("squeue_purged_single.txt")) is None


def first_id(name: str) -> str:
    return parse_records(DATA.read(name))[0].base_id


def test_batched_squeue_maps_every_run_and_leaves_purged_ones_unknown() -> None:
    done = first_id("squeue_with_purged_id.txt")
    assert statuses(DATA.read("squeue_with_purged_id.txt"), [done, "99999999"]) == {
        done: COMPLETED,
        "99999999": None,
    }


def test_batched_squeue_mixed() -> None:
    text = DATA.read("squeue_many_mixed.txt")
    ids = [r.job_id for r in parse_records(text)]
    found = statuses(text, ids)
    by_state = {r.job_id: r.state for r in parse_records(text)}
    expected = {
        "PENDING": CANCELLED,
        "RUNNING": RUNNING,
        "COMPLETED": COMPLETED,
        "CANCELLED": CANCELLED,
        "FAILED": FAILED,
    }
    assert sorted(by_state.values()) == sorted(expected)  # the fixture shows each of them
    assert found == {job_id: expected[state] for job_id, state in by_state.items()}


def test_array_pending_folded() -> None:
    assert DATA.read("squeue_array_pending_folded.txt").endswith("_[1-4]|PENDING|JobHeldUser\n")
    assert backend.get_status(DATA.read("squeue_array_pending_folded.txt")) == PENDING


def test_array_running_with_a_failed_task() -> None:
    assert backend.get_status(DATA.read("squeue_array_running_one_failed.txt")) == RUNNING
    array = first_id("squeue_array_running_one_failed.txt")
    assert statuses(DATA.read("squeue_array_running_one_failed.txt"), [array]) == {array: RUNNING}


def test_finished_array_in_queue_defers_to_accounting_unless_a_task_failed() -> None:
    # The controller may already have purged a task that failed early: only accounting can say COMPLETED.
    assert backend.get_status("25_2|COMPLETED|None\n25_3|COMPLETED|None\n") is None
    assert backend.get_status("25_2|COMPLETED|None\n25_3|CANCELLED|None\n") is None
    assert backend.get_status("25_1|FAILED|NonZeroExitCode\n25_3|COMPLETED|None\n") == FAILED


def test_a_run_holding_one_array_task_finds_its_record() -> None:
    assert statuses("25_3|RUNNING|None\n25_4|PENDING|Resources\n", ["25_4", "25"]) == {
        "25_4": PENDING,
        "25": RUNNING,
    }


# -- sacct ------------------------------------------------------------------------


def test_sacct_states() -> None:
    assert DATA.read("sacct_cancelled_by.txt").split("|")[1] == "CANCELLED by 0"
    assert backend.get_status(DATA.read("sacct_timeout.txt"), finished=True) == FAILED
    assert backend.get_status(DATA.read("sacct_cancelled_by.txt"), finished=True) == CANCELLED


def test_sacct_mixed_batch() -> None:
    text = DATA.read("sacct_mixed.txt")
    states = {
        line.split("|")[0]: line.split("|")[1] for line in DATA.read("sacct_mixed.txt").splitlines()
    }
    expected = {
        "FAILED": FAILED,
        "CANCELLED": CANCELLED,
        "CANCELLED by 0": CANCELLED,
        "TIMEOUT": FAILED,
        "COMPLETED": COMPLETED,
    }
    assert set(states.values()) >= {"FAILED", "CANCELLED by 0", "TIMEOUT", "COMPLETED"}
    assert statuses(text, list(states), finished=True) == {
        job_id: expected[state] for job_id, state in states.items()
    }


def test_sacct_array_with_one_failed_task_is_failed() -> None:
    text = DATA.read("sacct_array_one_failed.txt")
    assert backend.get_status(text, finished=True) == FAILED
    completed = text.replace("FAILED|None|3:0", "COMPLETED|None|0:0")
    assert backend.get_status(completed, finished=True) == COMPLETED


def test_no_accounting_record_is_never_completed() -> None:
    assert DATA.read("sacct_unknown_job.txt") == ""
    assert backend.get_status("", finished=True) is None
    assert statuses("", ["5"], finished=True) == {"5": None}


def test_job_completion_log_fallback() -> None:
    """sacct failed (accounting disabled, on stderr), then ``sacct -c`` answered: three-field records."""
    jobcomp = DATA.read("sacct_jobcomp.txt")
    stderr = DATA.read("sacct_accounting_disabled.stderr") + DATA.read("sacct_jobcomp.stderr")
    found = backend.parse_status(ok(jobcomp, stderr), ["3", "4", "10", "99"], finished=True)
    # 10 is the head of an array (sacct -c says so on stderr): its siblings' records cannot be
    # traced, so COMPLETED is not proven.
    assert found == {"3": FAILED, "4": CANCELLED, "10": None, "99": None}
    failed_head = ok(jobcomp.replace("10|COMPLETED", "10|FAILED"), stderr)
    assert backend.parse_status(failed_head, ["10"], finished=True)["10"] == FAILED


def test_accounting_wins_over_the_job_completion_log() -> None:
    """sacct printed a record, then failed; sacct -c printed its own: accounting's counts."""
    assert finished_statuses(ok("7|FAILED|None|1:0\n7|COMPLETED|0:0\n")) == {"7": FAILED}


@pytest.mark.parametrize(
    ("finished", "stderr"),
    [
        (False, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"),
        (True, "Slurm accounting storage is disabled\nSlurm job completion is disabled\n"),
    ],
)
def test_a_failed_query_is_unknown_never_a_guess(finished: bool, stderr: str) -> None:
    """Whatever the output holds, a query that failed reports no status: clusterjob keeps the last one."""
    failed = CommandResult(1, "5|COMPLETED|None|0:0\n", stderr)
    assert backend.parse_status(failed, ["5"], finished) == {"5": None}
    purged = CommandResult(
        1, DATA.read("squeue_purged_single.txt"), DATA.read("squeue_purged_single.stderr")
    )
    assert backend.parse_status(purged, ["5"]) == {"5": None}  # then sacct is asked


# -- arrays -----------------------------------------------------------------------


def test_expand_tasks() -> None:
    assert expand_tasks("3") == ["3"]
    assert expand_tasks("[1-3]") == ["1", "2", "3"]
    assert expand_tasks("[1-3,7,10-20:5%4]") == ["1", "2", "3", "7", "10", "15", "20"]
    assert expand_tasks("[weird]") == ["[weird]"]


def test_task_status_merges_queue_over_accounting() -> None:
    text = (
        "queue|25_1|FAILED|NonZeroExitCode\nqueue|25_2|RUNNING|None\nqueue|25_4|PENDING|Resources\n"
        "25_1|FAILED|None|3:0\n25_2|PENDING|None|0:0\n25_[3-4]|PENDING|None|0:0\n"
    )
    assert backend.get_task_status(text, None) == {
        "1": FAILED,
        "2": RUNNING,
        "3": PENDING,
        "4": PENDING,
    }  # type: ignore[arg-type]
    ordered = task_statuses("9_10|COMPLETED|None|0:0\n9_9|FAILED|None|1:0\n")
    assert list(ordered) == ["9", "10"]


def test_queue_statuses_keys() -> None:
    assert (
        queue_statuses(DATA.read("squeue_array_tasks.txt"))[first_id("squeue_array_tasks.txt")]
        == RUNNING
    )


# -- answers through a noisy login shell (banners, escape sequences, blank lines) -------


def test_job_id_after_a_login_banner() -> None:
    """sbatch over ssh: window title, coloured banner with a number, Last login, \\r\\n line ends."""
    assert backend.get_job_id(DATA.read("sbatch_after_login_banner.txt")) == "4711"


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        ("Welcome to cluster X (2 nodes)\n2024\nSubmitted batch job 5\n", "5"),  # sbatch's line wins over a bare number
        ("Submitted batch job 5\r\n\x1b[0mSubmitted batch job 5\n", "5"),  # one ID, printed twice
        ("\x1b[1mWelcome\x1b[0m\n\n1234;cluster2\n", "1234"),  # --parsable, after a banner
        ("Welcome to cluster X (2 nodes)\nLast login: Mon Jun  3 09:12:44 2024\n", None),  # numbers, no ID line
        ("Tip: after 'Submitted batch job 6', run squeue\n", None),  # not a whole sbatch line
        ("Submitted batch job 5\nSubmitted batch job 6\n", None),  # two jobs: which one is this submission?
        ("2024\n77\n", None),  # two --parsable-looking lines
    ],
)  # fmt: skip
def test_job_id_only_from_a_whole_id_line_and_never_a_choice(
    response: str, job_id: str | None
) -> None:
    assert backend.get_job_id(response) == job_id


def test_two_job_ids_are_refused_with_a_warning_naming_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="clusterjob"):
        assert backend.get_job_id("Submitted batch job 5\nSubmitted batch job 6\n") is None
    assert "several job IDs (5, 6)" in caplog.text


@pytest.mark.parametrize("fixture", DATA.names("squeue_*.txt"))
def test_squeue_answer_is_the_same_through_a_noisy_login_shell(fixture: str, login_noise) -> None:
    clean = DATA.read(fixture)
    noisy = login_noise(clean)
    assert parse_records(noisy) == parse_records(clean)
    assert queue_statuses(noisy) == queue_statuses(clean)
    assert backend.get_status(noisy) == backend.get_status(clean)


@pytest.mark.parametrize("fixture", DATA.names("sacct_*.txt"))
def test_sacct_answer_is_the_same_through_a_noisy_login_shell(fixture: str, login_noise) -> None:
    """The window title glued to the first ``accounting|`` line must not hide that record."""
    clean = DATA.read(fixture)
    noisy = login_noise(clean)
    assert finished_statuses(ok(noisy)) == finished_statuses(ok(clean))
    assert backend.get_status(noisy, finished=True) == backend.get_status(clean, finished=True)


def test_job_completion_log_and_array_tasks_through_a_noisy_login_shell(login_noise) -> None:
    jobcomp, stderr = DATA.read("sacct_jobcomp.txt"), DATA.read("sacct_jobcomp.stderr")
    assert finished_statuses(ok(login_noise(jobcomp), login_noise(stderr))) == finished_statuses(ok(jobcomp, stderr)) == {
        "3": FAILED, "4": CANCELLED, "10": None,
    }  # fmt: skip
    tasks = "queue|25_1|FAILED|NonZeroExitCode\n25_[2-3]|PENDING|None|0:0\n"
    assert (
        task_statuses(login_noise(tasks))
        == task_statuses(tasks)
        == {"1": FAILED, "2": PENDING, "3": PENDING}
    )


def test_login_noise_alone_is_no_status(login_noise) -> None:
    noise = login_noise("")
    assert parse_records(noise) == []
    assert (
        queue_statuses(noise) == finished_statuses(ok(noise, noise)) == task_statuses(noise) == {}
    )
    assert backend.get_status(noise) is None
    assert backend.get_status(noise, finished=True) is None


def test_tag_hit_behind_a_window_title_is_found(login_noise) -> None:
    """The title glued to the one ``queue|`` hit hid it: "provably no such job", submitted twice."""
    answer = "41|cj-1a2b3c4d5e-9f8e7d\n"
    assert backend.parse_tag_lookup(ok(login_noise(answer)), "cj-1a2b3c4d5e-9f8e7d") == ["41"]


@pytest.mark.parametrize(
    ("resources", "task_ids"),
    [
        ({"array": "1-3%2"}, ["1", "2", "3"]),
        ({"-a": "0-8:4"}, ["0", "4", "8"]),
        ({"--array": "1,3,5-7"}, ["1", "3", "5", "6", "7"]),
        ({}, None),
        ({"array": "1-3,x"}, None),  # sbatch's to judge: the array is watched through SLURM
    ],
)
def test_the_task_ids_of_an_array_job(
    resources: dict[str, str], task_ids: list[str] | None
) -> None:
    job = JobScript("true", backend="slurm", jobname="arr", **resources)
    assert SlurmBackend().array_task_ids(job) == task_ids
