"""``submit_all`` on PBS Professional, scheduler-free: the array's script (``#PBS -J 1-N``),
each subjob's own result, status, output and cancellation, and adoption by tag after a crash.

No PBS Professional can be installed here, so its commands are stand-ins first on ``PATH``
that answer in the formats the PBS Professional 2022.1 Reference Guide documents: ``qsub``
prints the array's identifier ``<sequence number>[].<server>`` (qsub, "Standard Output";
"Job Identifier Operands") and keeps a copy of the script; ``qstat -x -f <subjob IDs>``
prints the six subjob records of ``data/pbspro_qstat_xf_subjobs.txt`` (see
test_pbs_arrays.py); ``qstat -x -f`` alone lists every job taken, an array as one
``<n>[].pbsserver`` record (without ``-t`` qstat shows arrays, not subjobs) whose
``Variable_List`` holds the ``-v`` variables of its script. The array's script is run by
``sh`` with the variables PBS sets for subjob k (``PBS_ARRAY_INDEX``, ``PBS_O_WORKDIR``:
User's Guide, "Job Arrays" and "PBS Environment Variables").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clusterjob import JobScript, submit_all
from clusterjob.polling import poll
from clusterjob.status import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from helpers.commands import FakeCommands
from helpers.data import DataFolder

DATA = DataFolder(__file__)

#: ``qsub [-o f -e f] <script>``: keeps the script as submitted/<n>.pbs (n from 1244) and prints
#: the job's identifier, an array's with ``[]``.
QSUB = """\
n=$(( $(cat "$FAKE/counter" 2>/dev/null || echo 1243) + 1 )); echo $n > "$FAKE/counter"
for script; do :; done
cp "$script" "$FAKE/submitted/$n.pbs"
if grep -q '^#PBS -J ' "$script"; then echo "$n[].pbsserver"; else echo "$n.pbsserver"; fi
"""

#: ``qstat -x -f [IDs]``: the subjobs' records when asked about IDs, else every job taken.
QSTAT = """\
if [ $# -gt 2 ]; then cat "$SUBJOBS"; exit 0; fi
for f in "$FAKE"/submitted/*.pbs; do
  [ -f "$f" ] || continue
  n=$(basename "$f" .pbs)
  variables=$(sed -n 's/^#PBS -v //p' "$f")
  if grep -q '^#PBS -J ' "$f"; then id="$n[].pbsserver"; state=B; else id="$n.pbsserver"; state=Q; fi
  printf 'Job Id: %s\\n    Job_Owner = %s@login1.example.org\\n    job_state = %s\\n' \\
    "$id" "$(id -un)" "$state"
  printf '    Variable_List = PBS_O_WORKDIR=%s,%s\\n\\n' "$FAKE" "$variables"
done
"""

TAG_LINE = re.compile(r"^#PBS -v CLUSTERJOB_TAG=(\S+)$", re.MULTILINE)


@pytest.fixture
def fake_pbspro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCommands:
    (tmp_path / "fake" / "submitted").mkdir(parents=True)
    fake = FakeCommands(tmp_path / "fake")
    fake.script("qsub", QSUB)
    fake.script("qstat", QSTAT)
    fake.command("qdel", ("*", "", "", 0))
    monkeypatch.setenv("FAKE", str(tmp_path / "fake"))
    monkeypatch.setenv("SUBJOBS", str(DATA / "pbspro_qstat_xf_subjobs.txt"))
    monkeypatch.setenv("PATH", fake.environment()["PATH"])
    JobScript.backend = "pbspro"
    JobScript.rootdir = str(tmp_path / "run")
    JobScript.cache_folder = str(tmp_path / "cache")
    return fake


def sweep(count: int, **attributes: object) -> list[JobScript]:
    """A parameter sweep on PBS Professional: its own name and body per job, the same resources."""
    jobs = []
    for seed in range(1, count + 1):
        job = JobScript(f"echo seed {seed}; exit {3 if seed == 2 else 0}",
                        jobname=f"cj_sweep{seed}", time="5", nodes=1, ppn=1)  # fmt: skip
        for name, value in attributes.items():
            setattr(job, name, value)
        jobs.append(job)
    return jobs


def calls(fake: FakeCommands, command: str) -> list[str]:
    return [call for call in fake.calls() if call.split(" ", 1)[0] == command]


def submitted_script(tmp_path: Path, number: int) -> str:
    return (tmp_path / "fake" / "submitted" / f"{number}.pbs").read_text()


def test_a_sweep_is_one_qsub_of_an_array_and_each_subjob_reports_its_own_status(
    fake_pbspro: FakeCommands, tmp_path: Path
) -> None:
    """Six jobs, one ``qsub``; each result is subjob ``1244[k].pbsserver`` under its job's own
    name, and its status comes from that subjob's ``qstat -x -f`` record (finished, failed,
    running, queued, deleted while queued, deleted while running)."""
    results = submit_all(sweep(6, exit_markers=False))

    assert len(calls(fake_pbspro, "qsub")) == 1
    assert [r.job_id for r in results] == [f"1244[{k}].pbsserver" for k in range(1, 7)]
    assert [r.jobname for r in results] == [f"cj_sweep{k}" for k in range(1, 7)]
    script = submitted_script(tmp_path, 1244)
    for line in ("#PBS -J 1-6", "#PBS -N cj_sweep", "#PBS -l select=1:ncpus=1:mpiprocs=1",
                 "#PBS -l walltime=00:05:00", 'case "${PBS_ARRAY_INDEX:-}" in'):  # fmt: skip
        assert line in script
    assert TAG_LINE.search(script)
    assert [r.status for r in results] == [
        COMPLETED,
        FAILED,
        RUNNING,
        PENDING,
        CANCELLED,
        CANCELLED,
    ]
    asked = [job_id for call in calls(fake_pbspro, "qstat") for job_id in call.split()[3:]]
    assert sorted(set(asked)) == [r.job_id for r in results]  # subjobs, never the array 1244[]


def test_a_poll_of_the_whole_array_is_one_qstat(fake_pbspro: FakeCommands) -> None:
    """Watching an array costs what watching one job does: one ``qstat -x -f`` per poll cycle,
    naming every unfinished subjob."""
    results = submit_all(sweep(6, exit_markers=False))

    poll(results)

    assert calls(fake_pbspro, "qstat") == [
        "qstat -x -f " + " ".join(f"1244[{k}].pbsserver" for k in range(1, 7))
    ]
    assert [r.status for r in results[:3]] == [COMPLETED, FAILED, RUNNING]


def run_subjob(tmp_path: Path, number: int, index: int) -> subprocess.CompletedProcess[str]:
    """The array's script as PBS runs subjob ``index``: ``$PBS_ARRAY_INDEX``, ``$PBS_O_WORKDIR``."""
    script = tmp_path / "subjob.sh"
    script.write_text(submitted_script(tmp_path, number))
    env = {**os.environ, "PBS_ARRAY_INDEX": str(index), "PBS_O_WORKDIR": str(tmp_path / "run")}
    return subprocess.run(["sh", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_subjob_runs_its_own_jobs_script_into_its_own_files(
    fake_pbspro: FakeCommands, tmp_path: Path
) -> None:
    """PBS starts a subjob in the home folder: relative output paths are taken from
    ``$PBS_O_WORKDIR``; stderr stays apart (PBS joins it only with ``-j oe``); the array's own
    output goes to /dev/null; the exit marker holds the subjob's own exit code."""
    jobs = sweep(3)
    for job in jobs:
        job.resources["stdout"] = f"{job.resources['jobname']}.out"
        job.resources["stderr"] = f"{job.resources['jobname']}.err"
    results = submit_all(jobs)

    task = run_subjob(tmp_path, 1244, 2)
    assert (task.returncode, task.stdout) == (3, "")
    assert (tmp_path / "run" / "cj_sweep2.out").read_text() == "seed 2\n"
    assert not (tmp_path / "run" / "cj_sweep1.out").exists()
    script = submitted_script(tmp_path, 1244)
    assert "#PBS -o /dev/null" in script and "#PBS -e /dev/null" in script
    (qsub,) = calls(fake_pbspro, "qsub")
    assert qsub.startswith("qsub -o /dev/null -e /dev/null .clusterjob-arrays/cj_sweep.")
    exit_marker = Path(str(results[1].marker_folder)) / f"{results[1].marker_name}.exit"
    assert exit_marker.read_text() == "exit 3\n"


def test_cancel_deletes_that_subjob_only(fake_pbspro: FakeCommands) -> None:
    """Reference Guide, qdel: a subjob identifier deletes that subjob."""
    results = submit_all(sweep(4, exit_markers=False))

    results[3].cancel()

    assert calls(fake_pbspro, "qdel") == ["qdel 1244[4].pbsserver"]
    assert results[3].status == CANCELLED


def test_an_array_interrupted_after_qsub_is_found_by_its_tag_and_adopted(
    fake_pbspro: FakeCommands, tmp_path: Path
) -> None:
    """Killed right after qsub took the array: the rerun finds ``1244[].pbsserver`` by the tag
    in its ``Variable_List`` (one lookup for the batch) and adopts every subjob; no second qsub."""
    killed = run_in_subprocess(tmp_path, "after_submit", count=4)
    assert killed.returncode == -9, killed.stderr
    intents = [json.loads(p.read_text()) for p in sorted((tmp_path / "cache").glob("*.cache"))]
    assert {(i["state"], i["array_task"]) for i in intents} == {
        ("submitting", k) for k in (1, 2, 3, 4)
    }
    tag = TAG_LINE.search(submitted_script(tmp_path, 1244))
    assert tag is not None and {i["tag"] for i in intents} == {tag.group(1)}

    results = submit_all(sweep(4), cache_ids=[f"s{k}" for k in range(4)])

    assert [r.job_id for r in results] == [f"1244[{k}].pbsserver" for k in range(1, 5)]
    assert all(r.resumed for r in results)
    assert len(calls(fake_pbspro, "qsub")) == 1
    assert calls(fake_pbspro, "qstat") == ["qstat -x -f"]


def run_in_subprocess(tmp_path: Path, fault: str, count: int) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from clusterjob import JobScript, submit_all\n"
        "from test_pbspro_submit_all import sweep\n"
        "JobScript.backend = 'pbspro'\n"
        f"JobScript.rootdir = {str(tmp_path / 'run')!r}\n"
        f"JobScript.cache_folder = {str(tmp_path / 'cache')!r}\n"
        f"submit_all(sweep({count}), cache_ids=[f's{{k}}' for k in range({count})])\n"
    )
    env = {**os.environ, "CLUSTERJOB_FAULT_INJECT": fault}
    here = Path(__file__).parent
    return subprocess.run([sys.executable, "-c", code, str(here), str(here.parent)], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
