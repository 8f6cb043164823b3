"""Jobs packed into arrays by ``submit_all`` on PBS Professional and TORQUE: task IDs, their
status, their cancellation, and the crash-recovery lookup of an array by its tag.

Fixture files in ``data/``:

* ``pbspro_qstat_xf_subjobs.txt``: ``qstat -x -f`` of six subjobs of the array
  ``1244[].pbsserver``, in the layout of the PBS Professional 2022.1 Reference
  Guide (qstat, "Job status in long format"; "Job Identifier Operands":
  subjob ``<sequence number>[<index>].<server>``; job state X, "Subjob has
  completed execution or has been deleted"; substates 91 terminated, 92
  finished, 93 failed). Subjobs 1, 2, 3 and 6 have records of their own (with
  ``array_id``/``array_index``); 4 (queued) and 5 (deleted while queued) never
  ran, and the server shows the array's own attributes under their IDs, with
  only the state replaced (OpenPBS ``status_subjob``): the array's substate 70
  and its summary ``Exit_status`` 1.
* ``pbspro_qstat_xf_all_tagged_array.txt``: the tag lookup's stdout (``id -un
  && qstat -x -f``): the user's name, the array ``1244[].pbsserver`` whose
  ``Variable_List`` has the tag (``qstat`` without ``-t`` lists an array, not
  its subjobs: Reference Guide, qstat ``-t``/``-J``), and two other jobs.
* ``torque_qstat_f_array_elements.txt``: TORQUE 6 ``qstat -f`` of five
  elements of the array ``189[].torque-server.example.org`` (TORQUE
  Administrator Guide, "Job arrays": elements ``189[k].server``,
  ``PBS_ARRAYID``; the server names an element's job ``<name>-<k>`` and
  sets ``job_array_id``; "Job Exit Status": 271 = 256 + SIGTERM, qdel).
* ``slurm_torque_qstat_f_array_pending_rest.txt``: captured on the test
  machine from SLURM's TORQUE wrappers (``slurm-wlm-torque``) after ``qsub -t
  1-3`` printed ``9207``, while tasks 1 and 2 ran: the only record under the
  array's ID is SLURM's pending rest of the array (state Q).
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from clusterjob.errors import SubmitError
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from clusterjob_pbs import LPbsBackend, PbsBackend, PbsProBackend
from clusterjob_pbs.qstat import array_of_subjob, subjob_id
from helpers.data import DataFolder
from helpers.results import job_result, ok

DATA = DataFolder(__file__)

PBSPRO_ARRAY = "1244[].pbsserver"
TORQUE_ARRAY = "189[].torque-server.example.org"


class TorqueServerBackend(PbsBackend):
    """``pbs`` as the class docstring says to set it up for a real TORQUE server."""

    name = "torque-server"
    tag_variable = "CLUSTERJOB_TAG"
    array_task_variable: ClassVar[str | None] = "PBS_ARRAYID"


def test_pbspro_packs_subjobs_indexed_by_pbs_array_index() -> None:
    """PBS Professional 2022.1 Reference Guide: qsub -J <range>, PBS_ARRAY_INDEX; server attribute
    max_array_size, default 10000."""
    backend = PbsProBackend()
    assert backend.can_pack()
    assert backend.array_task_variable == "PBS_ARRAY_INDEX"
    assert backend.max_array_size == 10000
    assert backend.array_resources({"jobname": "cj_sweep"}, 1, 4) == {
        "jobname": "cj_sweep",
        "-J": "1-4",
    }


def test_pbspro_subjob_ids_from_the_array_id_qsub_printed() -> None:
    """Reference Guide, "Job Identifier Operands": array <seq>[].<server>, subjob
    <seq>[<index>].<server>; qsub prints the array's identifier."""
    backend = PbsProBackend()
    assert backend.get_job_id(f"{PBSPRO_ARRAY}\n") == PBSPRO_ARRAY
    assert backend.task_job_id(PBSPRO_ARRAY, 3) == "1244[3].pbsserver"
    assert backend.task_job_id("1244[]", 12) == "1244[12]"  # a server without a name suffix
    assert subjob_id("1244.pbsserver", 1) is None  # not an array
    assert array_of_subjob("1244[3].pbsserver") == PBSPRO_ARRAY
    assert array_of_subjob(PBSPRO_ARRAY) is None
    assert array_of_subjob("1244.pbsserver") is None


def test_pbspro_asks_about_and_cancels_one_subjob_by_its_id() -> None:
    """Reference Guide, qstat and qdel: a subjob identifier selects that subjob only."""
    backend = PbsProBackend()
    tasks = [job_result(backend, backend.task_job_id(PBSPRO_ARRAY, k)) for k in (1, 2)]
    assert backend.status_command(tasks) == [
        "qstat",
        "-x",
        "-f",
        "1244[1].pbsserver",
        "1244[2].pbsserver",
    ]
    assert backend.cmd_cancel(tasks[1]) == ["qdel", "1244[2].pbsserver"]


def test_pbspro_subjob_statuses() -> None:
    """PBS Professional 2022.1 Reference Guide, qstat -x -f of subjobs: X with substate 92
    (finished), 93 (failed), 91 (terminated by qdel); R running; a queued subjob and one deleted
    while queued have no job of their own and show the array's attributes under their IDs
    (OpenPBS status_subjob): Q is PENDING, and X without a record of its own is CANCELLED (with
    job history every subjob that ran keeps its own record), whatever the array's substate 70 and
    summary Exit_status 1 say."""
    backend = PbsProBackend()
    asked = [backend.task_job_id(PBSPRO_ARRAY, k) for k in range(1, 7)]
    statuses = backend.parse_status(ok(DATA.read("pbspro_qstat_xf_subjobs.txt")), asked, True)
    assert [statuses[job_id] for job_id in asked] == [
        COMPLETED,
        FAILED,
        RUNNING,
        PENDING,
        CANCELLED,
        CANCELLED,
    ]


def test_pbspro_subjob_asked_with_another_server_spelling() -> None:
    """qsub and qstat may name the server differently; subjobs match by sequence number and index."""
    backend = PbsProBackend()
    asked = ["1244[2].pbsserver.example.org", "1244[7].pbsserver.example.org"]
    statuses = backend.parse_status(ok(DATA.read("pbspro_qstat_xf_subjobs.txt")), asked, True)
    assert (statuses[asked[0]], statuses[asked[1]]) == (FAILED, None)  # 7 is not listed


def test_pbspro_tag_lookup_finds_the_array_not_its_subjobs() -> None:
    """The tag is in the array's Variable_List (qsub -v in the array's header); qstat -x -f
    without -t lists the array as 1244[].pbsserver (Reference Guide, qstat -t, -J)."""
    backend = PbsProBackend()
    listing = DATA.read("pbspro_qstat_xf_all_tagged_array.txt")
    assert backend.parse_tag_lookup(ok(listing), "cj-5f6e7d8c9b-a1b2c3") == [PBSPRO_ARRAY]
    assert backend.parse_tag_lookup(ok(listing), "cj-1a2b3c4d5e-9f8e7d") == []


def test_pbspro_tag_lookup_names_an_array_once_when_its_subjobs_are_listed() -> None:
    """Subjobs carry their array's Variable_List (qstat -t lists them): each stands for its
    array, the ID qsub printed and task_job_id takes."""
    backend = PbsProBackend()
    listing = "user1\n" + DATA.read("pbspro_qstat_xf_subjobs.txt")
    assert backend.parse_tag_lookup(ok(listing), "cj-5f6e7d8c9b-a1b2c3") == [PBSPRO_ARRAY]


def test_torque_server_packs_elements_named_by_index() -> None:
    """TORQUE Administrator Guide, "Job arrays": qsub -t prints 189[].server, the elements are
    189[k].server with PBS_ARRAYID=k; qdel takes an element's ID; idle_slot_limit (default 300)."""
    backend = TorqueServerBackend()
    assert backend.can_pack()
    assert backend.max_array_size == 300
    assert backend.array_resources({}, 1, 5) == {"-t": "1-5"}
    element = backend.task_job_id(TORQUE_ARRAY, 2)
    assert element == "189[2].torque-server.example.org"
    assert backend.cmd_cancel(job_result(backend, element)) == ["qdel", element]


def test_torque_array_output_discarded_by_its_jobs_is_left_to_the_default_paths() -> None:
    """TORQUE appends -<k> to an array's -o/-e paths for element k (server job_clone, as the
    element names 189[k] and the default <name>.o189-<k> show): /dev/null would become the
    unwritable /dev/null-<k>, so the array's own output keeps TORQUE's default files. PBS
    Professional replaces only ^array_index^ in a subjob's paths: /dev/null stays."""
    discarded = {"jobname": "cj_sweep", "stdout": "/dev/null", "stderr": "/dev/null"}
    assert TorqueServerBackend().array_resources(dict(discarded), 1, 3) == {
        "jobname": "cj_sweep",
        "-t": "1-3",
    }
    assert PbsProBackend().array_resources(dict(discarded), 1, 3) == {**discarded, "-J": "1-3"}
    named = {"jobname": "cj_sweep", "stdout": "all.out"}  # not what submit_all writes: kept
    assert TorqueServerBackend().array_resources(dict(named), 1, 3) == {**named, "-t": "1-3"}


def test_torque_element_statuses() -> None:
    """TORQUE 6 qstat -f of array elements: C with exit_status 0 / 3 / 271 (256 + SIGTERM: qdel),
    R, Q."""
    backend = TorqueServerBackend()
    asked = [backend.task_job_id(TORQUE_ARRAY, k) for k in range(1, 6)]
    statuses = backend.parse_status(ok(DATA.read("torque_qstat_f_array_elements.txt")), asked)
    assert [statuses[job_id] for job_id in asked] == [
        COMPLETED,
        FAILED,
        RUNNING,
        PENDING,
        CANCELLED,
    ]


def test_torque_tag_lookup_of_elements_names_their_array() -> None:
    """TORQUE copies the array's Variable_List (with the tag) into every element."""
    listing = "user1\n" + DATA.read("torque_qstat_f_array_elements.txt")
    found = TorqueServerBackend().parse_tag_lookup(ok(listing), "cj-5f6e7d8c9b-a1b2c3")
    assert found == [TORQUE_ARRAY]


def test_pbs_and_lpbs_submit_jobs_one_by_one() -> None:
    """``pbs`` runs on SLURM's TORQUE wrappers, whose qstat/qdel cannot address one task of an
    array (see PbsBackend); LPBS has no arrays."""
    assert PbsBackend().array_task_variable is None
    assert not PbsBackend().can_pack()
    assert not LPbsBackend().can_pack()


def test_slurm_torque_wrappers_list_no_task_under_an_array_id() -> None:
    """Captured from slurm-wlm-torque: after `qsub -t 1-3` printed 9207, `qstat -f 9207` shows
    the pending rest of the array only (running tasks have SLURM job IDs of their own), and no
    record is named after a task; so the wrappers cannot follow a task (and qdel 9207_2 deleted
    all three on the test machine)."""
    backend = PbsBackend()
    listing = ok(DATA.read("slurm_torque_qstat_f_array_pending_rest.txt"))
    assert backend.parse_status(listing, ["9207"]) == {"9207": PENDING}
    assert backend.parse_status(listing, ["9207_1", "9207[1]"]) == {
        "9207": PENDING,
        "9207_1": None,
        "9207[1]": None,
    }


@pytest.mark.parametrize("answer", ["9207", "9207.vm"])
def test_a_qsub_that_prints_no_array_id_cannot_name_tasks(answer: str) -> None:
    """A backend set up to pack on a qsub that answers like the wrappers fails with the remedy."""
    with pytest.raises(SubmitError) as error:
        TorqueServerBackend().task_job_id(answer, 1)
    message = str(error.value)
    assert f"qsub printed {answer!r} for an array job" in message
    assert "'123[].server'" in message
    assert "use the 'slurm' backend" in message
    assert "pack=False" in message
