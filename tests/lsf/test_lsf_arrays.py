"""LSF job arrays for ``submit_all``, fixture-tested in the formats IBM documents (no LSF here).

IBM Spectrum LSF 10.1 documents used (read for facts):

* bsub -J, https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_command_ref/bsub.__j.1.html : an
  array is named ``-J "name[index_list]"``; at most 1000 elements by default, also the largest
  index, unless MAX_JOB_ARRAY_SIZE (lsb.params) says otherwise.
* Job arrays, https://ibm.com/support/knowledgecenter/SSWRJV_10.1.0/lsf_admin/job_arrays_lsf.html :
  every element shares the array's job ID and is referenced by its index; an array name holds
  a-z A-Z 0-9 . - _ only; the whole specification at most 255 characters; elements are
  controlled and monitored as individual jobs (bjobs, bkill ``"job_ID[index]"``).
* LSB_JOBINDEX, https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_admin/job_array_cl_args.html :
  the element's index in its environment.
* bsub -o, https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_command_ref/bsub.o.1.html : ``-o``
  without ``-e``: the job's stderr goes to the output file too.
* bjobs job_id, https://www.ibm.com/support/knowledgecenter/SSWRJV_10.1.0/lsf_command_ref/bjobs.zz1argument.job_id.1.html
  and bjobs -o, https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_command_ref/bjobs.o.1.html :
  ``bjobs [job_ID | "job_ID[index_list]"]``, custom fields with a delimiter.
* LSB_BJOBS_DISPLAY_ENH,
  https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_config_ref/lsf.conf.lsb_bjobs_display_enh.5.html :
  by default (N) the JOBID column of an element is the array's ID; with Y it is ``ID[index]``.

Fixtures (``data/``): ``bjobs_o_array_elements.txt`` (array 4001 of 4 elements: running, exit 3,
done, pending; array 4002: done, killed by its owner) with the default JOBID column, and
``bjobs_o_array_elements_display_enh.txt`` the same with LSB_BJOBS_DISPLAY_ENH=Y;
``bjobs_o_descriptions_array*.txt`` the tag lookup's listing of an array (each element with the
array's ``-Jd`` description); ``bsub_submitted_array.txt``: bsub's answer for an array.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterjob import JobScript, submit_all, wait_all
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_lsf import LsfBackend
from helpers.commands import FakeCommands
from helpers.data import DataFolder
from helpers.results import job_result, ok

DATA = DataFolder(__file__)
ELEMENTS = ["bjobs_o_array_elements.txt", "bjobs_o_array_elements_display_enh.txt"]
TAG = "cj-1a2b3c4d5e-aaaaaa"


@pytest.fixture
def backend() -> LsfBackend:
    return LsfBackend()


def test_lsf_packs_with_lsb_jobindex_up_to_1000_elements(backend: LsfBackend) -> None:
    """bsub -J: 1000 elements by default (MAX_JOB_ARRAY_SIZE); LSB_JOBINDEX; bsub -o alone takes
    stderr too; element 3 of array 4001 is ``4001[3]`` to bjobs and bkill."""
    assert backend.can_pack()
    assert (backend.array_task_variable, backend.max_array_size) == ("LSB_JOBINDEX", 1000)
    assert backend.stderr_follows_stdout
    assert backend.task_job_id("4001", 3) == "4001[3]"
    assert backend.cmd_cancel(job_result(backend, "4001[3]")) == ["bkill", "4001[3]"]


def test_the_array_is_named_name_first_last_in_a_quoted_J_line(backend: LsfBackend) -> None:
    """bsub -J "name[index_list]": the index list is part of the name, in double quotes."""
    resources = backend.array_resources({"jobname": "sweep", "queue": "normal"}, 1, 10)
    assert resources == {"jobname": "sweep[1-10]", "queue": "normal"}
    job = JobScript("true", jobname="sweep", backend="lsf")
    job.resources.update(backend.array_resources(dict(job.resources), 1, 10))
    assert '#BSUB -J "sweep[1-10]"' in backend.resource_headers(job)


def test_an_array_name_keeps_to_what_lsf_accepts(backend: LsfBackend) -> None:
    """Job arrays: a-z A-Z 0-9 . - _ in the name, at most 255 characters for name[index_list]."""
    assert backend.array_resources({"jobname": "my run+1"}, 1, 4)["jobname"] == "my_run_1[1-4]"
    long = backend.array_resources({"jobname": "x" * 300}, 1, 1000)["jobname"]
    assert len(long) == 255 and long.endswith("x[1-1000]")


@pytest.mark.parametrize("fixture", ELEMENTS)
def test_each_element_has_its_own_status_whatever_the_jobid_column(
    backend: LsfBackend, fixture: str
) -> None:
    """Every element is a line of its own; its index is in the JOBID column only with
    LSB_BJOBS_DISPLAY_ENH=Y, always at the end of its name (``sweep[2]``)."""
    asked = [f"4001[{k}]" for k in range(1, 6)] + ["4002[1]", "4002[2]"]
    statuses = backend.parse_status(ok(DATA.read(fixture)), asked)
    assert [statuses[j] for j in asked] == [RUNNING, FAILED, COMPLETED, PENDING, None] + [
        COMPLETED,
        CANCELLED,  # TERM_OWNER: bkill
    ]
    assert (statuses["4001"], statuses["4002"]) == (RUNNING, CANCELLED)  # the whole arrays


def test_elements_are_asked_for_by_their_array_once(backend: LsfBackend) -> None:
    """bjobs <array ID> lists every element: one argument per array, not one per element."""
    runs = [job_result(backend, f"4001[{k}]") for k in range(1, 5)] + [job_result(backend, "12")]
    command = backend.status_command(runs)
    assert command is not None and command[-2:] == ["4001", "12"]


@pytest.mark.parametrize(
    "fixture", ["bjobs_o_descriptions_array.txt", "bjobs_o_descriptions_array_display_enh.txt"]
)
def test_the_tag_lookup_finds_the_array_once(backend: LsfBackend, fixture: str) -> None:
    """Each element carries the array's -Jd description: the array's ID comes once, no index."""
    listing = ok(DATA.read(fixture))
    assert backend.parse_tag_lookup(listing, TAG) == ["4001"]
    assert backend.parse_tag_lookup(listing, "cj-0000000000-bbbbbb") == []


def test_submit_all_sends_one_array_to_bsub_and_polls_its_elements_with_one_bjobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submit_all with stand-ins for bsub (keeps the script it is piped, answers as bsub does for
    an array) and bjobs (answers with every element ended): the array's script carries
    ``#BSUB -J "sweep[1-4]"``, its tag as ``-Jd`` and /dev/null as its own output; each task
    writes to its job's file, stderr with it (-o alone); one bjobs answers for all four."""
    fake = FakeCommands(tmp_path)
    fake.script(
        "bsub", f'cat > "{tmp_path}/piped.lsf"\ncat "{DATA / "bsub_submitted_array.txt"}"\n'
    )
    ended = "\n".join(
        ["4001|DONE|-|-|sweep[1]", "4001|EXIT|3|-|sweep[2]", "4001|DONE|-|-|sweep[3]"]
        + ["4001|EXIT|130|TERM_OWNER|sweep[4]"]
    )
    fake.command("bjobs", ('"-a -noheader -o "*', ended, "", 0))
    monkeypatch.setenv("PATH", fake.environment()["PATH"])
    JobScript.rootdir = str(tmp_path)
    JobScript.backend = "lsf"
    jobs = [
        JobScript(body, jobname=f"sweep_{k}", stdout=f"sweep_{k}.out", exit_markers=False)
        for k, body in enumerate(["echo a", "exit 3", "echo c", "sleep 60"], start=1)
    ]
    results = submit_all(jobs)
    assert [r.job_id for r in results] == [f"4001[{k}]" for k in range(1, 5)]
    assert [r.jobname for r in results] == [f"sweep_{k}" for k in range(1, 5)]
    script = (tmp_path / "piped.lsf").read_text()
    assert '#BSUB -J "sweep[1-4]"' in script.splitlines()
    assert "#BSUB -o /dev/null" in script.splitlines()
    assert f"#BSUB -Jd {results[0].tag}" in script.splitlines()
    assert 'case "${LSB_JOBINDEX:-}" in' in script
    assert (
        f'2) exec >"${{LS_SUBCWD:-.}}"/sweep_2.out 2>&1; LSB_JOBNAME=sweep_2 exec {tmp_path}/sweep_2.lsf ;;'
        in (script)
    )
    assert fake.calls().count("bsub ") == 1
    assert wait_all(results, timeout=30) == [COMPLETED, FAILED, COMPLETED, CANCELLED]
    assert [call.split()[0] for call in fake.calls()] == ["bsub", "bjobs"]
