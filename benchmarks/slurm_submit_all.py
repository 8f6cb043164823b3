"""Submitting 1,000 jobs to SLURM with ``clusterjob.submit_all`` vs a raw ``sbatch`` loop.

Targets (issue 13), against a raw ``sbatch`` loop of the same N in the same run:

* packed into arrays (``submit_all``, the default): <= 0.1x raw, in at most
  N / MaxArraySize + 1 ``sbatch`` calls (MaxArraySize from ``scontrol show config``);
* packing off (``submit_all(..., pack=False)``): <= 1.05x raw;
* over SSH (the loopback sshd of the tests): <= 0.05 ssh round trips per job.

Every clusterjob job has a cache folder (crash-safe: intents and results of the batch
written with one flush each) and its own name, as in a parameter sweep. The methods,
timed with the building of their ``JobScript`` objects, are:

* raw: write each job script, ``subprocess.run(['sbatch', script])``, read the ID
  (``slurm_submit.raw_submit``, the baseline);
* packed: ``submit_all(jobs, cache_ids)``: one array per 1,000 jobs (the SLURM
  backend's ``max_array_size``, MaxArraySize 1001 less index 0);
* unpacked: ``submit_all(jobs, cache_ids, pack=False)``: one ``sbatch`` per job.

They alternate (raw, packed, unpacked, then the reverse, ...) so that drift of the
shared machine hits all alike. All jobs are submitted held (``--hold``), so the figure
is submission, not a busy node; each method's jobs are cancelled before the next one
starts, and each waits (untimed) until SLURM has room for its jobs under MaxJobCount
(cancelled jobs keep a record for MinJobAge). The ``sbatch`` calls are counted by a
PATH shim in one more packed run that is not timed (the shim's own ``sh`` would slow
the timed runs); the ssh commands are counted by the same shim in front of ``ssh``,
from a fresh master connection.
``--profile`` adds one more packed run under cProfile and prints where its time goes;
``--folder /dev/shm`` puts the scripts and cache files on a memory file system, which
shows how much of the figure the disk takes (file creation, renames, the flushes).

    python benchmarks/slurm_submit_all.py [--jobs 1000] [--repeat 2] [--ssh-jobs 1000]
        [--ssh-unpacked-jobs 100] [--folder F] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from clusterjob import JobScript, submit_all
from clusterjob.transport import close_all
from slurm_cleanup import cancel_prefix  # next to this script
from slurm_markers import SHIM
from slurm_submit import BODY, SSH_CONFIG, raw_submit


def slurm_setting(name: str) -> int:
    """A number of ``scontrol show config`` (MaxArraySize: the largest task index + 1)."""
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(rf"^{name}\s*=\s*(\d+)", config, re.MULTILINE)
    assert match, f"scontrol show config printed no {name}"
    return int(match.group(1))


def wait_for_room(jobs: int, timeout: float = 180) -> None:
    """Wait (untimed) until the controller can take ``jobs`` more jobs.

    Cancelled jobs keep their record for MinJobAge (60 s here), and records count
    against MaxJobCount (10,000): with the benchmark's own thousands of jobs and the
    other engineers' ones, sbatch is otherwise told "Slurm temporarily unable to
    accept job" and sleeps 15 s and more inside a timed round.
    """
    limit = slurm_setting("MaxJobCount")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = subprocess.run(
            ["squeue", "--states=all", "-r", "-h", "-o", "%i"],
            capture_output=True, text=True, check=True,
        ).stdout.count("\n")  # fmt: skip
        if records + jobs + 500 <= limit:
            return
        time.sleep(2)


def sweep(folder: Path, prefix: str, jobs: int, **attributes: str) -> list[JobScript]:
    """``jobs`` held jobs of a sweep, each with its own name, the same resources otherwise."""
    return [
        JobScript(
            BODY,
            jobname=f"{prefix}-{i}",
            backend="slurm",
            rootdir=str(folder),
            hold=True,
            stdout="/dev/null",
            **attributes,
        )
        for i in range(jobs)
    ]


def run_submit_all(
    folder: Path, prefix: str, jobs: int, pack: bool = True, **attributes: str
) -> list[str]:
    """Build and ``submit_all`` a fresh sweep with a fresh cache folder; the job IDs."""
    JobScript.cache_folder = str(folder / "cache")
    try:
        scripts = sweep(folder, prefix, jobs, **attributes)
        results = submit_all(scripts, [f"{prefix}-{i}" for i in range(jobs)], pack=pack)
    finally:
        JobScript.cache_folder = None
    return [str(result.job_id) for result in results]


def raw_loop(folder: Path, prefix: str, jobs: int) -> list[str]:
    return [raw_submit(folder, f"{prefix}-{i}") for i in range(jobs)]


def cancel(prefix: str, job_ids: list[str]) -> int:
    """scancel the arrays and jobs ``job_ids`` name (``123_4`` is array 123), then by name."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    for start in range(0, len(arrays), 500):
        subprocess.run(["scancel", *arrays[start : start + 500]], check=False)
    return len(arrays) + cancel_prefix(prefix)


@contextlib.contextmanager
def counted(folder: Path, command: str) -> Iterator[Callable[[], int]]:
    """Put a counting shim for ``command`` first on PATH; yields how many times it ran so far."""
    shim = folder / f"shim-{command}"
    shim.mkdir()
    (shim / command).write_text(SHIM)
    (shim / command).chmod(0o755)
    log = folder / f"{command}.log"
    log.write_text("")
    real_path = os.environ["PATH"]
    os.environ.update(CJ_CALL_LOG=str(log), CJ_REAL_PATH=real_path, PATH=f"{shim}:{real_path}")
    try:
        yield lambda: log.read_text().split().count(command)
    finally:
        os.environ["PATH"] = real_path


def timed_rounds(folder: Path, prefix: str, jobs: int, repeat: int) -> dict[str, float]:
    """Seconds per method, summed over ``repeat`` alternating rounds of ``jobs`` jobs each."""
    methods: dict[str, Callable[[Path, str, int], list[str]]] = {
        "raw sbatch loop": raw_loop,
        "submit_all (packed)": run_submit_all,
        "submit_all, pack=False": lambda f, p, n: run_submit_all(f, p, n, pack=False),
    }
    totals = dict.fromkeys(methods, 0.0)
    for round_no in range(repeat):
        order = list(methods.items())
        if round_no % 2:
            order.reverse()
        for number, (label, method) in enumerate(order):
            where = folder / f"r{round_no}m{number}"
            where.mkdir()
            name = f"{prefix}r{round_no}m{number}"
            wait_for_room(jobs)
            start = time.perf_counter()
            job_ids = method(where, name, jobs)
            seconds = time.perf_counter() - start
            totals[label] += seconds
            print(f"round {round_no + 1}: {label:<24} {seconds:6.2f} s ({load()})", flush=True)
            cancel(name, job_ids)
    return totals


def sbatch_calls(folder: Path, prefix: str, jobs: int) -> tuple[int, int]:
    """One packed run, not timed, with ``sbatch`` counted: (sbatch calls, arrays made)."""
    where = folder / "counted"
    where.mkdir()
    wait_for_room(jobs)
    with counted(folder, "sbatch") as calls:
        job_ids = run_submit_all(where, f"{prefix}c", jobs)
        made = calls()
    cancel(f"{prefix}c", job_ids)
    return made, len({job_id.split("_")[0] for job_id in job_ids if "_" in job_id})


def ssh_round_trips(
    folder: Path, prefix: str, runs: dict[str, tuple[bool, int]], host: str, config: str
) -> dict[str, tuple[int, int, float]]:
    """ssh commands of ``submit_all`` over ssh, per run label -> (pack, jobs):
    (jobs, commands, seconds)."""
    figures = {}
    with counted(folder, "ssh") as calls:
        for label, (pack, jobs) in runs.items():
            if not jobs:
                continue
            wait_for_room(jobs)
            close_all()  # each from a fresh master connection: its set-up is counted too
            before = calls()
            start = time.perf_counter()
            remote = {"remote": host, "ssh": f"ssh -F {config}", "scp": f"scp -F {config}"}
            name = f"{prefix}s{int(pack)}"
            job_ids = run_submit_all(folder / name, name, jobs, pack, **remote)
            figures[label] = (jobs, calls() - before, time.perf_counter() - start)
            cancel(name, job_ids)
        close_all()
    return figures


def profile_packed(folder: Path, prefix: str, jobs: int) -> None:
    """One more packed run under cProfile: the functions with the most time, with and without
    the functions they call."""
    where = folder / "profiled"
    where.mkdir()
    profiler = cProfile.Profile()
    job_ids = profiler.runcall(run_submit_all, where, f"{prefix}p", jobs)
    cancel(f"{prefix}p", job_ids)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(20)
    stats.sort_stats("tottime").print_stats(15)


def load() -> str:
    """The machine's load, its disk's and the queue's length: printed, as the machine is shared."""
    queued = subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True
    ).stdout
    one, five, _ = os.getloadavg()
    return (
        f"load average {one:.2f} (1 min), {five:.2f} (5 min); {io_pressure()}"
        f"{len(queued.split())} queue rows"
    )


def io_pressure() -> str:
    """Linux's share of the last 10 s in which some task waited for the disk ('' elsewhere)."""
    try:
        some = Path("/proc/pressure/io").read_text().split("\n")[0]
    except OSError:
        return ""
    return f"disk waits {some.split()[1].split('=')[1]} % (10 s); "


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per method and round")
    parser.add_argument("--repeat", type=int, default=2, help="rounds, in alternating order")
    parser.add_argument("--ssh-jobs", type=int, default=1000, help="jobs packed over ssh (0: skip)")
    parser.add_argument(
        "--ssh-unpacked-jobs",
        type=int,
        default=100,
        help="jobs submitted over ssh with pack=False, for comparison (0: skip)",
    )
    parser.add_argument("--ssh-host", default=os.environ.get("SSH_HOST", "cjtest"))
    parser.add_argument("--ssh-config", default=os.environ.get("SSH_CONFIG", SSH_CONFIG))
    parser.add_argument("--profile", action="store_true", help="cProfile one more packed run")
    parser.add_argument(
        "--folder", default=None, help="where the scripts and caches go (default: the temp folder)"
    )
    args = parser.parse_args()
    prefix = f"cjball{secrets.token_hex(3)}"
    limit = slurm_setting("MaxArraySize")
    print(f"before: {load()}")
    try:
        with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
            folder = Path(tmp)
            os.environ["CLUSTERJOB_SSH_CONTROL_DIR"] = tempfile.mkdtemp(prefix="cjb-", dir=tmp)
            # imports, plugin discovery
            cancel(f"{prefix}w", run_submit_all(folder, f"{prefix}w", 2))
            totals = timed_rounds(folder, prefix, args.jobs, args.repeat)
            calls, arrays = sbatch_calls(folder, prefix, args.jobs)
            runs = {"packed": (True, args.ssh_jobs), "pack=False": (False, args.ssh_unpacked_jobs)}
            ssh = ssh_round_trips(folder, prefix, runs, args.ssh_host, args.ssh_config)
            if args.profile:
                profile_packed(folder, prefix, args.jobs)
    finally:
        cancelled = cancel_prefix(prefix)
    print(f"after: {load()} ({cancelled} rows of ours left, cancelled)")
    report(args, totals, calls, arrays, limit, ssh)


def report(
    args: argparse.Namespace,
    totals: dict[str, float],
    calls: int,
    arrays: int,
    limit: int,
    ssh: dict[str, tuple[int, int, float]],
) -> None:
    n = args.jobs * args.repeat
    base = totals["raw sbatch loop"]
    print(f"{args.jobs} held jobs per method and round, {args.repeat} alternating rounds")
    for label, seconds in totals.items():
        print(
            f"  {label:<24} {seconds:7.2f} s  {seconds / n * 1000:6.2f} ms/job  "
            f"ratio {seconds / base:.3f}x"
        )
    allowed = args.jobs // limit + 1
    for label, target in (("submit_all (packed)", 0.1), ("submit_all, pack=False", 1.05)):
        ratio = totals[label] / base
        print(f"{label}: {ratio:.3f}x raw; target <= {target}x: {verdict(ratio <= target)}")
    print(
        f"sbatch calls for {args.jobs} packed jobs: {calls} ({arrays} arrays; "
        f"MaxArraySize {limit}); target <= {allowed}: {verdict(calls <= allowed)}"
    )
    for label, (jobs, commands, seconds) in ssh.items():
        per_job = commands / jobs
        target = f"; target <= 0.05: {verdict(per_job <= 0.05)}" if label == "packed" else ""
        print(
            f"over ssh, submit_all {label} of {jobs} jobs: {commands} ssh commands, "
            f"{per_job:.3f} per job, {seconds:.2f} s{target}"
        )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
