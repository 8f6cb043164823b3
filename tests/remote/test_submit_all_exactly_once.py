"""Exactly once for ``submit_all()``: SIGKILL at each step of a batch, random SIGKILLs, 8 processes.

The model is ``test_exactly_once.py`` (``submit()``); here the unit is a batch.
Each scenario's batch has jobs that pack into one array (same headers, their
own names and bodies) and one that cannot (another walltime), so both the
array and the one-by-one path are killed. The local backend packs nothing: it
submits every job one by one, in the same batch.

* At each step of :data:`clusterjob.faults.BATCH_POINTS` (the n-th submission
  for ``before_submit@n``/``after_submit@n``; the n-th cache write for
  ``during_cache_write@n``: the batch's intents first, then its results) the
  process kills itself; the workflow is rerun unchanged and waited for.
* A 200-job batch (four arrays) is killed from outside at random moments,
  several times, then rerun cleanly.
* 8 processes submit the same batch at once.

Then nothing of the scenario is left on the scheduler, and each job's own file
(every job appends its task's job ID to it) has exactly one line, whose job ID
is the one the cache holds and the waited result has: 0 duplicates, 0 lost.
Counting executions, not scheduler jobs, is what proves it: an array task
runs under the array's name, not the job's. The plays are independent (own
folders, cache, prefix) and run concurrently, since the test SLURM runs two
tasks at a time; the table is printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from clusterjob.faults import BATCH_POINTS
from helpers.exactly_once import (
    WORKFLOW_SETUP,
    cached_job_id,
    cached_record,
    fixture_or_reason,
    last_json_line,
    run_workflow,
    scheduler_marks,
    start_workflow,
)
from helpers.waiting import wait_for

#: Jobs per scenario; job 1 has another walltime, so jobs 0 and 2 pack and job 1 goes alone.
BATCH = 3
UNPACKED = (1,)
#: Every step once; the second submission (the job alone, after the array) too; a cache write
#: among the intents, the first result and one in the middle of the results.
INJECTION_POINTS = tuple(
    point
    for name in BATCH_POINTS
    for point in {
        "before_submit": ("before_submit", "before_submit@2"),
        "after_submit": ("after_submit", "after_submit@2"),
        "during_cache_write": (
            "during_cache_write",
            f"during_cache_write@{BATCH + 1}",
            f"during_cache_write@{BATCH + 2}",
        ),
    }.get(name, (name,))
)
#: (backend, where the scheduler is reached)
MODES = (("slurm", "local"), ("slurm", "ssh"), ("local", "local"))
#: The random kills: jobs in the batch, jobs per array, kills before the clean rerun.
MANY, ARRAY_SIZE, KILLS = 200, 50, 6
#: The k-th kill (from 0) comes between half of and ``KILL_SPAN * KILL_SPAN_GROWTH**k`` seconds
#: into the ``submit_all`` call. A fresh batch of 200 (4 arrays) takes 0.2 s or more (0.9 s
#: before the speed-ups of e803fb7: a first window of 0.25-0.5 s then missed it whole), a run
#: that resumes one (tag lookups, then the rest) longer: the windows start well inside the
#: first run and overlap, so none can jump over the whole batch, and they reach later steps.
KILL_SPAN, KILL_SPAN_GROWTH = 0.1, 1.6
#: Seconds a rerun may wait for its jobs: all plays share the test SLURM's two CPUs.
WAIT = 900

WORKFLOW = WORKFLOW_SETUP + textwrap.dedent(
    """
    from clusterjob import submit_all
    jobs = [
        JobScript('echo "$CLUSTERJOB_ID $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID" >> ran.{jobname}',
                  jobname=f"{cfg['prefix']}-{i}", workdir="w", time="2" if i in cfg["unpacked"] else "1",
                  prologue="echo {jobname} >> prologue.log" if cfg["prologue"] else "",
                  aux_scripts={"aux.sh": "true"})
        for i in range(cfg["jobs"])
    ]
    print("submit_all", flush=True)  # the moment the random kills are timed from
    results = submit_all(jobs, cache_ids=[f"job{i}" for i in range(cfg["jobs"])],
                         max_array_size=cfg["max_array_size"], concurrency=cfg["concurrency"])
    if cfg["wait"]:
        statuses = wait_all(results, timeout=cfg["wait"])
        print(json.dumps({"statuses": statuses, "ids": [r.job_id for r in results]}))
    """
)


# -- what the scheduler received and what ran ------------------------------------------

#: SLURM states of a task that will not run (any more).
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
         "DEADLINE", "PREEMPTED"}  # fmt: skip


@dataclass
class Received:
    """What a scheduler received from one play's folder: its tasks (``A_k``, or a job's ID)."""

    tasks: set[str] = field(default_factory=set)
    active: set[str] = field(default_factory=set)

    @property
    def submissions(self) -> set[str]:
        """The arrays and lone jobs: one submit command each."""
        return {task.split("_")[0] for task in self.tasks}


class SlurmRecords:
    """squeue (every task, every state) and sacct, asked at most every 2 s for all plays at once.

    A job's rows are found by its working directory, the play's job folder:
    the array runs under a common name, so names do not tell.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = 0.0
        self._rows: list[tuple[str, str, str]] = []
        self._since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 60))

    def received(self, folder: Path, max_age: float = 2.0) -> Received:
        """The tasks run in ``folder``, from rows at most ``max_age`` seconds old.

        A task is active until a row says it ended (the queue and the
        accounting may each lag behind the other).
        """
        rows = self._snapshot(max_age)
        found = Received()
        for task, state, workdir in rows:
            if (workdir + "/").startswith(f"{folder}/") and task.replace("_", "").isdigit():
                found.tasks.add(task)
                if state not in ENDED:
                    found.active.add(task)
        found.active -= {task for task, state, _ in rows if state in ENDED}
        return found

    def _snapshot(self, max_age: float) -> list[tuple[str, str, str]]:
        with self._lock:
            if time.monotonic() - self._taken >= max_age:
                self._rows = self._query()
                self._taken = time.monotonic()
            return self._rows

    def _query(self) -> list[tuple[str, str, str]]:
        queue = _run(["squeue", "-h", "-r", "--states=all", "--format=%i|%T|%Z"])
        accounting = _run(["sacct", "-X", "-n", "-P", "-S", self._since, "-E", "now",
                           "--format=JobID,State,WorkDir"])  # fmt: skip
        rows = []
        for line in (queue + accounting).splitlines():
            parts = line.split("|")
            if len(parts) == 3:
                rows.append((parts[0].strip(), parts[1].split()[0] if parts[1] else "", parts[2]))
        return rows


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def local_received(folder: Path) -> Received:
    """The local backend's jobs in the play's spool; active until the runner wrote their exit."""
    found = Received()
    for meta in (folder / "spool").glob("*/meta.json"):
        job_id = json.loads(meta.read_text())["job_id"]
        found.tasks.add(job_id)
        if not (meta.parent / "exit.json").exists():
            found.active.add(job_id)
    return found


def executions(folder: Path, prefix: str, jobs: int) -> list[list[str]]:
    """Per job, the job IDs it ran as: ``A_k`` for task k of array A, else the job's ID."""
    runs = []
    for i in range(jobs):
        path = folder / "root" / "w" / f"ran.{prefix}-{i}"
        lines = path.read_text().splitlines() if path.exists() else []
        runs.append([_run_id(line.split()) for line in lines])
    return runs


def _run_id(words: list[str]) -> str:
    return f"{words[1]}_{words[2]}" if len(words) == 3 else words[0]


def cache_states(folder: Path, jobs: int) -> dict[str, int]:
    """How many cache files of the play hold an intent (submitting), a result (submitted), none."""
    states: dict[str, int] = {}
    for i in range(jobs):
        record = cached_record(folder / "cache", f"job{i}")
        state = record.get("state", "?") if record else "none"
        states[state] = states.get(state, 0) + 1
    return states


# -- the plays -------------------------------------------------------------------------


@dataclass
class Play:
    """One independent workflow folder: its jobs, how its scheduler is reached, what it found."""

    backend: str
    where: str
    jobs: int
    folder: Path
    prefix: str = field(default_factory=lambda: f"cjb{uuid.uuid4().hex[:6]}")
    max_array_size: int | None = None
    prologue: bool = True
    #: submit_all's concurrency (None: its default, several submit commands at once).
    concurrency: int | None = None
    error: str = ""
    rerun_rc: int | None = None
    rerun_stderr: str = ""
    statuses: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    received: Received = field(default_factory=Received)
    runs: list[list[str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The parameter of the play's test."""
        raise NotImplementedError

    def play(self, scheduler: SlurmRecords | None, remote: Any) -> None:
        """Run the play's workflows and count what they did (``scheduler`` None: the spool)."""
        raise NotImplementedError

    @property
    def expected_submissions(self) -> int:
        """Submit commands of a batch: one per array and lone job (``local``: one per job)."""
        if self.backend == "local":
            return self.jobs
        packed = self.jobs - len(UNPACKED)
        return -(-packed // (self.max_array_size or packed)) + len(UNPACKED)

    def now(self, scheduler: SlurmRecords | None, max_age: float = 2.0) -> Received:
        """What the scheduler (or the local spool) has received from the play so far."""
        return (
            scheduler.received(self.folder, max_age) if scheduler else local_received(self.folder)
        )

    def cfg(self, remote: Any, wait: float = 0) -> dict[str, Any]:
        over_ssh = self.where == "ssh"
        return {
            "backend": self.backend, "rootdir": str(self.folder / "root"),
            "cache": str(self.folder / "cache"), "prefix": self.prefix, "jobs": self.jobs,
            "unpacked": list(UNPACKED), "max_array_size": self.max_array_size,
            "prologue": self.prologue, "remote": remote.host if over_ssh else None,
            "ssh": remote.ssh if over_ssh else "ssh", "scp": remote.scp if over_ssh else "scp",
            "remote_runner": None, "wait": wait, "concurrency": self.concurrency,
        }  # fmt: skip

    def take_answer(self, done: subprocess.CompletedProcess[str]) -> None:
        self.rerun_rc, self.rerun_stderr = done.returncode, done.stderr
        if done.returncode == 0:
            answer = last_json_line(done.stdout)
            self.statuses, self.ids = answer["statuses"], answer["ids"]

    def count(self, scheduler: SlurmRecords | None) -> None:
        """Once nothing of the play is left to run: what the scheduler received, what ran."""
        wait_for(lambda: not self.now(scheduler).active, f"the jobs of {self.folder} to end", WAIT)
        wait_for(
            lambda: not self.now(scheduler, 0).active, f"the jobs of {self.folder} to end", WAIT
        )
        self.received = self.now(scheduler, 0)
        self.runs = executions(self.folder, self.prefix, self.jobs)

    @property
    def duplicates(self) -> int:
        return sum(len(runs) - 1 for runs in self.runs if len(runs) > 1)

    @property
    def lost(self) -> int:
        """Jobs that did not run, or whose cached or waited job ID is not the one that ran."""
        lost = 0
        for i in range(self.jobs):
            ran = self.runs[i] if i < len(self.runs) else []
            cached = cached_job_id(self.folder / "cache", f"job{i}")
            waited = self.ids[i] if i < len(self.ids) else None
            if not ran or cached not in ran or waited != cached:
                lost += 1
        return lost

    @property
    def mode(self) -> str:
        return f"{self.backend}-{self.where}"

    def tally(self) -> str:
        ran = sum(1 for runs in self.runs if runs)
        return (
            f"after rerun: {len(self.received.submissions)} submission(s), "
            f"{len(self.received.tasks)} task(s), ran {ran}/{self.jobs}  "
            f"duplicates={self.duplicates}  lost={self.lost}"
            + (f"  ERROR: {self.error}" if self.error else "")
        )


@dataclass
class Scenario(Play):
    """Killed by itself at ``point``, then rerun unchanged."""

    #: One submit command at a time: the n-th passing of a point is then the n-th command's.
    concurrency: int | None = 1
    point: str = ""
    crash_rc: int | None = None
    crash_stderr: str = ""
    after_crash: Received = field(default_factory=Received)

    @property
    def key(self) -> str:
        return f"{self.mode}-{self.point}"

    @property
    def submitted_before_the_kill(self) -> int:
        """Submit commands that had run when the process killed itself at ``point``."""
        name, _, nth = self.point.partition("@")
        n = int(nth or 1)
        if name == "before_submit":
            return n - 1
        if name == "after_submit":
            return n
        if name == "during_cache_write" and n > BATCH:
            return self.expected_submissions
        return 0

    def play(self, scheduler: SlurmRecords | None, remote: Any) -> None:
        crashed = run_workflow(WORKFLOW, self.folder, self.cfg(remote), fault=self.point)
        self.crash_rc, self.crash_stderr = crashed.returncode, crashed.stderr
        self.after_crash = self.now(scheduler, max_age=0)
        self.take_answer(
            run_workflow(WORKFLOW, self.folder, self.cfg(remote, WAIT), timeout=WAIT + 60)
        )
        self.count(scheduler)

    def row(self) -> str:
        killed = "yes" if self.crash_rc == -9 else str(self.crash_rc)
        return (
            f"{self.backend:<6} {self.where:<6} {self.point:<22} killed={killed:<4}"
            f" submissions after crash={len(self.after_crash.submissions)}  " + self.tally()
        )


@dataclass
class Kill:
    """One SIGKILL from outside: when, and what the play had done by then."""

    delay: float
    rc: int | None
    states: dict[str, int]
    submissions: int

    def row(self) -> str:
        how = "killed" if self.rc == -9 else f"ended by itself (rc={self.rc})"
        cached = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))
        return f"    kill {self.delay:.2f} s into submit_all: {how}; cache: {cached}; submissions: {self.submissions}"


@dataclass
class RandomKills(Play):
    """A large batch killed from outside at random moments, several times, then rerun cleanly."""

    seed: int = 0
    kills: list[Kill] = field(default_factory=list)

    @property
    def key(self) -> str:
        return "random-kills"

    @property
    def interrupted(self) -> list[Kill]:
        """The kills that stopped a run in the middle of the batch: intents left, or some results."""
        return [
            k
            for k in self.kills
            if k.rc == -9
            and ("submitting" in k.states or 0 < k.states.get("submitted", 0) < self.jobs)
        ]

    def kill_repeatedly(self, scheduler: SlurmRecords | None, remote: Any) -> None:
        """The killed runs, one after the other (each resumes what the previous one left).

        A kill comes at a random moment of the ``submit_all`` call (timed from
        the line the workflow prints right before it, so that Python's start-up
        does not count), in a window that moves later from kill to kill (see
        :data:`KILL_SPAN`), so that the kills reach ever later steps. Once a
        run ended by itself, the batch is submitted: no more kills.
        """
        chance = random.Random(self.seed)
        for kill in range(KILLS):
            if self.kills and self.kills[-1].rc == 0:
                break
            span = KILL_SPAN * KILL_SPAN_GROWTH**kill
            delay = chance.uniform(span / 2, span)
            proc = start_workflow(WORKFLOW, self.folder, self.cfg(remote))
            assert proc.stdout is not None
            proc.stdout.readline()
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.kill()
            proc.communicate()
            self.kills.append(
                Kill(delay, proc.returncode, cache_states(self.folder, self.jobs),
                     len(self.now(scheduler, max_age=0).submissions))
            )  # fmt: skip

    def play(self, scheduler: SlurmRecords | None, remote: Any) -> None:
        self.take_answer(
            run_workflow(WORKFLOW, self.folder, self.cfg(remote, WAIT), timeout=WAIT + 60)
        )
        self.count(scheduler)

    def rows(self) -> list[str]:
        return [
            f"slurm  local  {MANY} jobs (arrays of {ARRAY_SIZE}), up to {KILLS} random SIGKILLs (seed {self.seed}), {len(self.interrupted)} of them mid-batch, then a clean rerun",
            *(kill.row() for kill in self.kills),
            "    " + self.tally(),
        ]


@dataclass
class Crowd(Play):
    """8 processes submitting and waiting on the same batch at once."""

    rcs: list[int | None] = field(default_factory=list)
    stderrs: list[str] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"crowd-{self.mode}"

    def play(self, scheduler: SlurmRecords | None, remote: Any) -> None:
        procs = [start_workflow(WORKFLOW, self.folder, self.cfg(remote, WAIT)) for _ in range(8)]
        outputs = [proc.communicate(timeout=WAIT + 60) for proc in procs]
        self.rcs = [proc.returncode for proc in procs]
        self.stderrs = [err for _, err in outputs]
        self.rerun_rc = next((rc for rc in self.rcs if rc != 0), 0)
        self.rerun_stderr = "\n".join(self.stderrs)
        self.answers = [last_json_line(out) if out.strip() else None for out, _ in outputs]
        if self.answers[0]:
            self.statuses, self.ids = self.answers[0]["statuses"], self.answers[0]["ids"]
        self.count(scheduler)

    def row(self) -> str:
        return f"{self.backend:<6} {self.where:<6} 8 processes, same batch:  " + self.tally()


# -- playing them all at once -------------------------------------------------------------

SCENARIOS = [f"{b}-{w}-{p}" for b, w in MODES for p in INJECTION_POINTS]
CROWDS = [f"{b}-{w}" for b, w in MODES]


def _selected(request: pytest.FixtureRequest, test: str) -> set[str]:
    """The parameters (or the name) of the items of ``test`` this session runs."""
    return {
        item.callspec.params.get("scenario", item.callspec.params.get("mode", ""))
        if hasattr(item, "callspec")
        else test
        for item in request.session.items
        if getattr(item, "originalname", None) == test
    }


def _plays(request: pytest.FixtureRequest, folders: pytest.TempPathFactory) -> list[Play]:
    plays: list[Play] = []
    scenarios = _selected(
        request, "test_sigkill_at_each_step_of_a_batch_then_rerun_runs_each_job_once"
    )
    for backend, where in MODES:
        for point in INJECTION_POINTS:
            if f"{backend}-{where}-{point}" in scenarios:
                folder = folders.mktemp(f"{backend}-{where}-{point.replace('@', '-')}")
                plays.append(Scenario(backend, where, BATCH, folder, point=point))
    if _selected(request, "test_random_sigkills_during_a_large_batch_then_rerun_run_each_job_once"):
        seed = int(os.environ.get("CLUSTERJOB_TEST_SEED", random.randrange(10**6)))
        plays.append(
            RandomKills("slurm", "local", MANY, folders.mktemp("random-kills"),
                        max_array_size=ARRAY_SIZE, prologue=False, seed=seed)
        )  # fmt: skip
    crowds = _selected(request, "test_eight_processes_submitting_the_same_batch_run_each_job_once")
    for backend, where in MODES:
        if f"{backend}-{where}" in crowds:
            plays.append(Crowd(backend, where, BATCH, folders.mktemp(f"crowd-{backend}-{where}")))
    return plays


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             report: dict[str, list[str]]) -> dict[str, Play]:  # fmt: skip
    """Play the selected plays concurrently; the random kills first, while the machine is quiet."""
    plays = _plays(request, tmp_path_factory)
    needs = {"slurm_env": any(p.backend == "slurm" for p in plays),
             "remote": any(p.where == "ssh" for p in plays)}  # fmt: skip
    found = {name: fixture_or_reason(request, name) for name, needed in needs.items() if needed}
    scheduler = SlurmRecords() if not isinstance(found.get("slurm_env"), str) else None
    remote = found.get("remote")

    def attempt(one: Play, step: Callable[[SlurmRecords | None, Any], None]) -> None:
        """``step`` of play ``one``; a missing scheduler or a failure is the play's error."""
        for name, mark in (("slurm_env", one.backend == "slurm"), ("remote", one.where == "ssh")):
            if mark and isinstance(found.get(name), str):
                one.error = found[name]
                return
        if one.error:
            return
        try:
            step(scheduler if one.backend == "slurm" else None, remote)
        except BaseException as exc:  # noqa: BLE001 - reported by the play's own test
            one.error = f"{type(exc).__name__}: {exc}"

    for one in plays:
        if isinstance(one, RandomKills):
            attempt(one, one.kill_repeatedly)
    with ThreadPoolExecutor(max_workers=max(1, len(plays))) as pool:
        list(pool.map(lambda one: attempt(one, one.play), plays))
    title = "clusterjob fault injection: SIGKILL during submit_all(), then rerun (tests/remote/test_submit_all_exactly_once.py)"
    report[title] = [
        f"{BATCH} jobs (cache_ids) per batch, 2 packed into one array and 1 alone (local: 3 alone); killed at the point, then rerun",
        *(p.row() for p in plays if isinstance(p, Scenario)),
        *(line for p in plays if isinstance(p, RandomKills) for line in p.rows()),
        *(p.row() for p in plays if isinstance(p, Crowd)),
    ]
    return {p.key: p for p in plays}


def _ran_once_each(play: Play) -> None:
    """Nothing of the play was lost or ran twice, and the scheduler got no stray submission."""
    assert not play.error, play.error
    assert play.rerun_rc == 0, play.rerun_stderr
    assert play.statuses == [0] * play.jobs, play.rerun_stderr
    assert play.duplicates == 0 and play.lost == 0, (play.runs, play.ids)
    assert len(play.received.tasks) == play.jobs, sorted(play.received.tasks)


def _packed(play: Play) -> None:
    """On SLURM, the jobs that pack ran as tasks of one array, the other as a job of its own."""
    if play.backend != "slurm":
        return
    arrays = {play.ids[i].split("_")[0] for i in range(play.jobs) if i not in UNPACKED}
    assert len(arrays) == 1 and all(
        "_" in play.ids[i] for i in range(play.jobs) if i not in UNPACKED
    ), play.ids
    assert all("_" not in play.ids[i] for i in UNPACKED), play.ids


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [pytest.param(s, marks=scheduler_marks(s)) for s in SCENARIOS])
def test_sigkill_at_each_step_of_a_batch_then_rerun_runs_each_job_once(
    outcomes: dict[str, Play], scenario: str
) -> None:
    play = outcomes[scenario]
    assert isinstance(play, Scenario)
    assert not play.error, play.error
    assert play.crash_rc == -9, f"the workflow was not killed at {play.point}: {play.crash_stderr}"
    # What reached the scheduler before the kill: nothing before the first submit command.
    assert len(play.after_crash.submissions) == play.submitted_before_the_kill, sorted(
        play.after_crash.tasks
    )
    _ran_once_each(play)
    assert len(play.received.submissions) == play.expected_submissions, sorted(play.received.tasks)
    _packed(play)


@pytest.mark.slow
@pytest.mark.slurm
def test_random_sigkills_during_a_large_batch_then_rerun_run_each_job_once(
    outcomes: dict[str, Play],
) -> None:
    play = outcomes["random-kills"]
    assert isinstance(play, RandomKills)
    assert not play.error, play.error
    # A run either was killed or had submitted the whole batch by then; none failed by itself.
    assert all(kill.rc in (-9, 0) for kill in play.kills), [kill.row() for kill in play.kills]
    assert play.interrupted, "every run ended before its kill: nothing was interrupted"
    _ran_once_each(play)
    # The jobs a kill left unsubmitted go into new arrays with the other missing ones.
    assert len(play.received.submissions) >= play.expected_submissions, sorted(
        play.received.submissions
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", [pytest.param(m, marks=scheduler_marks(m)) for m in CROWDS])
def test_eight_processes_submitting_the_same_batch_run_each_job_once(
    outcomes: dict[str, Play], mode: str
) -> None:
    play = outcomes[f"crowd-{mode}"]
    assert isinstance(play, Crowd)
    assert not play.error, play.error
    assert play.rcs == [0] * 8, play.stderrs
    assert all(answer == play.answers[0] for answer in play.answers), play.answers
    _ran_once_each(play)
    assert len(play.received.submissions) == play.expected_submissions, sorted(play.received.tasks)
    _packed(play)
    # Each job's prologue ran once, in the process that submitted it.
    prologues = (play.folder / "prologue.log").read_text().split()
    assert sorted(prologues) == [f"{play.prefix}-{i}" for i in range(BATCH)]
