"""``submit_all``: packing into arrays, one flush per batch, adoption by tag, and its errors.

Scheduler-free: SLURM's commands are stand-ins first on ``PATH`` (``sbatch`` keeps a
copy of every script it is given and answers ``Submitted batch job <n>``, ``squeue``
lists those jobs with their comments as the real one does for the tag lookup), and the
array's script is run by ``sh`` with the variables SLURM would set. The real schedulers'
tests are in tests/slurm, tests/sge and tests/pbs; the crash table in
tests/remote/test_submit_all_exactly_once.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript, journal, submit_all, wait_all
from clusterjob import batch as batch_module
from clusterjob import cache as cache_module
from clusterjob.errors import SchedulerError
from clusterjob.status import COMPLETED
from helpers.commands import FakeCommands

#: ``sbatch``: keeps the script as submitted/<id>.sh, answers with the next job ID (from 100).
SBATCH = """\
n=$(( $(cat "$FAKE/counter" 2>/dev/null || echo 99) + 1 )); echo $n > "$FAKE/counter"
cp "$1" "$FAKE/submitted/$n.sh"
if [ -n "$REFUSE_ARRAYS" ] && grep -q -- --array "$1"; then
  echo "sbatch: error: Batch job submission failed: Invalid job array specification" >&2; exit 1
fi
echo "Submitted batch job $n"
"""

#: ``squeue -o '%i|%k'``: every job sbatch took, an array as one pending row ``<id>_[1-N]``.
SQUEUE = """\
for f in "$FAKE"/submitted/*.sh; do
  [ -f "$f" ] || continue
  id=$(basename "$f" .sh)
  tag=$(sed -n 's/^#SBATCH --comment=//p' "$f")
  tasks=$(sed -n 's/^#SBATCH --array=//p' "$f")
  if [ -n "$tasks" ]; then echo "${id}_[$tasks]|$tag"; else echo "$id|$tag"; fi
done
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCommands:
    (tmp_path / "fake" / "submitted").mkdir(parents=True)
    fake = FakeCommands(tmp_path / "fake")
    fake.script("sbatch", SBATCH)
    fake.script("squeue", SQUEUE)
    fake.command("scontrol", ("*", "AccountingStoreFlags    = job_comment\n", "", 0))
    fake.command("sacct", ("*", "", "", 0))
    monkeypatch.setenv("FAKE", str(tmp_path / "fake"))
    monkeypatch.setenv("PATH", fake.environment()["PATH"])
    # The stand-in sbatch numbers jobs in the order it is called: one command at a time
    # keeps the IDs these tests expect (the concurrent path has tests of its own).
    monkeypatch.setattr(batch_module, "SUBMIT_CONCURRENCY", 1)
    JobScript.backend = "slurm"
    JobScript.rootdir = str(tmp_path / "run")
    JobScript.cache_folder = str(tmp_path / "cache")
    return fake


def sweep(count: int, **resources: object) -> list[JobScript]:
    """A parameter sweep: its own name and body per job, the same resources."""
    return [
        JobScript(f"echo seed {seed}; exit {3 if seed == 2 else 0}", jobname=f"sim{seed}",
                  **{"time": "10", **resources})
        for seed in range(count)
    ]  # fmt: skip


def sbatch_calls(fake: FakeCommands) -> list[str]:
    return [call for call in fake.calls() if call.startswith("sbatch")]


def submitted_script(tmp_path: Path, job_id: str) -> str:
    return (tmp_path / "fake" / "submitted" / f"{job_id}.sh").read_text()


def test_a_sweep_goes_into_one_array_and_each_job_keeps_its_own_result(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    results = submit_all(sweep(4), cache_ids=[f"s{i}" for i in range(4)])

    assert len(sbatch_calls(fake_slurm)) == 1
    assert [r.job_id for r in results] == ["100_1", "100_2", "100_3", "100_4"]
    assert [r.jobname for r in results] == ["sim0", "sim1", "sim2", "sim3"]
    script = submitted_script(tmp_path, "100")
    assert "#SBATCH --array=1-4" in script
    assert "#SBATCH --job-name=sim" in script
    tag = re.search(r"^#SBATCH --comment=(\S+)$", script, re.MULTILINE)
    assert tag is not None
    assert [r.marker_name for r in results] == [f"{tag.group(1)}.{k}" for k in range(1, 5)]
    for i, result in enumerate(results):
        record = json.loads(Path(str(result.cache_file)).read_text())
        assert (record["state"], record["job_id"], record["cache_id"]) == (
            "submitted", f"100_{i + 1}", f"s{i}",
        )  # fmt: skip
        assert AsyncResult.from_cache(str(result.cache_file)).job_id == result.job_id


def run_array_task(tmp_path: Path, job_id: str, task: int) -> subprocess.CompletedProcess[str]:
    """The array's script as SLURM runs task ``task``: in the submit folder, with its variables."""
    script = tmp_path / "array-task.sh"
    script.write_text(submitted_script(tmp_path, job_id))
    env = {
        **os.environ,
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_SUBMIT_DIR": str(tmp_path / "run"),
    }
    return subprocess.run(["sh", str(script)], cwd=tmp_path / "run", env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_an_array_task_runs_its_own_jobs_script_writes_its_output_and_markers(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    jobs = sweep(3)
    for job in jobs:
        job.resources["stdout"] = f"out/{job.resources['jobname']}.txt"
    (tmp_path / "run" / "out").mkdir(parents=True)
    results = submit_all(jobs)

    task = run_array_task(tmp_path, "100", 3)
    assert (task.returncode, task.stdout) == (3, "")  # sim2 exits 3; its output went to its file
    assert (tmp_path / "run" / "out" / "sim2.txt").read_text() == "seed 2\n"
    assert not (tmp_path / "run" / "out" / "sim0.txt").exists()
    exit_marker = Path(str(results[2].marker_folder)) / f"{results[2].marker_name}.exit"
    assert exit_marker.read_text() == "exit 3\n"
    assert "#SBATCH --output=/dev/null" in submitted_script(tmp_path, "100")


def test_a_packed_job_sees_its_own_name_as_clusterjob_name(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    jobs = [
        JobScript("echo $CLUSTERJOB_NAME", jobname=f"it's {i}", stdout=f"n{i}.log")
        for i in range(2)
    ]
    submit_all(jobs)

    run_array_task(tmp_path, "100", 2)
    assert (tmp_path / "run" / "n1.log").read_text() == "it's 1\n"


def test_stderr_goes_with_stdout_as_the_scheduler_would_send_it(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    jobs = [JobScript("echo to-err >&2", jobname=f"e{i}", stdout=f"e{i}.log") for i in range(2)]
    submit_all(jobs)

    run_array_task(tmp_path, "100", 2)
    assert (tmp_path / "run" / "e1.log").read_text() == "to-err\n"


def test_an_output_path_with_spaces_and_quotes_reaches_its_file(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    odd = "it's a $HOME; `x`.log"
    jobs = [JobScript("echo hi", jobname=f"q{i}", stdout=f"plain{i}.log") for i in range(2)]
    jobs[1].resources["stdout"] = odd.replace("$", "")
    submit_all(jobs)

    run_array_task(tmp_path, "100", 2)
    assert (tmp_path / "run" / odd.replace("$", "")).read_text() == "hi\n"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda jobs: jobs[1].resources.update(time="20"), "other headers"),
        (lambda jobs: jobs[1].resources.update(stdout="sim1-%j.out"), "a scheduler pattern"),
        (lambda jobs: jobs[1].resources.update(array="1-3"), "already an array"),
        (lambda jobs: setattr(jobs[1], "workdir", "elsewhere"), "another job folder"),
        (lambda jobs: setattr(jobs[1], "shell", "/bin/tcsh"), "not a POSIX shell"),
    ],
)
def test_a_job_that_cannot_share_the_array_is_submitted_on_its_own(
    fake_slurm: FakeCommands, change: object, why: str
) -> None:
    jobs = sweep(3)
    change(jobs)  # type: ignore[operator]
    results = submit_all(jobs)

    assert len(sbatch_calls(fake_slurm)) == 2, why
    assert [r.job_id for r in results] == ["100_1", "101", "100_2"], why


def test_the_same_job_under_two_cache_ids_is_allowed(fake_slurm: FakeCommands) -> None:
    job = sweep(1)[0]
    results = submit_all([job, job], cache_ids=["first", "second"])

    assert [r.job_id for r in results] == ["100_1", "100_2"]


def test_pack_false_submits_one_by_one(fake_slurm: FakeCommands) -> None:
    results = submit_all(sweep(3), pack=False)

    assert len(sbatch_calls(fake_slurm)) == 3
    assert [r.job_id for r in results] == ["100", "101", "102"]


def test_arrays_are_cut_at_max_array_size_and_a_last_single_job_goes_alone(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    results = submit_all(sweep(5), max_array_size=2)

    assert [r.job_id for r in results] == ["100_1", "100_2", "101_1", "101_2", "102"]
    assert "--array=1-2" in submitted_script(tmp_path, "101")
    assert "--array" not in submitted_script(tmp_path, "102")


def test_the_sites_max_array_size_comes_from_the_ini_file_and_the_backend_has_a_default(
    fake_slurm: FakeCommands, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = tmp_path / "site.ini"
    ini.write_text("[Attributes]\nmax_array_size = 3\n")
    JobScript.read_defaults(str(ini))
    assert [r.job_id for r in submit_all(sweep(4))][-1] == "101"  # 3 + 1

    JobScript.max_array_size = None
    monkeypatch.setattr(type(sweep(1)[0]._get_backend()), "max_array_size", 2)
    assert [r.job_id for r in submit_all(sweep(4), force=True)] == [
        "102_1",
        "102_2",
        "103_1",
        "103_2",
    ]


def test_a_rerun_returns_the_cached_results_without_asking_the_scheduler(
    fake_slurm: FakeCommands,
) -> None:
    first = submit_all(sweep(3))
    calls = len(fake_slurm.calls())
    again = submit_all(sweep(3))

    assert len(fake_slurm.calls()) == calls
    assert [r.job_id for r in again] == [r.job_id for r in first]
    assert all(r.resumed for r in again)


def test_force_submits_again_and_the_same_cache_id_twice_is_one_job(
    fake_slurm: FakeCommands,
) -> None:
    submit_all(sweep(2))
    jobs = sweep(2)
    results = submit_all([jobs[0], jobs[1], jobs[0]], cache_ids=["a", "b", "a"], force=True)

    assert [r.job_id for r in results] == ["101_1", "101_2", "101_1"]
    assert results[0] is results[2]


def test_an_array_interrupted_after_sbatch_is_adopted_task_by_task(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    """Killed right after sbatch accepted the array: the rerun finds it by its tag (one
    squeue for the whole batch) and submits nothing."""
    killed = run_in_subprocess(tmp_path, "after_submit", count=4)
    assert killed.returncode == -9, killed.stderr
    intents = [json.loads(p.read_text()) for p in sorted((tmp_path / "cache").glob("*.cache"))]
    assert {(i["state"], i["array_task"]) for i in intents} == {
        ("submitting", k) for k in (1, 2, 3, 4)
    }

    results = submit_all(sweep(4), cache_ids=[f"s{i}" for i in range(4)])

    assert [r.job_id for r in results] == ["100_1", "100_2", "100_3", "100_4"]
    assert all(r.resumed for r in results)
    assert len(sbatch_calls(fake_slurm)) == 1
    assert len([c for c in fake_slurm.calls() if c.startswith("squeue")]) == 1


def test_an_array_interrupted_before_sbatch_is_submitted_once_on_the_rerun(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    killed = run_in_subprocess(tmp_path, "after_intents", count=3)
    assert killed.returncode == -9, killed.stderr

    results = submit_all(sweep(3), cache_ids=[f"s{i}" for i in range(3)])

    assert [r.job_id for r in results] == ["100_1", "100_2", "100_3"]
    assert len(sbatch_calls(fake_slurm)) == 1


def test_a_rerun_packs_the_interrupted_jobs_with_the_new_ones_in_the_callers_order(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    killed = run_in_subprocess(tmp_path, "after_intents", count=2)
    assert killed.returncode == -9, killed.stderr
    jobs = [*sweep(2), JobScript("echo new", jobname="sim-new", time="10")]

    results = submit_all(jobs, cache_ids=["s0", "s1", "new"])

    assert [r.job_id for r in results] == ["100_1", "100_2", "100_3"]


def run_in_subprocess(tmp_path: Path, fault: str, count: int) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from clusterjob import JobScript, submit_all\n"
        "from test_submit_all import sweep\n"
        "JobScript.backend = 'slurm'\n"
        f"JobScript.rootdir = {str(tmp_path / 'run')!r}\n"
        f"JobScript.cache_folder = {str(tmp_path / 'cache')!r}\n"
        f"submit_all(sweep({count}), cache_ids=[f's{{i}}' for i in range({count})])\n"
    )
    env = {**os.environ, "CLUSTERJOB_FAULT_INJECT": fault}
    here = Path(__file__).parent
    return subprocess.run([sys.executable, "-c", code, str(here), str(here.parent)], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_refused_array_is_raised_after_the_other_jobs_were_submitted_and_cached(
    fake_slurm: FakeCommands, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFUSE_ARRAYS", "1")
    jobs = [*sweep(2), JobScript("echo alone", jobname="alone", time="99")]
    with pytest.raises(SchedulerError, match="Invalid job array specification") as refused:
        submit_all(jobs, cache_ids=["a", "b", "c"])
    assert str(refused.value).endswith(
        "clusterjob: this was an array of 2 jobs packed by submit_all; if the site allows fewer "
        "tasks per array, set JobScript.max_array_size (or max_array_size in the [Attributes] of "
        "an INI file), or call submit_all(..., max_array_size=N) or submit_all(..., pack=False)"
    )

    assert sorted(p.name for p in (tmp_path / "cache").glob("*.cache")) == ["clusterjob.c.cache"]
    monkeypatch.delenv("REFUSE_ARRAYS")
    assert [r.job_id for r in submit_all(jobs, cache_ids=["a", "b", "c"])] == [
        "102_1",
        "102_2",
        "101",
    ]


#: ``sbatch`` that may run several times at once: its job ID is its process ID, each call
#: notes how many calls were running when it started, and takes 1 s; ``refuse-me`` is refused.
CONCURRENT_SBATCH = """\
mkdir -p "$FAKE/running"; : > "$FAKE/running/$$"
ls "$FAKE/running" | wc -l >> "$FAKE/overlap"
cp "$1" "$FAKE/submitted/$$.sh"
sleep 1
rm -f "$FAKE/running/$$"
if grep -q -- "--job-name=refuse-me" "$1"; then
  echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1
fi
echo "Submitted batch job $$"
"""


def overlaps(tmp_path: Path) -> list[int]:
    return [int(n) for n in (tmp_path / "fake" / "overlap").read_text().split()]


def test_jobs_not_packed_are_submitted_up_to_concurrency_at_once_each_with_its_own_id(
    tmp_path: Path, fake_slurm: FakeCommands
) -> None:
    fake_slurm.script("sbatch", CONCURRENT_SBATCH)
    results = submit_all(sweep(8), pack=False, concurrency=4)

    assert 2 <= max(overlaps(tmp_path)) <= 4
    for seed, result in enumerate(results):  # in order, whatever order sbatch ran in
        assert f"#SBATCH --job-name=sim{seed}\n" in submitted_script(tmp_path, str(result.job_id))
        assert AsyncResult.from_cache(str(result.cache_file)).job_id == result.job_id


def test_concurrency_1_submits_one_after_another_in_order(
    tmp_path: Path, fake_slurm: FakeCommands
) -> None:
    fake_slurm.script("sbatch", CONCURRENT_SBATCH)
    results = submit_all(sweep(3), pack=False, concurrency=1)

    assert overlaps(tmp_path) == [1, 1, 1]
    ids = [int(str(result.job_id)) for result in results]
    assert len(set(ids)) == 3


def test_a_refused_job_among_concurrent_ones_leaves_the_others_submitted_and_cached(
    tmp_path: Path, fake_slurm: FakeCommands
) -> None:
    fake_slurm.script("sbatch", CONCURRENT_SBATCH)
    jobs = [*sweep(3), JobScript("true", jobname="refuse-me", time="10"), *sweep(5)[3:]]
    with pytest.raises(SchedulerError, match="Invalid account"):
        submit_all(jobs, cache_ids=[str(i) for i in range(6)], pack=False, concurrency=4)

    cache = tmp_path / "cache"
    assert not (cache / "clusterjob.3.cache").exists()  # refused: no intent left behind
    for i in (0, 1, 2, 4, 5):
        assert AsyncResult.from_cache(str(cache / f"clusterjob.{i}.cache")).job_id


@pytest.mark.parametrize("bad", [0, -1, 1.5, "4"])
def test_a_concurrency_below_1_is_refused_naming_the_value(
    fake_slurm: FakeCommands, bad: object
) -> None:
    with pytest.raises(
        ValueError, match=f"concurrency must be a whole number of at least 1, not {bad!r}"
    ):
        submit_all(sweep(2), concurrency=bad)  # type: ignore[arg-type]


def test_a_batch_costs_one_flush_whatever_its_size(
    fake_slurm: FakeCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[int] = []
    monkeypatch.setattr(journal, "_datasync", flushes.append)
    monkeypatch.setattr(cache_module, "flush_folders", lambda *args: flushes.append(-1))
    other = JobScript("echo other", jobname="other", time="99")
    submit_all([*sweep(30), other], cache_ids=[str(i) for i in range(31)])

    assert len(flushes) == 1  # the 31 intents' journal lines; the results need none


def test_a_checkpoint_of_many_files_without_syncfs_still_makes_every_file_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [tmp_path / f"{i}.cache" for i in range(cache_module.FSYNC_EACH_LIMIT + 1)]
    for path in paths:
        path.write_text("{}")
    synced: list[int] = []
    monkeypatch.setattr(cache_module, "_syncfs", None)
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    cache_module._flush(str(tmp_path), [str(path) for path in paths])

    assert len(synced) == len(paths) + 1  # every file, then its folder


def test_few_file_descriptors_split_the_jobs_into_batches_instead_of_failing(
    fake_slurm: FakeCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = batch_module.RESERVED_DESCRIPTORS + 3
    monkeypatch.setattr(batch_module.resource, "getrlimit", lambda _: (limit, limit))
    monkeypatch.setattr(batch_module.resource, "setrlimit", lambda *_: pytest.fail("raised"))
    results = submit_all(sweep(7))

    assert [r.job_id for r in results] == [
        "100_1",
        "100_2",
        "100_3",
        "101_1",
        "101_2",
        "101_3",
        "102",
    ]


def test_on_local_each_job_runs_once_with_its_prologue_and_epilogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    JobScript.backend = "local"
    JobScript.cache_folder = str(tmp_path / "cache")
    JobScript.max_sleep_interval = 0.2
    jobs = [
        JobScript(f"echo {i} >> ran", jobname=f"j{i}", prologue="echo {jobname} >> pro",
                  epilogue="echo {jobname} >> epi")
        for i in range(3)
    ]  # fmt: skip
    assert wait_all(submit_all(jobs), timeout=60) == [COMPLETED] * 3
    assert wait_all(submit_all(jobs), timeout=60) == [COMPLETED] * 3

    assert sorted((tmp_path / "ran").read_text().split()) == ["0", "1", "2"]
    assert sorted((tmp_path / "pro").read_text().split()) == ["j0", "j1", "j2"]
    assert sorted((tmp_path / "epi").read_text().split()) == ["j0", "j1", "j2"]


def test_without_a_cache_folder_every_job_is_submitted(fake_slurm: FakeCommands) -> None:
    JobScript.cache_folder = None
    results = submit_all(sweep(2))

    assert [(r.job_id, r.cache_file) for r in results] == [("100_1", None), ("100_2", None)]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: submit_all(sweep(2), cache_ids=["a"]), ValueError,
         r"got 2 jobs but 1 cache_ids; give one per job \(None to derive it from the job\)"),
        (lambda: submit_all([sweep(1)[0], "echo hi"]), TypeError,  # type: ignore[list-item]
         r"submit_all\(\) takes JobScript objects; item 1 is 'echo hi'"),
        (lambda: submit_all(sweep(2), max_array_size=0), ValueError,
         r"max_array_size must be a whole number of at least 1, not 0"),
        (lambda: submit_all(sweep(2), cache_ids=["a/b", None]), ValueError,
         r"invalid cache_id 'a/b'"),
        (lambda: submit_all([*sweep(2), JobScript("echo other", jobname="sim1", time="10")]),
         ValueError, (r"jobs 1 and 2 would both write the script .*/run/sim1\.slr \(the same "
                      r"jobname and folder\); give them different jobnames, filenames or workdirs")),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_before_anything_is_submitted(
    fake_slurm: FakeCommands, call: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]
    assert sbatch_calls(fake_slurm) == []


def test_jobs_whose_resources_hold_placeholders_pack_when_their_headers_agree(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    jobs = sweep(3, account="{project}")
    for job in jobs:
        job.project = "physics"
    jobs[2].project = "chemistry"
    results = submit_all(jobs)

    assert [r.job_id for r in results] == ["100_1", "100_2", "101"]
    assert "#SBATCH --account=physics" in submitted_script(tmp_path, "100")


def test_a_class_attribute_set_between_two_renders_reaches_the_second(tmp_path: Path) -> None:
    job = JobScript("echo {greeting}", jobname="j", backend="local")
    JobScript.greeting = "hello"
    assert job.render_script(job.body).endswith("echo hello")
    JobScript.greeting = "bye"
    assert job.render_script(job.body).endswith("echo bye")


def test_a_new_script_is_written_in_place_an_existing_one_replaced_whole(tmp_path: Path) -> None:
    from clusterjob.transport import get_transport

    path = tmp_path / "job.sh"
    old_umask = os.umask(0o077)
    try:
        get_transport(None).write_file(str(path), "echo one\n", executable=True)
    finally:
        os.umask(old_umask)
    assert (path.read_text(), path.stat().st_mode & 0o777) == ("echo one\n", 0o755)
    reader = path.open()  # a running job reading its script keeps the old one
    get_transport(None).write_file(str(path), "echo two\n", executable=True)
    assert (reader.read(), path.read_text()) == ("echo one\n", "echo two\n")
    reader.close()


def test_a_packed_job_of_another_interpreter_gets_no_marker_lines_and_its_siblings_do(
    fake_slurm: FakeCommands, tmp_path: Path
) -> None:
    jobs = sweep(2)
    jobs[1].body = "#!/usr/bin/env python3\nprint('from python')"
    results = submit_all(jobs)

    python_script = (tmp_path / "run" / "sim1.slr").read_text()
    assert "_cj_mark" not in python_script
    assert "_cj_mark" in (tmp_path / "run" / "sim0.slr").read_text()
    assert (results[0].marker_name is not None, results[1].marker_name) == (True, None)
    task = run_array_task(tmp_path, "100", 2)
    assert (task.returncode, task.stdout) == (0, "from python\n")


def test_a_job_that_is_already_an_array_keeps_its_task_ids_as_submit_records_them(
    fake_slurm: FakeCommands,
) -> None:
    jobs = sweep(2)
    jobs[1].resources["array"] = "1-3"
    results = submit_all(jobs)

    assert (results[0].task_ids, results[1].task_ids) == (None, ["1", "2", "3"])
