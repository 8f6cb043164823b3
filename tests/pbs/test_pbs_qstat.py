"""Parsing scheduler output in the formats the vendors document, for pbs, pbspro and lpbs.

Fixture files in ``data/``, named after what they show:

* ``pbspro_*``: PBS Professional ``qstat -x -f`` output, in the layout of the
  PBS Professional Reference Guide (qstat, "Job status in long format": a
  ``Job Id:`` line, ``    attribute = value`` lines, long values continued
  on tab-indented lines) and the job states, substates and exit codes of the
  PBS Professional Reference Guide ("Job States", "Job Substates") and
  Administrator's Guide ("Job Exit Status Codes"; OpenPBS
  ``src/include/job.h``).
* ``torque_*``: TORQUE 6 ``qstat -f`` and ``qstat -x`` (XML) output, per the
  TORQUE Administrator Guide (qstat; "Job Exit Status": 271 = 256+SIGTERM,
  -11 = JOB_EXEC_OVERLIMIT_WT).
* ``slurm_torque_*``: captured from the ``qstat`` of ``slurm-wlm-torque``
  22.05 on the test machine.
* ``lpbs_*``: ``lqstat -f`` output of LPBS (``JobInfo.full_info``).
* ``*_all_tagged``/``*_all_untagged``/``torque_qstat_f_tagged``: the stdout of the
  tag lookup, ``id -un && qstat [-x] -f``: the user's name, then every job.
* ``*_qsub_after_*``: what ``qsub`` printed through a login shell that adds
  blank lines or a banner (the job identifier alone on a line: PBS
  Professional Reference Guide and TORQUE qsub(1B), "Standard Output").
"""

from __future__ import annotations

import logging

import pytest
from clusterjob.backends import CommandResult
from clusterjob.errors import SubmitError
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_pbs import LPbsBackend, PbsBackend, PbsProBackend
from clusterjob_pbs.qstat import parse_qstat_full, sequence_number
from helpers.data import DataFolder
from helpers.results import ok

DATA = DataFolder(__file__)


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("pbspro_qstat_xf_finished.txt", COMPLETED),  # F, substate 92, Exit_status 0
        ("pbspro_qstat_xf_failed.txt", FAILED),  # F, substate 93, Exit_status 3
        (
            "pbspro_qstat_xf_deleted_running.txt",
            CANCELLED,
        ),  # F, substate 91 (qdel), Exit_status 271
        (
            "pbspro_qstat_xf_deleted_queued.txt",
            CANCELLED,
        ),  # F, substate 91, never ran: no Exit_status
        (
            "pbspro_qstat_xf_walltime.txt",
            FAILED,
        ),  # F, substate 93, Exit_status -29 (JOB_EXEC_KILL_WALLTIME)
        ("pbspro_qstat_xf_running.txt", RUNNING),
        ("pbspro_qstat_xf_array_begun.txt", RUNNING),  # B: array job with a subjob started
        ("pbspro_qstat_xf_subjob_expired.txt", COMPLETED),  # X: subjob finished
        ("pbspro_qstat_xf_moved.txt", PENDING),  # M: moved to another server
    ],
)
def test_pbspro_qstat_x_f(fixture: str, status: int) -> None:
    """PBS Professional 2022.1 Reference Guide: qstat -x -f (long format), "Job States" (B F M R X),
    "Job Substates" (91 terminated, 92 finished, 93 failed); Administrator's Guide "Job Exit Codes"
    (negative codes: PBS could not run or killed the job, e.g. -29 JOB_EXEC_KILL_WALLTIME)."""
    backend = PbsProBackend()
    assert backend.get_status(DATA.read(fixture)) == status
    assert backend.get_status(DATA.read(fixture), finished=True) == status


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("torque_qstat_f_completed.txt", COMPLETED),  # C, exit_status 0
        ("torque_qstat_f_failed.txt", FAILED),  # C, exit_status 1
        ("torque_qstat_f_walltime.txt", FAILED),  # C, exit_status -11: walltime exceeded
        ("torque_qstat_f_qdel_running.txt", CANCELLED),  # C, exit_status 271 = 256 + SIGTERM (qdel)
        ("torque_qstat_f_killed_sigkill.txt", FAILED),  # C, exit_status 265 = 256 + SIGKILL
        (
            "torque_qstat_f_deleted_queued.txt",
            CANCELLED,
        ),  # C without exit_status: deleted before it ran
        ("torque_qstat_f_running.txt", RUNNING),
        ("torque_qstat_f_exiting.txt", RUNNING),  # E: exiting, exit status not final yet
        ("torque_qstat_x_completed.xml", COMPLETED),  # qstat -x is XML in TORQUE
        ("torque_qstat_x_failed.xml", FAILED),
    ],
)
def test_torque_qstat_f_and_x(fixture: str, status: int) -> None:
    """TORQUE 6 Administrator Guide: qstat -f and qstat -x (XML) output; "Job Exit Status"
    (0 success, 256+signal when killed by a signal, -11 JOB_EXEC_OVERLIMIT_WT)."""
    assert PbsBackend().get_status(DATA.read(fixture)) == status


def test_every_documented_state_has_a_status() -> None:
    """TORQUE qstat(1B) states C E H Q R T W S, and PBS Pro's B E F H M Q R S T U W X."""
    mapping = PbsBackend.status_mapping
    assert set("CEHQRTWS") | set("BEFHMQRSTUWX") == set(mapping)
    assert {s for s, code in mapping.items() if code == PENDING} == set("QHWTM")
    assert {s for s, code in mapping.items() if code == RUNNING} == set("RESUB")
    assert PbsProBackend.status_mapping == LPbsBackend.status_mapping == mapping


def test_torque_pending_states_in_one_listing() -> None:
    """TORQUE 6 Administrator Guide, qstat: -f output for jobs in states Q, H, W, T, S (one batched query)."""
    backend = PbsBackend()
    ids = [f"{n}.torque-server.example.org" for n in range(4329, 4334)]
    statuses = backend.parse_status(ok(DATA.read("torque_qstat_f_queued_held_waiting.txt")), ids)
    assert [statuses[i] for i in ids] == [PENDING, PENDING, PENDING, PENDING, RUNNING]


def test_pbspro_batched_status_matches_by_sequence_number() -> None:
    """PBS Professional Reference Guide, qstat -x -f of four jobs (Q, R, F, H).

    qsub may print a shorter server name than qstat: runs are matched by sequence number.
    """
    backend = PbsProBackend()
    ids = [
        "1240.pbsserver",
        "1241",
        "1242.pbsserver.example.org",
        "1243.pbsserver",
        "1299.pbsserver",
    ]
    statuses = backend.parse_status(ok(DATA.read("pbspro_qstat_xf_many.txt")), ids)
    assert {i: statuses[i] for i in ids} == {
        "1240.pbsserver": PENDING,
        "1241": RUNNING,
        "1242.pbsserver.example.org": COMPLETED,
        "1243.pbsserver": PENDING,
        "1299.pbsserver": None,  # not in the output: unknown, never guessed
    }


def test_long_values_are_joined_across_continuation_lines() -> None:
    """PBS Professional Reference Guide, qstat -f: values longer than a line continue on
    tab-indented lines, broken after a comma or inside a word (OpenPBS prt_attr, 78 columns)."""
    jobs = parse_qstat_full(DATA.read("pbspro_qstat_xf_all_tagged.txt"))
    variables = jobs[0].variables()
    assert variables["PBS_O_PATH"] == (
        "/opt/pbs/bin:/usr/local/bin:/usr/bin:/bin:/home/user1/.local/bin:"
        "/home/user1/software/very/long/path/to/tools/bin"
    )
    assert variables["PBS_O_HOST"] == "login1.example.org"
    assert variables["CLUSTERJOB_TAG"] == "cj-0000000000-aaaaaa"
    assert (
        jobs[0].get("EXIT_STATUS") == "0"
    )  # case-insensitive: PBS Pro Exit_status, TORQUE exit_status
    assert [job.job_id for job in jobs] == ["1250.pbsserver", "1251.pbsserver", "1252.pbsserver"]


def test_torque_xml_resources_are_nested() -> None:
    """TORQUE 6 Administrator Guide, qstat -x: XML, resources nested as <Resource_List><walltime>."""
    (job,) = parse_qstat_full(DATA.read("torque_qstat_x_completed.xml"))
    assert job.job_id == "4321.torque-server.example.org"
    assert job.get("Resource_List.walltime") == "00:10:00"
    assert job.variables()["PBS_O_WORKDIR"] == "/home/user1/run"


def test_unreadable_xml_is_no_status(caplog: pytest.LogCaptureFixture) -> None:
    assert PbsBackend().get_status("<Data><Job><Job_Id>1</Job_Id>") is None
    assert "cannot read qstat XML output" in caplog.text


def test_no_job_in_output_is_unknown() -> None:
    """qstat prints errors ("Unknown Job Id", "Job has finished, use -x") on stderr: stdout is empty."""
    for backend in (PbsBackend(), PbsProBackend()):
        assert backend.get_status("") is None
        assert backend.get_status("", finished=True) is None


def test_unknown_state_is_unknown_not_guessed(caplog: pytest.LogCaptureFixture) -> None:
    assert PbsBackend().get_status("Job Id: 5.srv\n    job_state = Z\n") is None
    assert "job_state 'Z', which clusterjob does not know" in caplog.text


def test_moved_job_warns_that_it_cannot_be_followed(caplog: pytest.LogCaptureFixture) -> None:
    assert PbsProBackend().get_status(DATA.read("pbspro_qstat_xf_moved.txt")) == PENDING
    assert "moved to another server" in caplog.text


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("slurm_torque_qstat_f_completed.txt", COMPLETED),
        ("slurm_torque_qstat_f_failed.txt", COMPLETED),  # the wrapper reports "C", nothing else
        ("slurm_torque_qstat_f_cancelled.txt", COMPLETED),
    ],
)
def test_slurm_torque_wrapper_hides_outcomes(
    fixture: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Captured from slurm-wlm-torque 22.05's qstat -f on the test machine (a completed job, a job
    that exited 3, a job removed with qdel): tab-indented, `job_state = C` for all, no exit status."""
    with caplog.at_level(logging.WARNING, logger="clusterjob.pbs"):
        assert PbsBackend().get_status(DATA.read(fixture)) == status
    assert "SLURM's TORQUE wrappers" in caplog.text
    assert "use the 'slurm' backend" in caplog.text


def test_slurm_torque_wrapper_running_and_queued() -> None:
    """Captured from slurm-wlm-torque 22.05's qstat -f: a running job and one waiting on a dependency."""
    backend = PbsBackend()
    statuses = backend.parse_status(
        ok(DATA.read("slurm_torque_qstat_f_running_and_queued.txt")), ["23", "24"]
    )
    assert statuses == {"23": RUNNING, "24": PENDING}
    (job, _) = parse_qstat_full(DATA.read("slurm_torque_qstat_f_running_and_queued.txt"))
    assert job.layout == "slurm-torque"
    assert job.get("Resource_List.walltime") == "8760:00:00"


def test_lpbs_lqstat() -> None:
    """LPBS lqstat -f (LPBS/JobIDManager.py, JobInfo.full_info): running jobs only, no job_state;
    an ended job is simply not listed, which only lqstat's exit code makes conclusive."""
    backend = LPbsBackend()
    job = "17.mylaptop.local"
    assert backend.get_status(DATA.read("lpbs_lqstat_f_running.txt")) == RUNNING
    assert backend.parse_status(
        ok(DATA.read("lpbs_lqstat_f_running.txt")), [job], finished=True
    ) == {job: RUNNING}
    assert backend.parse_status(ok(""), ["18"]) == {"18": None}  # ask again with finished=True
    assert backend.parse_status(ok(""), ["18"], finished=True) == {"18": COMPLETED}
    # lqstat itself failed (e.g. LPBS_HOME unset): no conclusion
    failed = CommandResult(1, "", "lqstat: cannot read $LPBS_HOME\n")
    assert backend.parse_status(failed, ["18"], finished=True) == {"18": None}
    assert backend.get_status("", finished=True) is None  # stdout alone cannot tell


def test_sequence_number() -> None:
    assert sequence_number("123.server.example.org") == "123"
    assert sequence_number("123[].server") == "123[]"
    assert sequence_number(" 42\n") == "42"


def test_pbspro_find_tag_in_variable_list() -> None:
    """PBS Professional Reference Guide, qstat -x -f of all jobs: the tag is in Variable_List
    (qsub -v), possibly broken across lines; the user's name (``id -un``) comes first."""
    backend = PbsProBackend()
    assert backend.parse_tag_lookup(
        ok(DATA.read("pbspro_qstat_xf_all_tagged.txt")), "cj-1a2b3c4d5e-9f8e7d"
    ) == ["1251.pbsserver"]
    assert (
        backend.parse_tag_lookup(
            ok(DATA.read("pbspro_qstat_xf_all_untagged.txt")), "cj-1a2b3c4d5e-9f8e7d"
        )
        == []
    )
    assert backend.parse_tag_lookup(ok("user1\n"), "cj-1") == []  # no jobs


def with_other_users_job(listing: str) -> str:
    """``listing`` and, after it, a job of user2 whose Variable_List qstat does not show us."""
    others = DATA.read("pbspro_qstat_xf_deleted_queued.txt").replace(
        "    Variable_List = ", "    Hidden_List = "
    )
    return listing + others.replace("user1@", "user2@")


def test_find_tag_ignores_other_users_jobs_without_variable_list() -> None:
    """PBS shows Variable_List of other users' jobs only to managers; those jobs cannot be ours."""
    response = with_other_users_job(DATA.read("pbspro_qstat_xf_all_untagged.txt"))
    assert PbsProBackend().parse_tag_lookup(ok(response), "cj-1a2b3c4d5e-9f8e7d") == []
    with pytest.raises(SubmitError, match="shows no Variable_List for job\\(s\\) 1237.pbsserver"):
        PbsProBackend().parse_tag_lookup(
            ok(response.replace("user2@", "user1@")), "cj-1a2b3c4d5e-9f8e7d"
        )
    # Without the user's name, any job without Variable_List might be ours.
    nameless = response.split("\n", 1)[1]
    with pytest.raises(SubmitError, match="shows no Variable_List for job\\(s\\) 1237.pbsserver"):
        PbsProBackend().parse_tag_lookup(ok(nameless), "cj-1a2b3c4d5e-9f8e7d")


def test_torque_with_tags_enabled_finds_the_job() -> None:
    """TORQUE 6 Administrator Guide, qstat -f: Variable_List holds qsub -v variables."""

    class TaggedTorque(PbsBackend):
        tag_variable = "CLUSTERJOB_TAG"

    backend = TaggedTorque()
    assert backend.parse_tag_lookup(
        ok(DATA.read("torque_qstat_f_tagged.txt")), "cj-1a2b3c4d5e-9f8e7d"
    ) == ["4340.torque-server.example.org"]


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (
            CommandResult(1, "", "qstat: cannot connect to server pbsserver (errno=111)\n"),
            "exited with 1: 'qstat: cannot connect to server pbsserver (errno=111)'",
        ),
        (
            CommandResult(143, "user1\n" + DATA.read("pbspro_qstat_xf_running.txt")),
            "exited with 143",
        ),  # killed midway
        (
            ok("root\n" + DATA.read("slurm_torque_qstat_f_completed.txt")),
            "shows no Variable_List for job(s) 34",
        ),
    ],
)
def test_find_tag_never_claims_absence_it_cannot_prove(result: CommandResult, reason: str) -> None:
    with pytest.raises(
        SubmitError, match="cannot tell whether the interrupted submission tagged cj-t reached"
    ) as info:
        PbsProBackend().parse_tag_lookup(result, "cj-t")
    assert reason in str(info.value)
    assert "submit again with force=True" in str(info.value)


# -- answers through a noisy login shell (banners, escape sequences, blank lines) -------


def test_qsub_job_id_after_blank_lines_and_a_banner() -> None:
    """PBS Professional Reference Guide, qsub, "Standard Output": qsub writes the job identifier
    (``sequence_number.server_name``) to standard output; a PBS Pro login shell printed two blank
    lines before it. TORQUE qsub(1B) likewise, here after ``Last login`` and a coloured banner."""
    assert (
        PbsProBackend().get_job_id(DATA.read("pbspro_qsub_after_blank_lines.txt")) == "436041.sdb"
    )
    assert (
        PbsBackend().get_job_id(DATA.read("torque_qsub_after_login_banner.txt"))
        == "4242.torque-server.example.org"
    )
    assert (
        LPbsBackend().get_job_id("Welcome to cluster X (2 nodes)\r\n\x1b[0m17.mylaptop.local\r\n")
        == "17.mylaptop.local"
    )


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        ("\x1b]0;login1\x07436041.sdb\n", "436041.sdb"),  # a window title glued to the ID line
        (
            "Welcome to cluster X (2 nodes)\nLast login: Mon Jun  3 09:12:44 2024\n",
            None,
        ),  # numbers, no ID line
        ("Your quota: 12.5 GB of 100 GB used\n", None),  # a number inside a line is no ID
        ("436041.sdb\n436042.sdb\n", None),  # two IDs: which one is this submission?
        ("2.5\n436041.sdb\n", None),  # a banner line shaped like an ID makes the answer ambiguous
    ],
)
def test_qsub_job_id_only_from_a_whole_line_and_never_a_choice(
    response: str, job_id: str | None
) -> None:
    """PBS Professional Reference Guide, qsub, "Standard Output": the job identifier alone."""
    assert PbsProBackend().get_job_id(response) == job_id


def _backend_for(fixture: str) -> PbsBackend:
    if fixture.startswith("pbspro_"):
        return PbsProBackend()
    return LPbsBackend() if fixture.startswith("lpbs_") else PbsBackend()


@pytest.mark.parametrize("fixture", DATA.names("*qstat*"))
def test_qstat_answer_is_the_same_through_a_noisy_login_shell(fixture: str, login_noise) -> None:
    """Every qstat fixture (PBS Pro ``qstat -x -f`` in the Reference Guide's layout, TORQUE text
    and XML, the SLURM wrappers, LPBS) with a banner before it, a window title glued to its first
    line, ``\\r\\n`` line ends, and blank and unknown lines between its lines."""
    clean = DATA.read(fixture)
    noisy = login_noise(clean)
    assert parse_qstat_full(noisy) == parse_qstat_full(clean)
    backend = _backend_for(fixture)
    for finished in (False, True):
        assert backend.get_status(noisy, finished) == backend.get_status(clean, finished)


def test_a_banner_line_inside_a_record_does_not_change_its_layout() -> None:
    """The first attribute line tells the layout (SLURM's wrappers indent with a tab); a line that
    is no attribute, before it, must not decide (the tab-indented attributes were then dropped)."""
    clean = DATA.read("slurm_torque_qstat_f_running_and_queued.txt")
    noisy = clean.replace("Job Id:\t23\n", "Job Id:\t23\nWelcome to cluster X (2 nodes)\n")
    assert noisy != clean
    assert parse_qstat_full(noisy) == parse_qstat_full(clean)
    assert parse_qstat_full(noisy)[0].layout == "slurm-torque"


def test_login_noise_alone_is_no_job_and_no_status(login_noise) -> None:
    noise = login_noise("")
    assert parse_qstat_full(noise) == []
    for backend in (PbsBackend(), PbsProBackend(), LPbsBackend()):
        assert backend.get_status(noise) is None
        assert backend.get_status(noise, finished=True) is None


def test_find_tag_through_a_noisy_login_shell(login_noise) -> None:
    """PBS Professional Reference Guide, qstat -f (Variable_List): the tag is found, and its
    absence proven, with a banner before the answer and a window title glued to its first line."""
    backend = PbsProBackend()
    tag = "cj-1a2b3c4d5e-9f8e7d"
    assert backend.parse_tag_lookup(
        ok(login_noise(DATA.read("pbspro_qstat_xf_all_tagged.txt"))), tag
    ) == ["1251.pbsserver"]
    assert (
        backend.parse_tag_lookup(
            ok(login_noise(DATA.read("pbspro_qstat_xf_all_untagged.txt"))), tag
        )
        == []
    )
    # Another user's job without Variable_List: the user's name behind the title still says whose.
    response = with_other_users_job(DATA.read("pbspro_qstat_xf_all_untagged.txt"))
    assert backend.parse_tag_lookup(ok(login_noise(response)), tag) == []


def test_a_failed_qstat_is_unknown_and_the_jobs_it_lists_still_count() -> None:
    """TORQUE Administrator Guide, qstat: an unknown job ID is reported on stderr ("Unknown Job Id")
    and qstat exits non-zero, while the jobs it knows are listed; a failed qstat lists none."""
    backend = PbsBackend()
    unknown = CommandResult(153, "", "qstat: Unknown Job Id 99.torque-server.example.org\n")
    for finished in (False, True):
        assert backend.parse_status(unknown, ["99.torque-server.example.org"], finished) == {
            "99.torque-server.example.org": None
        }
    partial = CommandResult(
        153,
        DATA.read("torque_qstat_f_running.txt"),
        "qstat: Unknown Job Id 99.torque-server.example.org\n",
    )
    job = parse_qstat_full(DATA.read("torque_qstat_f_running.txt"))[0].job_id
    assert backend.parse_status(partial, [job, "99"]) == {job: RUNNING, "99": None}
