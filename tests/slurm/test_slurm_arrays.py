"""Array tasks known by their own job IDs (``123_4``), as ``submit_all`` packs jobs into arrays.

The scheduler-free tests read output captured from the test cluster (SLURM 22.05,
``bash tests/slurm/capture_fixtures.sh tasks``): array 6013 of six tasks, submitted
held with ``--comment=cj-fixture-tag``; task 2 exits 3, task 3 is cancelled while it
runs, task 5 while it is still folded into the pending record (SLURM then drops it
without a record anywhere), tasks 1, 4 and 6 complete. The ``slurm`` tests submit
arrays to the real cluster, by hand (``sbatch --array``) and through ``submit_all``.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import clusterjob.polling
import pytest
from clusterjob import AsyncResult, JobScript, submit_all, wait_all
from clusterjob.backends import CommandResult
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, is_finished
from clusterjob_slurm import SlurmBackend
from clusterjob_slurm.queries import squeue_command
from helpers.commands import FakeCommands, run_command
from helpers.data import DataFolder
from helpers.results import job_result, look_up_tag, ok
from helpers.slurm import cancel_jobs_named
from helpers.waiting import TIMEOUT, wait_for

DATA = DataFolder(__file__)
ARRAY = "6013"  #: the array of the captured fixtures
TASKS = [f"{ARRAY}_{task}" for task in range(1, 7)]

backend = SlurmBackend()


def task_statuses(name: str, finished: bool = False) -> dict[str, int | None]:
    """Status of each task of the fixture array, read from the captured output ``name``."""
    found = backend.parse_status(ok(DATA.read(name)), TASKS, finished)
    return {job_id.split("_")[1]: found[job_id] for job_id in TASKS}


# -- the packing contract ------------------------------------------------------------


def test_slurm_packs_jobs_into_arrays_of_at_most_1000_tasks() -> None:
    """slurm.conf(5): MaxArraySize defaults to 1001, task indices run from 0 to 1000."""
    assert backend.can_pack()
    assert backend.array_task_variable == "SLURM_ARRAY_TASK_ID"
    assert backend.max_array_size == 1000
    assert backend.stderr_follows_stdout


def test_task_job_id_is_array_id_underscore_task() -> None:
    array_id = backend.get_job_id(DATA.read("sbatch_array.txt"))
    assert array_id == ARRAY
    assert backend.task_job_id(array_id, 4) == "6013_4"


def test_array_resources_render_as_the_array_option() -> None:
    resources = backend.array_resources({"jobname": "sweep"}, 1, 5)
    job = JobScript("true", backend="slurm", **resources)
    assert "#SBATCH --array=1-5" in str(job).splitlines()


def test_a_task_is_asked_about_and_cancelled_by_its_own_id() -> None:
    runs = [job_result(backend, job_id) for job_id in ("6013_2", "6013_5")]
    assert backend.status_command(runs) == squeue_command(["6013_2", "6013_5"])
    assert backend.status_command(runs)[-1] == "--jobs=6013_2,6013_5"
    assert "-j" in backend.status_command(runs, finished=True)
    assert "6013_2,6013_5" in backend.status_command(runs, finished=True)
    assert backend.cmd_cancel(runs[0]) == ["scancel", "6013_2"]


# -- statuses of tasks from squeue and sacct -------------------------------------------


def test_tasks_folded_into_one_pending_record_are_each_pending() -> None:
    """squeue -j 6013_2,6013_3,6013_5 prints one record ``6013_[2-3,5]`` for the three."""
    found = backend.parse_status(ok(DATA.read("squeue_tasks_pending_folded.txt")), TASKS[1:5])
    assert {job_id: found[job_id] for job_id in TASKS[1:5]} == {
        "6013_2": PENDING,
        "6013_3": PENDING,
        "6013_4": None,  # not asked about, so not listed: squeue does not tell
        "6013_5": PENDING,
    }


def test_running_failed_and_folded_tasks() -> None:
    assert task_statuses("squeue_tasks_mixed.txt") == {
        "1": RUNNING,
        "2": FAILED,
        **dict.fromkeys("3456", PENDING),  # 6013_[3-6]
    }


def test_a_task_cancelled_while_folded_is_unknown_never_guessed() -> None:
    """scancel 6013_5 of a task still in the pending record drops it: no record in squeue or
    in sacct, ever. Its status stays unknown (a ``cancel()`` through clusterjob records
    CANCELLED itself); task 3, cancelled while running, is CANCELLED."""
    assert task_statuses("squeue_tasks_after_cancel.txt") == {
        "1": RUNNING,
        "2": FAILED,
        "3": CANCELLED,
        "4": PENDING,
        "5": None,
        "6": PENDING,
    }
    assert task_statuses("sacct_tasks_finished.txt", finished=True)["5"] is None


def test_a_completed_task_is_completed_whatever_its_siblings() -> None:
    """Regression: a task's own record in squeue went through the rule for a whole array
    (all visible tasks ended and none failed: unknown, ask accounting), so a COMPLETED task
    asked about by its ID was unknown until the controller forgot it."""
    assert task_statuses("squeue_tasks_finished.txt") == {
        "1": COMPLETED,
        "2": FAILED,
        "3": CANCELLED,
        "4": COMPLETED,
        "5": None,
        "6": COMPLETED,
    }


def test_the_whole_array_is_still_judged_by_all_its_tasks() -> None:
    finished = ok(DATA.read("squeue_tasks_finished.txt"))
    assert backend.parse_status(finished, [ARRAY])[ARRAY] == FAILED
    completed = ok("6013_1|COMPLETED|None\n6013_4|COMPLETED|None\n")
    assert backend.parse_status(completed, [ARRAY])[ARRAY] is None  # a task may be forgotten
    assert backend.parse_status(completed, ["6013_1"])["6013_1"] == COMPLETED


def test_tasks_from_accounting() -> None:
    assert task_statuses("sacct_tasks_finished.txt", finished=True) == {
        "1": COMPLETED,
        "2": FAILED,
        "3": CANCELLED,
        "4": COMPLETED,
        "5": None,
        "6": COMPLETED,
    }


def test_tasks_folded_in_accounting_are_each_pending() -> None:
    """sacct by time window (more jobs than can be listed) prints pending tasks folded."""
    assert task_statuses("sacct_array_pending_folded.txt", finished=True) == {
        "1": RUNNING,
        "2": FAILED,
        "3": CANCELLED,
        **dict.fromkeys("456", PENDING),  # 6013_[4-6]
    }


def test_a_purged_task_asked_alone_is_unknown() -> None:
    """squeue fails for a lone ID it does not know: the task is then looked up in sacct."""
    purged = CommandResult(1, "", DATA.read("squeue_purged_task.stderr"))
    assert backend.parse_status(purged, ["99999999_1"]) == {"99999999_1": None}


# -- exit codes ------------------------------------------------------------------------


def test_exit_codes_of_tasks_from_accounting() -> None:
    """ExitCode ``3:0`` of FAILED task 2 is 3; the cancelled task 3 has none (its ``0:0`` says
    nothing), nor the dropped task 5."""
    result = ok(DATA.read("sacct_tasks_finished.txt"))
    codes = backend.parse_exit_codes(result, TASKS, finished=True)
    assert codes == {"6013_1": 0, "6013_2": 3, "6013_4": 0, "6013_6": 0}


def test_exit_codes_of_jobs_killed_or_unlisted_are_unknown() -> None:
    result = ok(DATA.read("sacct_mixed.txt"))  # 317 exits 2, 319 hits its walltime, 322 exits 0
    codes = backend.parse_exit_codes(result, ["317", "318", "319", "322", "999"], finished=True)
    assert codes == {"317": 2, "322": 0}


def test_no_exit_codes_from_squeue_or_a_failed_sacct() -> None:
    assert backend.parse_exit_codes(ok(DATA.read("squeue_tasks_finished.txt")), TASKS) == {}
    failed = CommandResult(1, DATA.read("sacct_tasks_finished.txt"), "sacct: error")
    assert backend.parse_exit_codes(failed, TASKS, finished=True) == {}


def test_exit_codes_are_not_read_from_the_job_completion_log() -> None:
    """``sacct -c`` lists array 10's tasks under raw IDs: record ``10`` is task 3 of array 10."""
    result = ok(DATA.read("sacct_jobcomp.txt"), DATA.read("sacct_jobcomp.stderr"))
    assert backend.parse_exit_codes(result, ["10", "3", "4"], finished=True) == {}


# -- the tag lookup of crash recovery --------------------------------------------------


@pytest.mark.parametrize("name", ["squeue_tag_array_pending.txt", "squeue_tag_array_split.txt"])
def test_tag_lookup_in_the_queue_finds_the_array_id(name: str) -> None:
    """The dispatcher's ``--comment`` shows on the folded record and on every started task;
    the lookup answers the array's ID, the one sbatch printed."""
    found = backend.parse_tag_lookup(ok(DATA.read(name)), "cj-fixture-tag")
    assert found == [backend.get_job_id(DATA.read("sbatch_array.txt"))] == [ARRAY]


def test_tag_lookup_in_accounting_finds_the_array_id() -> None:
    found = backend.parse_tag_lookup(ok(DATA.read("sacct_tag_array.txt")), "cj-fixture-tag", True)
    assert found == [ARRAY]


def test_tag_lookup_through_the_commands_finds_the_array_id(tmp_path: Path) -> None:
    """The whole lookup as crash recovery runs it, over the captured squeue answer."""
    commands = FakeCommands(tmp_path)
    commands.script("squeue", f"cat '{DATA / 'squeue_tag_array_split.txt'}'\n")
    assert look_up_tag(backend, "cj-fixture-tag", commands.run) == [ARRAY]
    assert [call.split()[0] for call in commands.calls()] == ["squeue"]


# -- on the real cluster ---------------------------------------------------------------

TASK_SCRIPT = """\
#!/bin/bash
case $SLURM_ARRAY_TASK_ID in 2) exit 3 ;; 4) sleep 300 ;; *) sleep 1 ;; esac
"""


class Arrays:
    """Per-test helper: a unique job-name prefix, arrays submitted by hand, the clean-up."""

    def __init__(self, tmp_path: Path) -> None:
        self.prefix = f"cjt{secrets.token_hex(3)}"
        self.tmp_path = tmp_path

    def sbatch(self, *args: str) -> str:
        """The array ID of ``sbatch ARGS`` of :data:`TASK_SCRIPT`, as clusterjob reads it."""
        script = self.tmp_path / "tasks.sh"
        script.write_text(TASK_SCRIPT)
        done = subprocess.run(
            ["sbatch", f"--job-name={self.prefix}-arr", "--output=/dev/null", *args, str(script)],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.tmp_path,
        )
        array_id = backend.get_job_id(done.stdout)
        assert array_id is not None, done.stdout
        return array_id

    def cleanup(self) -> None:
        cancel_jobs_named(self.prefix)


@pytest.fixture
def arrays(slurm_env: dict[str, str], tmp_path: Path) -> Iterator[Arrays]:
    helper = Arrays(tmp_path)
    yield helper
    helper.cleanup()


def listed_tasks(array_id: str) -> list[str]:
    """The task IDs the controller lists for ``array_id``, one per task (``squeue -r``)."""
    answer = run_command(["squeue", "--states=all", "-r", "-h", "-o", "%i", "-j", array_id])
    return sorted(answer.stdout.split())


@pytest.mark.slurm
def test_tasks_of_a_real_array_by_their_ids(arrays: Arrays) -> None:
    """Held array of 4: every task PENDING from the folded record; the tag lookup finds the
    array; cancel() of task 3 (folded) and of task 4 (running) ends those tasks only; task 2
    FAILED with exit code 3 from accounting."""
    tag = f"cj-{arrays.prefix}"
    array_id = arrays.sbatch("--array=1-4", "--hold", f"--comment={tag}")
    runs = [job_result(backend, backend.task_job_id(array_id, task)) for task in range(1, 5)]
    assert [run.poll() for run in runs] == [PENDING] * 4
    assert look_up_tag(backend, tag, run_command) == [array_id]

    runs[2].cancel()
    assert runs[2].status == CANCELLED
    assert listed_tasks(array_id) == [f"{array_id}_{task}" for task in (1, 2, 4)]
    subprocess.run(["scontrol", "release", array_id], check=True, capture_output=True)
    wait_for(lambda: runs[3].poll() == RUNNING, "task 4 to run")
    runs[3].cancel()
    fresh = job_result(backend, runs[3].job_id)
    wait_for(lambda: fresh.poll() == CANCELLED, "SLURM to report task 4 CANCELLED")
    assert wait_all(runs[:2], timeout=TIMEOUT) == [COMPLETED, FAILED]
    assert look_up_tag(backend, tag, run_command) == [array_id]

    def exit_codes() -> dict[str, int]:
        command = backend.status_command(runs, finished=True)
        assert command is not None
        result = run_command(command)
        return dict(backend.parse_exit_codes(result, [run.job_id for run in runs], True))

    wait_for(lambda: len(exit_codes()) == 2, "accounting to record tasks 1 and 2")
    assert exit_codes() == {runs[0].job_id: 0, runs[1].job_id: 3}


@pytest.mark.slurm
def test_squeue_answers_for_many_tasks_in_one_folded_record(arrays: Arrays) -> None:
    """A held array of 1000 tasks (SLURM's default limit, SlurmBackend.max_array_size: 1-1001
    is refused), asked about by all 1000 task IDs in one squeue: one record, every task
    PENDING."""
    with pytest.raises(subprocess.CalledProcessError) as refused:
        arrays.sbatch("--array=1-1001", "--hold")
    assert "Invalid job array specification" in refused.value.stderr
    array_id = arrays.sbatch(f"--array=1-{backend.max_array_size}", "--hold")
    job_ids = [backend.task_job_id(array_id, task) for task in range(1, 1001)]
    result = run_command(squeue_command(job_ids))
    assert result.stdout.splitlines() == [f"{array_id}_[1-1000]|PENDING|JobHeldUser"]
    statuses = backend.parse_status(result, job_ids)
    assert [statuses[job_id] for job_id in job_ids] == [PENDING] * 1000


# -- submit_all on the real cluster ------------------------------------------------------


class Sweep:
    """Per-test helper: jobs with a unique name prefix, SLURM's commands logged, the clean-up."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prefix = f"cjt{secrets.token_hex(3)}"
        (tmp_path / "logged").mkdir()
        self.commands = FakeCommands(tmp_path / "logged")
        for name in ("sbatch", "squeue", "sacct", "scancel", "scontrol"):
            real = shutil.which(name)
            assert real is not None, f"{name} is not on PATH"
            self.commands.script(name, f'exec {real} "$@"\n')  # logged, then the real one
        monkeypatch.setenv("PATH", self.commands.environment()["PATH"])

    def job(self, body: str, label: str, **attributes: object) -> JobScript:
        """A job named ``<prefix>-<label>``; ``attributes`` fill the ``{placeholders}`` of ``body``."""
        job = JobScript(body, jobname=f"{self.prefix}-{label}")
        for key, value in attributes.items():
            setattr(job, key, value)
        return job

    def calls(self, name: str) -> list[str]:
        """The arguments of every call of SLURM's command ``name`` so far."""
        return [call for call in self.commands.calls() if call.split()[0] == name]

    def cleanup(self) -> None:
        cancel_jobs_named(self.prefix)


@pytest.fixture
def sweep(
    slurm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sweep]:
    monkeypatch.chdir(tmp_path)
    JobScript.backend = "slurm"
    JobScript.rootdir = str(tmp_path / "run")
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.max_sleep_interval = 1
    JobScript.resources["queue"] = slurm_env.get("SLURM_PARTITION", "debug")
    helper = Sweep(tmp_path, monkeypatch)
    yield helper
    helper.cleanup()


#: What a job of the sweeps runs: where it is, who it is, then its own exit code.
BODY = (
    "echo {value} from $SLURM_ARRAY_TASK_ID as $CLUSTERJOB_NAME; echo $CLUSTERJOB_ID > {value}.id; "
    "echo {value} to stderr >&2; sleep {nap}; exit {code}"
)


def array_of(results: Sequence[AsyncResult]) -> str:
    """The array ID the results' task IDs (``A_k``, k = 1, 2, ...) share."""
    array_ids = {str(result.job_id).split("_")[0] for result in results}
    assert len(array_ids) == 1, [result.job_id for result in results]
    array_id = array_ids.pop()
    assert [result.job_id for result in results] == [
        backend.task_job_id(array_id, task) for task in range(1, len(results) + 1)
    ]
    return array_id


@pytest.mark.slurm
def test_submit_all_packs_a_sweep_into_arrays_with_each_jobs_own_status_output_and_cancel(
    sweep: Sweep, tmp_path: Path
) -> None:
    """Five jobs of a sweep (their own names, bodies from placeholders; one exits 3, the first
    runs until cancelled) and two that set stdout= (which cannot share the first array:
    whether stdout is set is part of what an array's jobs share) go out in two sbatch calls.
    Each job gets its own task's status and exit code (markers), its own output file, and
    its cancel() ends its task alone: the siblings still under way finish as they would."""
    jobs = [
        sweep.job(
            BODY, f"sweep{i}", value=f"v{i}", nap=300 if i == 0 else 1, code=3 if i == 2 else 0
        )
        for i in range(5)
    ]
    jobs += [sweep.job(BODY, f"out{i}", value=f"o{i}", nap=1, code=0) for i in range(2)]
    for i, job in enumerate(jobs[5:]):
        job.resources["stdout"] = f"out{i}.txt"
    results = submit_all(jobs)

    assert len(sweep.calls("sbatch")) == 2
    array_id, out_array = array_of(results[:5]), array_of(results[5:])
    assert [result.jobname for result in results] == [job.resources["jobname"] for job in jobs]
    wait_for(lambda: results[0].poll() == RUNNING, "the long task to run")
    results[0].cancel()
    assert results[0].status == CANCELLED
    assert not all(is_finished(result.status) for result in results[1:5])
    assert wait_all(results[1:], timeout=TIMEOUT) == [
        COMPLETED, FAILED, COMPLETED, COMPLETED, COMPLETED, COMPLETED,
    ]  # fmt: skip
    assert [result.exit_code for result in results[1:]] == [0, 3, 0, 0, 0, 0]
    fresh = job_result(backend, results[0].job_id)  # SLURM agrees, not only our own bookkeeping
    wait_for(lambda: fresh.poll() == CANCELLED, "SLURM to report the task CANCELLED")

    run, name = tmp_path / "run", f"{sweep.prefix}-sweep"
    for task in range(2, 6):  # $CLUSTERJOB_NAME is the job's own name, not the array's
        output = (run / f"slurm-{array_id}_{task}.out").read_text()
        assert output == f"v{task - 1} from {task} as {name}{task - 1}\nv{task - 1} to stderr\n"
    for i in range(2):  # stderr follows stdout into the job's own file, as sbatch sends it
        output = (run / f"out{i}.txt").read_text()
        assert output == f"o{i} from {i + 1} as {sweep.prefix}-out{i}\no{i} to stderr\n"
    assert not list(run.glob(f"slurm-{out_array}_*.out"))

    # $CLUSTERJOB_ID is SLURM_JOB_ID: the task's raw job ID (srun needs it as it is), which
    # for the task that starts last is the array's own ID.
    raw_ids = {
        str(r.job_id): (run / f"v{i}.id").read_text().strip() for i, r in enumerate(results[:5])
    }

    def raw_ids_in_accounting() -> dict[str, str]:
        command = ["sacct", "-X", "-n", "-P", "-o", "JobID,JobIDRaw", "-j", array_id]
        return dict(line.split("|") for line in run_command(command).stdout.split())

    wait_for(lambda: raw_ids_in_accounting() == raw_ids, "sacct to list the tasks")
    for result in results:  # each job's cache file knows its task
        assert AsyncResult.from_cache(str(result.cache_file)).job_id == result.job_id


@pytest.mark.slurm
def test_wait_all_over_an_array_asks_slurm_as_often_as_over_one_job(
    sweep: Sweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without exit markers (so that SLURM is asked every cycle), each poll cycle over the
    five tasks of one array costs what one job costs: one squeue, at most one sacct."""
    jobs = [
        sweep.job(BODY, f"cost{i}", value=i, nap=2, code=0, exit_markers=False) for i in range(5)
    ]
    for job in jobs:
        job.resources["stdout"] = "/dev/null"
    results = submit_all(jobs)
    array_of(results)
    real_poll = clusterjob.polling.poll

    def poll_marking_cycles(results):  # type: ignore[no-untyped-def]
        with sweep.commands.log.open("a") as log:
            log.write("cycle\n")
        return real_poll(results)

    monkeypatch.setattr(clusterjob.polling, "poll", poll_marking_cycles)
    assert wait_all(results, timeout=TIMEOUT) == [COMPLETED] * 5
    log = sweep.commands.log.read_text()
    cycles = [
        [call.split()[0] for call in calls.splitlines()] for calls in log.split("cycle\n")[1:]
    ]
    assert len(cycles) >= 2
    for names in cycles:
        assert names.count("squeue") == 1 and names.count("sacct") <= 1, cycles
        assert set(names) <= {"squeue", "sacct"}, cycles
    print(f"{len(cycles)} cycles, {sum(map(len, cycles))} SLURM commands for 5 packed jobs")


@pytest.mark.slurm
def test_a_job_submitted_after_a_packed_job_waits_for_that_task_only(
    sweep: Sweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``after=[result]`` of a packed job is ``afterok:A_k``: SLURM holds the dependent job
    for task k alone, and gives up on it (DependencyNeverSatisfied: CANCELLED) if that task
    failed, whatever its siblings did."""
    # A job that never starts writes no marker: only SLURM tells. Ask it every 5 s, not 60 s.
    monkeypatch.setattr(AsyncResult, "scheduler_interval", 5.0)
    jobs = [sweep.job(BODY, f"parent{i}", value=f"p{i}", nap=3, code=i) for i in range(2)]
    parents = submit_all(jobs)
    array_of(parents)
    children = [
        sweep.job("true", f"child{i}").submit(after=[parent]) for i, parent in enumerate(parents)
    ]
    assert wait_all(children, timeout=TIMEOUT) == [COMPLETED, CANCELLED]
    assert [parent.status for parent in parents] == [COMPLETED, FAILED]
