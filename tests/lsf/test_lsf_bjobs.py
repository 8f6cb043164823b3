"""Parsing LSF output in the formats IBM documents, and the commands the lsf backend builds.

Fixture files in ``data/``, named after what they show:

* ``bsub_*``: what ``bsub`` prints ("Job <ID> is submitted to [default] queue
  <name>.", IBM Spectrum LSF 10.1 Command Reference, bsub);
  ``bsub_after_site_banner.txt`` with the lines a site's esub printed before it.
* ``bjobs_o_*``: ``bjobs -a -noheader -o "jobid stat exit_code exit_reason
  job_name delimiter='|'"`` (IBM Spectrum LSF 10.1 Command Reference, bjobs -o:
  custom fields, ``delimiter=``, ``-noheader``; a field without a value is
  ``-``), with the job states of "bjobs: JOB STATUS" and the termination
  reasons of "Termination reasons displayed by bacct, bhist, and bjobs"
  (TERM_OWNER, TERM_FORCE_ADMIN, TERM_RUNLIMIT …).
* ``bjobs_o_descriptions.txt``: ``bjobs -a -noheader -o "jobid job_description
  delimiter='|'"`` (the tag lookup), ``bjobs_no_job_found.stderr`` what bjobs
  writes on stderr when the user has no job (it then exits non-zero).

Parsers get the whole result (exit code, stdout, stderr) of the command.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from clusterjob import JobScript
from clusterjob.backends import CommandResult
from clusterjob.errors import SubmitError
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_lsf import LsfBackend
from clusterjob_lsf.bjobs import parse_bjobs
from helpers.commands import environment_first_on_path, fake_command, run_command
from helpers.data import DataFolder
from helpers.results import job_result, ok

DATA = DataFolder(__file__)

#: What bjobs answers when the user has no job: the message on stderr, exit 255
#: (IBM Spectrum LSF 10.1, lsf.conf LSB_BJOBS_CONSISTENT_EXIT_CODE=Y).
NO_JOB_FOUND = CommandResult(255, "", DATA.read("bjobs_no_job_found.stderr"))


def test_submit_pipes_the_quoted_script_into_bsub() -> None:
    """The documented LSF backend returns a string: the job script is piped into bsub."""
    job = JobScript("true", jobname="j", backend="lsf")
    assert LsfBackend().cmd_submit(job) == "bsub < j.lsf"
    job.filename = "my job's script.lsf"
    assert LsfBackend().cmd_submit(job) == "bsub < 'my job'\"'\"'s script.lsf'"


def test_submit_string_reaches_bsub_stdin(tmp_path: Path) -> None:
    """With a fake bsub that prints its stdin: the quoted file name survives the shell."""
    fake = fake_command(
        tmp_path / "bin",
        "bsub",
        "head -n 2 >&2\necho 'Job <77> is submitted to default queue <normal>.'\n",
    )
    script = tmp_path / "a b;$(touch pwned).lsf"
    script.write_text("#!/bin/bash\n#BSUB -J x\n")
    job = JobScript("true", jobname="x", backend="lsf")
    job.filename = script.name
    out = subprocess.run(
        LsfBackend().cmd_submit(job),
        shell=True,
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        env=environment_first_on_path(fake.parent),
    )
    assert out.stderr == "#!/bin/bash\n#BSUB -J x\n"
    assert LsfBackend().get_job_id(out.stdout) == "77"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("fixture", "job_id"),
    [
        ("bsub_submitted_default_queue.txt", "1234"),
        ("bsub_submitted_queue.txt", "1235"),
        ("bsub_rejected.txt", None),
    ],
)
def test_get_job_id(fixture: str, job_id: str | None) -> None:
    """IBM Spectrum LSF 10.1 Command Reference, bsub: "Job <ID> is submitted to [default] queue <q>."."""
    assert LsfBackend().get_job_id(DATA.read(fixture)) == job_id


def test_status_and_cancel_commands() -> None:
    backend = LsfBackend()
    bjobs = [
        "bjobs",
        "-a",
        "-noheader",
        "-o",
        "jobid stat exit_code exit_reason job_name delimiter='|'",
    ]
    job_12, job_1, job_2 = (job_result(backend, job_id) for job_id in ("12", "1", "2"))
    assert backend.cmd_status(job_12) == [*bjobs, "12"]
    assert backend.cmd_status(job_12, finished=True) == [*bjobs, "12"]
    assert backend.status_command([job_1, job_2]) == [*bjobs, "1", "2"]
    assert (
        backend.status_command([job_1], finished=True) is None
    )  # -a: the first query covers finished jobs
    assert backend.cmd_cancel(job_12) == ["bkill", "12"]


def test_every_documented_state() -> None:
    """IBM Spectrum LSF 10.1 Command Reference, bjobs "JOB STATUS": PEND PSUSP WAIT PROV RUN USUSP
    SSUSP UNKWN ZOMBI DONE EXIT, in bjobs -o "jobid stat exit_code exit_reason job_name delimiter='|'"
    lines."""
    backend = LsfBackend()
    ids = [str(n) for n in range(2001, 2012)]
    statuses = backend.parse_status(ok(DATA.read("bjobs_o_every_state.txt")), ids)
    assert [statuses[i] for i in ids] == [PENDING] * 4 + [RUNNING] * 5 + [COMPLETED, FAILED]
    assert set(LsfBackend.status_mapping) == {
        "PEND",
        "PSUSP",
        "WAIT",
        "PROV",
        "RUN",
        "USUSP",
        "SSUSP",
        "UNKWN",
        "ZOMBI",
        "DONE",
        "EXIT",
    }


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("bjobs_o_done.txt", COMPLETED),
        ("bjobs_o_exit_nonzero.txt", FAILED),
        ("bjobs_o_exit_term_owner.txt", CANCELLED),  # bkill by the owner
        ("bjobs_o_exit_killed_by_owner_text.txt", CANCELLED),  # the reason's description
        ("bjobs_o_exit_term_force_admin.txt", CANCELLED),  # bkill -r by an administrator
        ("bjobs_o_exit_killed_while_pending.txt", CANCELLED),  # no exit code: never ran
        (
            "bjobs_o_exit_term_runlimit.txt",
            FAILED,
        ),  # same exit code 130 as bkill, but the run limit
        ("bjobs_o_exit_empty_fields.txt", FAILED),  # no reason given: a failure
    ],
)
def test_finished_jobs(fixture: str, status: int) -> None:
    """IBM Spectrum LSF 10.1, bjobs -o (exit_code, exit_reason) and "Termination reasons displayed by
    bacct, bhist, and bjobs": EXIT is CANCELLED only when the reason says the job was killed by its
    owner or an administrator (TERM_OWNER, TERM_FORCE_ADMIN, ...)."""
    backend = LsfBackend()
    assert backend.get_status(DATA.read(fixture)) == status
    assert backend.get_status(DATA.read(fixture), finished=True) == status


def test_missing_and_unknown_jobs_have_no_status(caplog: pytest.LogCaptureFixture) -> None:
    backend = LsfBackend()
    assert backend.get_status("") is None  # "Job <12> is not found" goes to stderr
    assert backend.get_status("Job <12> is not found\n") is None
    assert backend.parse_status(ok(DATA.read("bjobs_o_done.txt")), ["2010", "9"]) == {
        "2010": COMPLETED,
        "9": None,
    }
    # bjobs reports the job it does not know on stderr, exits non-zero, and lists the others
    partial = CommandResult(255, DATA.read("bjobs_o_done.txt"), "Job <9> is not found\n")
    assert backend.parse_status(partial, ["2010", "9"]) == {"2010": COMPLETED, "9": None}
    down = CommandResult(255, "", "LSF is down. Please wait ...\n")
    assert backend.parse_status(down, ["2010"]) == {"2010": None}
    assert backend.get_status("12|WEIRD|-|-\n") is None
    assert "state 'WEIRD', which clusterjob does not know" in caplog.text


def test_find_tag() -> None:
    """IBM Spectrum LSF 10.1, bjobs -o "jobid job_description" (bsub -Jd), and "No job found"."""
    backend = LsfBackend()
    assert backend.tag_lookup_command("cj-1") == [
        "bjobs",
        "-a",
        "-noheader",
        "-o",
        "jobid job_description delimiter='|'",
    ]
    assert backend.tag_lookup_command("cj-1", finished=True) is None
    listing = ok(DATA.read("bjobs_o_descriptions.txt"))
    assert backend.parse_tag_lookup(listing, "cj-1a2b3c4d5e-9f8e7d") == ["3002"]
    assert backend.parse_tag_lookup(listing, "cj-0000000000-aaaaaa") == [
        "3003"
    ]  # appended to a user's -Jd
    assert backend.parse_tag_lookup(listing, "cj-ffffffffff-000000") == []  # listed, not there
    assert backend.parse_tag_lookup(NO_JOB_FOUND, "cj-1") == []


@pytest.mark.parametrize(
    "result",
    [
        CommandResult(0, ""),
        CommandResult(127, "", "sh: 1: bjobs: not found\n"),
        CommandResult(255, "", "LSF is down. Please wait ...\n"),
    ],
)
def test_find_tag_never_claims_absence_it_cannot_prove(result: CommandResult) -> None:
    with pytest.raises(
        SubmitError,
        match="cannot tell whether the interrupted submission tagged cj-1 reached LSF: bjobs exited",
    ):
        LsfBackend().parse_tag_lookup(result, "cj-1")


def test_find_tag_command_sees_no_job_found_on_stderr(tmp_path: Path) -> None:
    """A stand-in bjobs answering like LSF without jobs: message on stderr, exit 255
    (LSB_BJOBS_CONSISTENT_EXIT_CODE=Y); the parser reads stderr from the whole result."""
    fake = fake_command(
        tmp_path / "bin",
        "bjobs",
        '[ "$4" = "jobid job_description delimiter=\'|\'" ] || exit 2\necho "No job found" >&2\nexit 255\n',
    )
    backend = LsfBackend()
    out = run_command(
        backend.tag_lookup_command("cj-1") or [], environment_first_on_path(fake.parent)
    )
    assert (out.returncode, out.stdout, out.stderr) == (255, "", "No job found\n")
    assert backend.parse_tag_lookup(out, "cj-1") == []


# -- answers through a noisy login shell (banners, escape sequences, blank lines) -------


def test_job_id_after_a_site_banner() -> None:
    """IBM Spectrum LSF 10.1 Command Reference, bsub: "Job <ID> is submitted to queue <name>.";
    before it, what a site's esub printed (``[I] possible CPU types = ...``, numbers included)."""
    assert LsfBackend().get_job_id(DATA.read("bsub_after_site_banner.txt")) == "920524"


@pytest.mark.parametrize(
    ("response", "job_id"),
    [
        ("\x1b]0;login1\x07\x1b[32mJob <920524> is submitted to queue <q>.\x1b[0m\r\n", "920524"),
        (
            "\n\nJob <77> is submitted to default queue <normal>.\n<<Waiting for dispatch ...>>\n",
            "77",
        ),
        (
            "Welcome to cluster X (2 nodes)\n[I] possible CPU types = Haswell(24)\n",
            None,
        ),  # numbers, no ID line
        ("Note: Job <5> is submitted only after approval\n", None),  # not bsub's line
        (
            "Job <5> is submitted to queue <a>.\nJob <6> is submitted to queue <b>.\n",
            None,
        ),  # which one?
    ],
)
def test_job_id_only_from_bsubs_whole_line_and_never_a_choice(
    response: str, job_id: str | None
) -> None:
    """IBM Spectrum LSF 10.1 Command Reference, bsub: the line "Job <ID> is submitted to [default]
    queue <name>." (``bsub -K`` adds "<<Waiting for dispatch ...>>" after it)."""
    assert LsfBackend().get_job_id(response) == job_id


@pytest.mark.parametrize(
    "fixture",
    [
        *(name for name in DATA.names("bjobs_o_*.txt") if name != "bjobs_o_descriptions.txt"),
        "bjobs_no_job_found.stderr",
    ],
)
def test_bjobs_answer_is_the_same_through_a_noisy_login_shell(fixture: str, login_noise) -> None:
    """IBM Spectrum LSF 10.1, bjobs -o "... delimiter='|'" -noheader records, with a banner before
    them, a window title glued to the first, \\r\\n line ends, and blank and unknown lines between."""
    clean = DATA.read(fixture)
    noisy = login_noise(clean)
    assert parse_bjobs(noisy) == parse_bjobs(clean)
    backend = LsfBackend()
    ids = list(parse_bjobs(clean)) or ["12"]
    assert backend.parse_status(ok(noisy), ids) == backend.parse_status(ok(clean), ids)
    assert backend.get_status(noisy) == backend.get_status(clean)


def test_login_noise_alone_is_no_status(login_noise) -> None:
    noise = login_noise("")
    assert parse_bjobs(noise) == {}
    assert LsfBackend().get_status(noise) is None
    assert LsfBackend().parse_status(ok(noise), ["12"]) == {"12": None}


def test_find_tag_through_a_noisy_login_shell(login_noise) -> None:
    """A hit behind a window title glued to the first listed line was lost, and the other listed
    jobs made "no job carries the tag" look proven: the job would be submitted twice."""
    backend = LsfBackend()
    listing = DATA.read("bjobs_o_descriptions.txt")
    for tag in ("cj-1a2b3c4d5e-9f8e7d", "cj-0000000000-aaaaaa", "cj-ffffffffff-000000"):
        assert backend.parse_tag_lookup(ok(login_noise(listing)), tag) == backend.parse_tag_lookup(
            ok(listing), tag
        )
    hit_first = "3002|cj-1a2b3c4d5e-9f8e7d\n3001|-\n"
    assert backend.parse_tag_lookup(ok(login_noise(hit_first)), "cj-1a2b3c4d5e-9f8e7d") == ["3002"]
    noisy_none = CommandResult(255, login_noise(""), DATA.read("bjobs_no_job_found.stderr"))
    assert backend.parse_tag_lookup(noisy_none, "cj-1") == []
