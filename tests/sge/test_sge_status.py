"""Command lines and the parsing of captured Son of Grid Engine 8.1.9 output (tests/sge/data).

Parsers get the whole result of a command (exit code, stdout, stderr).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.backends import CommandResult
from clusterjob.errors import ClusterjobError, SubmitError
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_sge import SgeBackend
from clusterjob_sge.parsing import (
    STATUS_MAPPING,
    parse_qacct,
    parse_qstat_xml,
    qacct_status,
    state_to_status,
)
from helpers.commands import FakeCommands
from helpers.data import DataFolder
from helpers.results import job_result, look_up_tag, ok

DATA = DataFolder(__file__)
TAG = "cj-0123456789-abcdef"


@pytest.fixture
def backend() -> SgeBackend:
    return SgeBackend()


# -- command lines ----------------------------------------------------------------


def test_submit_command(backend: SgeBackend) -> None:
    job = JobScript("true", backend="sge", jobname="job")
    assert backend.cmd_submit(job) == ["qsub", "-terse", "job.sge"]
    job.filename = "other name.sh"
    assert backend.cmd_submit(job) == ["qsub", "-terse", "other name.sh"]


@pytest.mark.parametrize(
    ("fixture", "job_id"),
    [("qsub_terse.txt", "29"), ("qsub_terse_array.txt", "30"), ("qsub_plain.txt", "28")],
)
def test_job_id_from_qsub_output(backend: SgeBackend, fixture: str, job_id: str) -> None:
    assert backend.get_job_id(DATA.read(fixture)) == job_id


def test_job_id_after_warnings_and_none_from_garbage(backend: SgeBackend) -> None:
    assert backend.get_job_id("warning: no suitable queues\n42\n") == "42"
    assert backend.get_job_id("Unable to run job: denied\nExiting.\n") is None
    assert backend.get_job_id("") is None


def test_status_cancel_and_accounting_commands(backend: SgeBackend) -> None:
    assert backend.cmd_status(job_result(backend, "42")) == ["qstat", "-xml"]
    assert backend.cmd_cancel(job_result(backend, "42")) == ["qdel", "42"]
    assert backend.status_command([job_result(backend, "1"), job_result(backend, "2")]) == [
        "qstat",
        "-xml",
    ]
    many = backend.status_command(
        [job_result(backend, "1"), job_result(backend, "2")], finished=True
    )
    assert many is not None and many[:2] == ["sh", "-c"] and many[-3:] == ["sh", "1", "2"]
    assert "1" not in many[2]  # the IDs are arguments, not script text
    assert backend.tag_lookup_command(TAG) == ["qstat", "-j", "*"]
    assert backend.tag_lookup_command(TAG, finished=True) == ["qacct", "-A", TAG, "-j", "*"]


@pytest.mark.parametrize("job_id", [None, "", "12; rm -rf /", "abc"])
def test_job_ids_that_are_no_job_numbers_are_refused(
    backend: SgeBackend, job_id: str | None
) -> None:
    with pytest.raises(ClusterjobError) as err:
        backend.cmd_cancel(job_result(backend, job_id))  # type: ignore[arg-type]
    assert str(err.value) == f"{job_id!r} is not a Grid Engine job number"


# -- the wrapper scripts, run by sh against fake qstat/qacct --------------------------


@pytest.fixture
def fake_sge(tmp_path: Path) -> FakeCommands:
    """``qstat``/``qacct`` that print captured output (and log their arguments)."""
    fake = FakeCommands(tmp_path)
    qstat = f"""case "$*" in
  "-xml") cat {DATA / "qstat_xml_running_suspended_error_held.xml"} ;;
  "-j *") cat {DATA / "qstat_j_all_with_tag.txt"} ;;
esac
"""
    qacct = f"""case "$*" in
  "-j 4") cat {DATA / "qacct_completed.txt"} ;;
  "-j 5") cat {DATA / "qacct_failed.txt"} ;;
  "-A {TAG} -j *") cat {DATA / "qacct_account_tag.txt"} ;;
  "-A "*) echo "error: job name * not found" >&2; exit 1 ;;
  *) echo "error: job id $2 not found" >&2; exit 1 ;;
esac
"""
    fake.script("qstat", qstat)
    fake.script("qacct", qacct)
    return fake


def test_one_listing_answers_for_every_job(backend: SgeBackend, fake_sge: FakeCommands) -> None:
    job_ids = ["10", "13", "11", "99"]
    runs = [job_result(backend, job_id) for job_id in job_ids]
    statuses = backend.parse_status(fake_sge.run(backend.status_command(runs)), job_ids)
    assert {i: statuses[i] for i in ("10", "13", "11", "99")} == {
        "10": RUNNING,
        "13": FAILED,
        "11": PENDING,
        "99": None,
    }
    assert fake_sge.calls() == ["qstat -xml"]  # 99 left the queue: qacct is asked next


def test_batched_accounting_script_runs_qacct_per_job(
    backend: SgeBackend, fake_sge: FakeCommands
) -> None:
    runs = [job_result(backend, job_id) for job_id in ("4", "5", "7")]
    answer = fake_sge.run(backend.status_command(runs, finished=True))
    assert "error: job id 7 not found" in answer.stderr
    assert backend.parse_status(answer, ["4", "5", "7"], finished=True) == {
        "4": COMPLETED,
        "5": FAILED,
        "7": None,
    }
    assert fake_sge.calls() == ["qacct -j 4", "qacct -j 5", "qacct -j 7"]


def test_tag_search_finds_queued_jobs_then_looks_in_accounting(
    backend: SgeBackend, fake_sge: FakeCommands
) -> None:
    assert look_up_tag(backend, TAG, fake_sge.run) == ["21"]
    assert fake_sge.calls() == ["qstat -j *"]  # found in the queue: no qacct
    other = "cj-9999999999-000000"
    assert look_up_tag(backend, other, fake_sge.run) == []
    assert fake_sge.calls()[1:] == ["qstat -j *", f"qacct -A {other} -j *"]


# -- qstat states ------------------------------------------------------------------------

DOCUMENTED_STATES = {
    PENDING: ["qw", "hqw", "hRwq"],
    RUNNING: [
        "r",
        "t",
        "Rr",
        "Rt",
        "s",
        "ts",
        "S",
        "tS",
        "T",
        "tT",
        "Rs",
        "Rts",
        "RS",
        "RtS",
        "RT",
        "RtT",
        "hr",
    ],
    FAILED: ["Eqw", "Ehqw", "EhRqw"],
    CANCELLED: ["dr", "dt", "dRr", "dRt", "ds", "dS", "dT", "dRs", "dRS", "dRT"],
}


@pytest.mark.parametrize(
    ("state", "status"),
    [(state, status) for status, states in DOCUMENTED_STATES.items() for state in states],
)
def test_every_documented_state_is_mapped(backend: SgeBackend, state: str, status: int) -> None:
    assert backend.status_mapping[state] == status
    assert STATUS_MAPPING[state] == status


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("dqw", CANCELLED),
        ("dEqw", CANCELLED),
        ("hRr", RUNNING),
        ("Rhqw", PENDING),
        ("EhRwq", FAILED),
        ("z", None),
        ("", None),
        ("Q", None),
    ],
)
def test_undocumented_combinations_are_classified_by_their_letters(
    state: str, status: int | None
) -> None:
    assert state_to_status(state) == status


def test_listing_with_running_suspended_error_and_held_jobs() -> None:
    assert parse_qstat_xml(DATA.read("qstat_xml_running_suspended_error_held.xml")) == {
        "10": RUNNING,  # r
        "14": RUNNING,  # s (qmod -sj)
        "13": FAILED,  # Eqw (working directory missing)
        "11": PENDING,  # hqw (qsub -h)
        "12": PENDING,  # hqw (-hold_jid on a running job)
    }


def test_listing_with_a_pe_job_an_array_and_an_exit_100_job() -> None:
    assert parse_qstat_xml(DATA.read("qstat_xml_pe_array_error_held.xml")) == {
        "21": RUNNING,  # -pe smp 2
        "18": FAILED,  # Eqw: the job exited 100
        "20": PENDING,  # array tasks 2,3 waiting (task 1 already ended)
        "19": PENDING,  # hqw: held by the exit-100 job
    }


def test_listing_of_a_job_being_deleted_and_of_running_array_tasks() -> None:
    assert parse_qstat_xml(DATA.read("qstat_xml_deleting.xml"))["21"] == CANCELLED  # dr
    assert parse_qstat_xml(DATA.read("qstat_xml_array_running.xml")) == {
        "30": RUNNING,
        "28": PENDING,
        "29": PENDING,
    }


def test_listings_that_say_nothing() -> None:
    assert parse_qstat_xml(DATA.read("qstat_xml_empty.xml")) == {}
    assert parse_qstat_xml("") is None
    assert parse_qstat_xml("error: commlib error: got select error (Connection refused)\n") is None
    assert parse_qstat_xml(DATA.read("qstat_xml_deleting.xml")[:300]) is None  # cut off


def test_get_status_of_a_listing_of_one_job_only(backend: SgeBackend) -> None:
    """The documented single-job get_status sees the listing alone: it tells only when one job is listed."""
    listing = ET.fromstring(DATA.read("qstat_xml_deleting.xml"))
    for queue in listing:
        for entry in [
            e for e in queue if e.tag == "job_list" and e.findtext("JB_job_number") != "21"
        ]:
            queue.remove(entry)
    one = ET.tostring(listing, encoding="unicode")
    assert parse_qstat_xml(one) == {"21": CANCELLED}
    assert backend.get_status(one) == CANCELLED
    assert (
        backend.get_status(DATA.read("qstat_xml_running_suspended_error_held.xml")) is None
    )  # which job?
    assert backend.get_status("") is None


def test_batched_listing(backend: SgeBackend) -> None:
    ids = ["10", "13", "99"]
    listing = DATA.read("qstat_xml_running_suspended_error_held.xml")
    statuses = backend.parse_status(ok(listing), ids)
    assert {i: statuses[i] for i in ids} == {"10": RUNNING, "13": FAILED, "99": None}
    assert backend.parse_status(ok(""), ids) == {"10": None, "13": None, "99": None}


def test_a_failed_qstat_is_unknown_never_a_guess(backend: SgeBackend) -> None:
    down = CommandResult(1, "", "error: commlib error: got select error (Connection refused)\n")
    assert backend.parse_status(down, ["10"]) == {"10": None}
    garbled = CommandResult(
        1, DATA.read("qstat_xml_running_suspended_error_held.xml"), "error: ...\n"
    )
    assert backend.parse_status(garbled, ["10"]) == {"10": None}  # whatever it printed
    missing = CommandResult(1, "", "error: job id 10 not found\n")
    assert backend.parse_status(missing, ["10"], finished=True) == {"10": None}


# -- qacct --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("qacct_completed.txt", COMPLETED),  # failed 0, exit_status 0
        ("qacct_failed.txt", FAILED),  # exit 3
        ("qacct_cancelled_running.txt", CANCELLED),  # qdel: failed 100, exit_status 137
        ("qacct_timeout_h_rt.txt", FAILED),  # failed 37: qmaster enforced h_rt
        ("qacct_error_chdir.txt", FAILED),  # failed 28: could not change to the working directory
        ("qacct_array_failed.txt", FAILED),  # three tasks, each exit 3
        ("qacct_account_tag.txt", CANCELLED),
    ],
)
def test_status_from_accounting(backend: SgeBackend, fixture: str, status: int) -> None:
    assert backend.get_status(DATA.read(fixture), finished=True) == status


def test_accounting_record_fields() -> None:
    (record,) = parse_qacct(DATA.read("qacct_cancelled_running.txt"))
    assert (record.jobnumber, record.taskid, record.failed, record.exit_status) == (
        "6",
        "undefined",
        100,
        137,
    )
    assert record.qsub_time == "Thu Nov 26 22:45:55 2026"
    tasks = parse_qacct(DATA.read("qacct_array_failed.txt"))
    assert [t.taskid for t in tasks] == ["1", "2", "3"]


def test_no_record_yet_is_unknown_never_completed(backend: SgeBackend) -> None:
    """qacct says "error: job id N not found" on stderr until the record is flushed."""
    assert backend.get_status("", finished=True) is None


def _with(text: str, **fields: str) -> str:
    lines = []
    for line in text.splitlines():
        key = line.split(" ", 1)[0]
        lines.append(f"{key:<12} {fields[key]}" if key in fields else line)
    return "\n".join(lines) + "\n"


def test_reused_job_number_uses_the_latest_submission() -> None:
    old = _with(DATA.read("qacct_failed.txt"), jobnumber="4")
    new = DATA.read("qacct_completed.txt")
    assert qacct_status(parse_qacct(old + new)) == COMPLETED
    assert qacct_status(parse_qacct(new + old)) == FAILED


def test_rescheduled_run_is_not_an_end() -> None:
    first = _with(DATA.read("qacct_failed.txt"), failed="25  : rescheduling")
    assert qacct_status(parse_qacct(first)) is None
    final = _with(
        DATA.read("qacct_completed.txt"), jobnumber="5", qsub_time="Thu Nov 26 22:45:55 2026"
    )
    assert qacct_status(parse_qacct(first + final)) == COMPLETED  # same submission, later record


def test_array_is_completed_only_if_every_task_is() -> None:
    text = DATA.read("qacct_array_failed.txt")
    mixed = text.replace("exit_status  3", "exit_status  0", 2)
    assert qacct_status(parse_qacct(mixed)) == FAILED
    assert qacct_status(parse_qacct(text.replace("exit_status  3", "exit_status  0"))) == COMPLETED


# -- finding a job by its tag -----------------------------------------------------------


#: What qstat -j '*' and qacct -A TAG -j '*' answer when they find no job (on stderr, exit 1).
NO_QUEUED_JOB = CommandResult(1, "", "Following jobs do not exist: \n*\n")
NO_ENDED_JOB = CommandResult(1, "", "error: job name * not found\n")


def test_tag_found_in_the_queue_or_in_accounting(backend: SgeBackend) -> None:
    assert backend.parse_tag_lookup(ok(DATA.read("qstat_j_all_with_tag.txt")), TAG) == ["21"]
    assert backend.parse_tag_lookup(ok(DATA.read("qacct_account_tag.txt")), TAG, finished=True) == [
        "21"
    ]


def test_tag_found_by_context_when_the_user_set_the_account(backend: SgeBackend) -> None:
    queue = DATA.read("qstat_j_all_with_tag.txt").replace(
        f"account:                    {TAG}", "account: project42"
    )
    assert backend.parse_tag_lookup(ok(queue), TAG) == ["21"]


def test_no_job_anywhere_is_proof_of_absence(backend: SgeBackend) -> None:
    assert backend.parse_tag_lookup(NO_QUEUED_JOB, TAG) is None  # none queued: ask accounting
    assert backend.parse_tag_lookup(NO_ENDED_JOB, TAG, finished=True) == []
    other = "cj-9999999999-000000"
    assert backend.parse_tag_lookup(ok(DATA.read("qstat_j_all_with_tag.txt")), other) is None
    assert (
        backend.parse_tag_lookup(ok(DATA.read("qacct_account_tag.txt")), other, finished=True) == []
    )


@pytest.mark.parametrize(
    ("result", "finished", "message"),
    [
        (
            CommandResult(1, "", "error: commlib error: got select error (Connection refused)\n"),
            False,
            "qstat exited with 1: error: commlib error: got select error (Connection refused)",
        ),
        (
            CommandResult(1, "", "error: can't open accounting file\n"),
            True,
            "qacct exited with 1: error: can't open accounting file",
        ),
        (CommandResult(1, "", ""), True, "qacct exited with 1: "),  # failed without "not found"
        (
            CommandResult(127, "", "sh: 1: qstat: not found\n"),
            False,
            "qstat exited with 127: sh: 1: qstat: not found",
        ),
    ],
)
def test_failed_tag_search_is_no_proof(
    backend: SgeBackend, result: CommandResult, finished: bool, message: str
) -> None:
    """SubmitError, as ClusterjobBackend.parse_tag_lookup says (regression: a bare ClusterjobError)."""
    with pytest.raises(SubmitError) as err:
        backend.parse_tag_lookup(result, TAG, finished)
    assert str(err.value) == (
        f"cannot tell whether a Grid Engine job carries tag {TAG!r}: {message}. Look for a job with this "
        f"account or context (qstat -j '*'; qacct -A {TAG} -j '*'), then remove the cache file or submit "
        "with force=True"
    )


# -- answers through a noisy login shell (banners, escape sequences, blank lines) -------


def test_job_id_after_a_login_banner(backend: SgeBackend) -> None:
    """qsub -terse over ssh: window title glued to Last login, a banner with a number, \\r\\n."""
    assert backend.get_job_id(DATA.read("qsub_terse_after_login_banner.txt")) == "31"


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        (
            "Welcome to cluster X (2 nodes)\n\n" + 'Your job 28 ("cjplain") has been submitted\n',
            "28",
        ),
        (
            '\x1b[1m2024\x1b[0m\nYour job-array 30.1-3:1 ("arr") has been submitted\n',
            "30",
        ),  # qsub's line wins
        (
            "Welcome to cluster X (2 nodes)\nLast login: Mon Jun  3 09:12:44 2024\n",
            None,
        ),  # numbers, no ID line
        (
            "Tip: when qsub says 'Your job 5 (\"x\") has been submitted', run qstat\n",
            None,
        ),  # not a whole line
        ("29\n31\n", None),  # two -terse lines: which one is this submission?
    ],
)
def test_job_id_only_from_a_whole_id_line_and_never_a_choice(
    backend: SgeBackend, response: str, job_id: str | None
) -> None:
    assert backend.get_job_id(response) == job_id


@pytest.mark.parametrize("fixture", DATA.names("qstat_xml_*.xml"))
def test_listing_is_the_same_through_a_noisy_login_shell(
    backend: SgeBackend, fixture: str, login_noise
) -> None:
    """A banner before the XML, a window title glued to it, a line after it (which made "junk
    after document element"), \\r\\n line ends. (No lines inside the document: a shell prints
    around a command's output, not into it, and XML allows no text before its root element.)"""
    clean = DATA.read(fixture)
    noisy = login_noise(clean, interleave=False)
    assert parse_qstat_xml(noisy) == parse_qstat_xml(clean)
    numbers = sorted(parse_qstat_xml(clean) or {"1": None})
    assert backend.parse_status(ok(noisy), numbers) == backend.parse_status(ok(clean), numbers)
    assert backend.get_status(noisy) == backend.get_status(clean)


@pytest.mark.parametrize("fixture", DATA.names("qacct_*.txt"))
def test_accounting_is_the_same_through_a_noisy_login_shell(
    backend: SgeBackend, fixture: str, login_noise
) -> None:
    clean = DATA.read(fixture)
    noisy = login_noise(clean)
    assert parse_qacct(noisy) == parse_qacct(clean)
    assert backend.get_status(noisy, finished=True) == backend.get_status(clean, finished=True)
    number = parse_qacct(clean)[0].jobnumber
    assert backend.parse_status(ok(noisy), [number], finished=True) == backend.parse_status(
        ok(clean), [number], finished=True
    )


def test_login_noise_alone_is_no_status(backend: SgeBackend, login_noise) -> None:
    noise = login_noise("")
    assert parse_qstat_xml(noise) is None
    assert parse_qacct(noise) == []
    assert backend.get_status(noise) is None
    assert backend.get_status(noise, finished=True) is None
    assert backend.parse_status(ok(noise), ["5"]) == {"5": None}
