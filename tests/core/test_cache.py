"""Caching: resume without resubmitting, force/retry, bad cache files, and exactly-once under crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clusterjob import AsyncResult, JobScript
from clusterjob.backends.local import RUNNER_MODULE, RUNNER_PATH, LocalBackend, runner_on_a_remote
from clusterjob.errors import CacheError, SchedulerError, SubmitError
from clusterjob.faults import POINTS
from clusterjob.status import COMPLETED, FAILED


@pytest.fixture(autouse=True)
def local_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # prologue and epilogue run in the current directory
    JobScript.backend = "local"
    JobScript.rootdir = str(tmp_path)
    JobScript.max_sleep_interval = 1
    JobScript.cache_folder = str(tmp_path / "cache")
    return tmp_path / "cache"


def spool_jobs(tmp_path: Path) -> dict[str, list[str]]:
    """Job name -> IDs of all jobs the local backend ever received in this test."""
    jobs: dict[str, list[str]] = {}
    spool = Path(os.environ["CLUSTERJOB_LOCAL_SPOOL"])
    for meta in sorted(spool.glob("*/meta.json")):
        data = json.loads(meta.read_text())
        jobs.setdefault(data["name"], []).append(data["job_id"])
    return jobs


def test_cached_result_is_returned_without_resubmitting_or_prologue(tmp_path: Path) -> None:
    job = JobScript("true", jobname="cached", prologue="echo ran >> prologue.log")
    first = job.submit(cache_id="one")
    second = job.submit(cache_id="one")
    assert first.job_id == second.job_id
    assert (tmp_path / "prologue.log").read_text() == "ran\n"
    assert spool_jobs(tmp_path) == {"cached": [first.job_id]}
    assert second.cache_file == str(tmp_path / "cache" / "clusterjob.one.cache")


def test_cache_file_is_versioned_readable_json(local_cached: Path) -> None:
    result = JobScript("true", jobname="json").submit(cache_id="j")
    result.wait(30)
    data = json.loads((local_cached / "clusterjob.j.cache").read_text())
    assert data["clusterjob_cache"] == 1
    assert data["state"] == "submitted"
    assert (
        data["job_id"] == result.job_id
        and data["backend"] == "local"
        and data["status"] == "COMPLETED"
    )


def test_default_cache_id_follows_the_job_content(tmp_path: Path) -> None:
    a = JobScript("echo a", jobname="same").submit()
    assert JobScript("echo a", jobname="same").submit().job_id == a.job_id
    assert JobScript("echo b", jobname="same").submit().job_id != a.job_id


def test_force_resubmits(tmp_path: Path) -> None:
    job = JobScript("true", jobname="force")
    first = job.submit(cache_id="f")
    second = job.submit(cache_id="f", force=True)
    assert first.job_id != second.job_id
    assert job.submit(cache_id="f").job_id == second.job_id


def test_retry_resubmits_failed_jobs_only_when_asked(tmp_path: Path) -> None:
    failing = JobScript("exit 1", jobname="retry")
    first = failing.submit(cache_id="r")
    assert first.get(30) == FAILED
    kept = failing.submit(cache_id="r", retry=False)
    assert kept.job_id == first.job_id and kept.status == FAILED
    again = failing.submit(cache_id="r")
    assert again.job_id != first.job_id
    ok = JobScript("true", jobname="ok").submit(cache_id="ok")
    assert ok.get(30) == COMPLETED
    assert JobScript("true", jobname="ok").submit(cache_id="ok").job_id == ok.job_id


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x04pickle", "is not valid clusterjob JSON"),
        (b'{"state": "submitted"', "is not valid clusterjob JSON"),
        (b'{"job_id": "1"}', "was not written by clusterjob"),
        (b'{"clusterjob_cache": 99}', "has format 99, newer than this clusterjob understands"),
    ],
)
def test_bad_cache_file_is_named_and_kept(local_cached: Path, content: bytes, message: str) -> None:
    local_cached.mkdir()
    path = local_cached / "clusterjob.bad.cache"
    path.write_bytes(content)
    with pytest.raises(CacheError, match=message) as info:
        JobScript("true", jobname="bad").submit(cache_id="bad")
    assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_force_sets_a_bad_cache_file_aside(local_cached: Path) -> None:
    local_cached.mkdir()
    (local_cached / "clusterjob.bad.cache").write_text("garbage")
    result = JobScript("true", jobname="bad").submit(cache_id="bad", force=True)
    assert result.job_id
    kept = list(local_cached.glob("clusterjob.bad.cache.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == "garbage"


def test_invalid_cache_id_is_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"invalid cache_id 'a/b': must be a non-empty string without '/'"
    ):
        JobScript("true", jobname="x").submit(cache_id="a/b")


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    result = JobScript("true", jobname="dump").submit(cache_id="d")
    result.wait(30)
    other = AsyncResult(LocalBackend()).load(result.cache_file)
    assert (other.job_id, other.status, other.backend.name) == (result.job_id, COMPLETED, "local")
    result.dump(str(tmp_path / "copy.json"))
    assert AsyncResult.from_cache(str(tmp_path / "copy.json")).job_id == result.job_id
    with pytest.raises(ValueError, match="dump\\(\\) needs a cache_file"):
        AsyncResult("local").dump()
    with pytest.raises(CacheError, match="does not exist"):
        AsyncResult.from_cache(str(tmp_path / "missing.cache"))


def test_scheduler_refusal_leaves_no_intent(local_cached: Path) -> None:
    class Refusing(LocalBackend):
        name = "refusing"

        def cmd_submit(self, jobscript):
            return ["sh", "-c", "echo 'sbatch: error: invalid partition' >&2; exit 1"]

    JobScript.register_backend(Refusing())
    with pytest.raises(
        SchedulerError, match="failed with exit code 1: sbatch: error: invalid partition"
    ):
        JobScript("true", jobname="refused", backend="refusing").submit(cache_id="x")
    assert not (local_cached / "clusterjob.x.cache").exists()


def test_unreadable_job_id_keeps_the_intent(local_cached: Path) -> None:
    class Mumbling(LocalBackend):
        name = "mumbling"

        def get_job_id(self, response):
            return None

    JobScript.register_backend(Mumbling())
    with pytest.raises(
        SubmitError, match=r"could not read a job ID from the output .* find the job by its tag"
    ):
        JobScript("true", jobname="m", backend="mumbling").submit(cache_id="m")
    assert json.loads((local_cached / "clusterjob.m.cache").read_text())["state"] == "submitting"
    # The tag finds the job the scheduler did receive: adopted, not submitted again.
    JobScript.register_backend(LocalBackend(), name="mumbling")
    adopted = JobScript("true", jobname="m", backend="mumbling").submit(cache_id="m")
    assert adopted.job_id == "1"
    assert adopted.resumed and adopted.submitted_at is not None  # from the intent


def test_interrupted_submission_without_tag_support_is_not_guessed(local_cached: Path) -> None:
    class Untagged(LocalBackend):
        name = "untagged"

        def cmd_find_tag(self, tag):
            return None

    JobScript.register_backend(Untagged())
    local_cached.mkdir()
    (local_cached / "clusterjob.u.cache").write_text(
        json.dumps(
            {"clusterjob_cache": 1, "state": "submitting", "tag": "cj-x", "backend": "untagged"}
        )
    )
    with pytest.raises(
        SubmitError, match="cannot tell whether the scheduler received it.*force=True"
    ):
        JobScript("true", jobname="u", backend="untagged").submit(cache_id="u")


def test_tag_lookup_of_the_local_backend_runs_with_the_python_of_the_host_it_asks() -> None:
    """Regression: the lookup sent this machine's interpreter path to the remote."""
    assert LocalBackend().tag_lookup_command("cj-x", remote="cluster") == [
        *runner_on_a_remote("python3"),
        "find-tag",
        "cj-x",
    ]
    assert LocalBackend().tag_lookup_command("cj-x", remote=None) == [
        sys.executable,
        "-I",
        "-S",
        RUNNER_PATH,
        "find-tag",
        "cj-x",
    ]


def test_backend_with_the_older_tag_lookup_signature_still_adopts(local_cached: Path) -> None:
    """A third-party ``cmd_find_tag(self, tag)`` (no ``remote``) and ``get_job_ids_for_tag(stdout, tag)``,
    the names before ``tag_lookup_command``/``parse_tag_lookup``, are still called (and win over the parent's)."""

    class Mumbling(LocalBackend):
        name = "older"

        def get_job_id(self, response):
            return None

    class Older(LocalBackend):
        name = "older"

        def cmd_find_tag(self, tag):
            return [sys.executable, "-m", RUNNER_MODULE, "find-tag", tag]

        def get_job_ids_for_tag(self, response, tag):
            return [line.split()[0] for line in response.splitlines() if line.endswith(" " + tag)]

    JobScript.register_backend(Mumbling())
    with pytest.raises(SubmitError, match="could not read a job ID"):
        JobScript("true", jobname="o", backend="older").submit(cache_id="o")
    JobScript.register_backend(Older())
    adopted = JobScript("true", jobname="o", backend="older").submit(cache_id="o")
    assert adopted.resumed and adopted.job_id == "1"


WORKFLOW = textwrap.dedent(
    """
    import sys
    from clusterjob import JobScript, wait_all
    JobScript.backend = "local"
    JobScript.rootdir = sys.argv[1]
    JobScript.cache_folder = sys.argv[1] + "/cache"
    JobScript.max_sleep_interval = 1
    results = []
    for i in range(3):
        job = JobScript("echo $CLUSTERJOB_ID >> ran-{jobname}", jobname=f"job{i}",
                        prologue="echo {jobname} >> prologue.log", aux_scripts={"aux.sh": "true"})
        results.append(job.submit(cache_id=f"job{i}"))
    if len(sys.argv) > 2:
        print(wait_all(results, timeout=60))
    """
)


def run_workflow(
    tmp_path: Path, fault: str | None = None, wait: bool = False
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("CLUSTERJOB_FAULT_INJECT", None)
    if fault:
        env["CLUSTERJOB_FAULT_INJECT"] = fault
    args = [sys.executable, "-c", WORKFLOW, str(tmp_path)] + (["wait"] if wait else [])
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )


INJECTION_TABLE: list[str] = []


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_each_step_of_submit_then_rerun_gives_exactly_one_job(
    tmp_path: Path, point: str
) -> None:
    crashed = run_workflow(tmp_path, fault=point)
    assert crashed.returncode == -9, crashed.stderr
    rerun = run_workflow(tmp_path, wait=True)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "[0, 0, 0]"
    jobs = spool_jobs(tmp_path)
    duplicates = sum(len(ids) - 1 for ids in jobs.values())
    lost = 3 - len(jobs)
    INJECTION_TABLE.append(
        f"local  {point:<20} jobs={len(jobs)} duplicates={duplicates} lost={lost}"
    )
    print(INJECTION_TABLE[-1])
    assert duplicates == 0 and lost == 0, jobs
    for i in range(3):
        ran = (tmp_path / f"ran-job{i}").read_text().split()
        assert ran == jobs[f"job{i}"]


def test_eight_processes_submitting_the_same_workflow_make_one_job_each(tmp_path: Path) -> None:
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKFLOW, str(tmp_path), "wait"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(out.strip() == "[0, 0, 0]" for out in outputs)
    jobs = spool_jobs(tmp_path)
    assert {name: len(ids) for name, ids in jobs.items()} == {"job0": 1, "job1": 1, "job2": 1}
    # Every process watched the jobs finish; the epilogue-free jobs ran once each.
    assert all(len((tmp_path / f"ran-job{i}").read_text().split()) == 1 for i in range(3))


def test_epilogue_runs_once_although_two_results_watch_the_job(tmp_path: Path) -> None:
    job = JobScript("sleep 1", jobname="epi", epilogue="echo {jobname} >> epilogue.log")
    first = job.submit(cache_id="e")
    second = job.submit(cache_id="e")
    assert first.get(30) == COMPLETED and second.get(30) == COMPLETED
    assert (tmp_path / "epilogue.log").read_text() == "epi\n"
    third = job.submit(cache_id="e", retry=False)
    assert third.get(30) == COMPLETED
    assert (tmp_path / "epilogue.log").read_text() == "epi\n"


def test_failing_epilogue_is_reported_and_not_rerun(tmp_path: Path) -> None:
    result = JobScript("true", jobname="badepi", epilogue="echo x >> epi.log; exit 4").submit(
        cache_id="b"
    )
    with pytest.raises(subprocess.CalledProcessError):
        result.wait(30)
    assert result.status == COMPLETED
    assert (tmp_path / "epi.log").read_text() == "x\n"


def test_failing_prologue_submits_nothing(tmp_path: Path, local_cached: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        JobScript("true", jobname="p", prologue="exit 2").submit(cache_id="p")
    assert spool_jobs(tmp_path) == {}
    assert not (local_cached / "clusterjob.p.cache").exists()


def test_clear_cache_folder(local_cached: Path) -> None:
    JobScript("true", jobname="c").submit(cache_id="c")
    assert list(local_cached.iterdir())
    JobScript.clear_cache_folder()
    assert list(local_cached.iterdir()) == []
