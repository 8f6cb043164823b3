"""The process side of the ``local`` backend: ``python local_runner.py COMMAND``.

Sub-commands: ``submit SCRIPT`` (prints the job ID), ``status ID...``
(prints ``ID STATE`` lines, and ``ID exit-code N`` for a job that ended),
``cancel ID``, ``find-tag TAG``, and the internal ``supervise ID``.

Each job is a folder ``<spool>/<ID>/``: ``meta.json`` (what to run),
``supervisor`` (PID and start time of the process watching the job),
``started``, ``cancel`` (cancellation requested) and ``exit.json`` (final
state), each written atomically. A detached supervisor process (its own
session) runs the script in its own process group, enforces the walltime,
and writes ``exit.json``; so the state is durable and survives the
submitting Python process.

It uses the standard library only: the backend starts it at every poll by its
file path, without the clusterjob package and without site-packages
(``python -I -S``), which costs a bare interpreter's start-up. ``python -m
clusterjob.backends.local_runner`` works too, at the price of the package.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from typing import Any

SPOOL_ENV = "CLUSTERJOB_LOCAL_SPOOL"
#: A job that has no supervisor after this many seconds was lost during submission.
START_GRACE = 60.0
#: Seconds between SIGTERM and SIGKILL when a job is cancelled or over its walltime.
KILL_GRACE = 5.0
HEADER_PREFIX = "#LOCAL"


def spool() -> str:
    path = os.environ.get(SPOOL_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "clusterjob", "local"
    )
    os.makedirs(path, exist_ok=True)
    return path


def job_dir(job_id: str) -> str:
    return os.path.join(spool(), job_id)


def write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as in_fh:
            data = json.load(in_fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def parse_header(script: str) -> dict[str, str]:
    """The ``#LOCAL --key=value`` options of a job script."""
    options: dict[str, str] = {}
    with open(script, encoding="utf-8") as in_fh:
        for line in in_fh:
            if not line.startswith(HEADER_PREFIX + " "):
                continue
            for word in shlex.split(line[len(HEADER_PREFIX) :]):
                key, _, value = word.lstrip("-").partition("=")
                options[key] = value
    return options


def walltime_seconds(text: str) -> int:
    """The ``--time`` of a job script: whole seconds, as the local backend writes it."""
    if not text.isdigit():
        raise SystemExit(
            f"#LOCAL --time={text}: the walltime is whole seconds here (the local backend "
            "writes it so from the job's time resource); render the script again"
        )
    return int(text)


def next_job_id() -> str:
    with open(os.path.join(spool(), "next_id"), "a+", encoding="utf-8") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)
        counter.seek(0)
        text = counter.read().strip()
        job_id = int(text) if text.isdigit() else 1
        counter.seek(0)
        counter.truncate()
        counter.write(f"{job_id + 1}\n")
        counter.flush()
        os.fsync(counter.fileno())
    return str(job_id)


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against PID reuse); None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def submit(script: str) -> str:
    script = os.path.abspath(script)
    options = parse_header(script)
    walltime = walltime_seconds(options["time"]) if options.get("time") else None  # may refuse
    job_id = next_job_id()
    folder = job_dir(job_id)
    os.makedirs(folder)
    workdir = os.path.dirname(script)
    stdout = options.get("output") or f"local-{job_id}.out"
    meta = {
        "job_id": job_id,
        "script": script,
        "workdir": workdir,
        "name": options.get("job-name", os.path.basename(script)),
        "stdout": os.path.join(workdir, stdout),
        "stderr": os.path.join(workdir, options["error"]) if options.get("error") else None,
        "time": walltime,
        "threads": options.get("threads"),
        "tag": options.get("tag"),
        "dependency": [d for d in options.get("dependency", "").partition(":")[2].split(":") if d],
        "submitted_at": time.time(),
        "submit_host": socket.gethostname(),
    }
    write_json(os.path.join(folder, "meta.json"), meta)
    with open(os.path.join(folder, "supervisor.log"), "ab") as log:
        subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), "supervise", job_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd=workdir,
        )
    return job_id


def exit_code_of(job_id: str) -> int | None:
    """The exit status the job's script ended with (negative: killed by that signal), or None."""
    final = read_json(os.path.join(job_dir(job_id), "exit.json"))
    code = final.get("exit_code") if final is not None else None
    return code if isinstance(code, int) else None


def state_of(job_id: str) -> str:
    folder = job_dir(job_id)
    final = read_json(os.path.join(folder, "exit.json"))
    if final is not None:
        return str(final["state"])
    meta = read_json(os.path.join(folder, "meta.json"))
    if meta is None:
        return "UNKNOWN"
    supervisor = read_json(os.path.join(folder, "supervisor"))
    if supervisor is None:
        lost = time.time() - float(meta.get("submitted_at", 0)) > START_GRACE
        return "FAILED" if lost else "PENDING"
    if process_start_time(int(supervisor["pid"])) != supervisor["start"]:
        # The supervisor died without writing exit.json (e.g. the machine rebooted).
        return "CANCELLED" if os.path.exists(os.path.join(folder, "cancel")) else "FAILED"
    return "RUNNING" if os.path.exists(os.path.join(folder, "started")) else "PENDING"


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)


def cancel(job_id: str) -> None:
    folder = job_dir(job_id)
    if read_json(os.path.join(folder, "meta.json")) is None:
        raise SystemExit(f"local job {job_id} does not exist (spool {spool()})")
    with open(os.path.join(folder, "cancel"), "w", encoding="utf-8"):
        pass
    job = read_json(os.path.join(folder, "job"))
    if job is not None:
        kill_group(int(job["pgid"]))


def find_tag(tag: str) -> list[str]:
    found = []
    for entry in os.scandir(spool()):
        if entry.name.isdigit():
            meta = read_json(os.path.join(entry.path, "meta.json"))
            if meta is not None and meta.get("tag") == tag:
                found.append(entry.name)
    return sorted(found, key=int)


def finish(folder: str, state: str, exit_code: int | None, reason: str = "") -> None:
    write_json(
        os.path.join(folder, "exit.json"),
        {"state": state, "exit_code": exit_code, "reason": reason},
    )


def supervise(job_id: str) -> None:
    folder = job_dir(job_id)
    meta = read_json(os.path.join(folder, "meta.json"))
    assert meta is not None
    me = os.getpid()
    write_json(os.path.join(folder, "supervisor"), {"pid": me, "start": process_start_time(me)})
    cancelled = lambda: os.path.exists(os.path.join(folder, "cancel"))
    while meta["dependency"]:
        states = [state_of(dep) for dep in meta["dependency"]]
        if cancelled():
            return finish(folder, "CANCELLED", None, "cancelled while pending")
        if any(s not in ("PENDING", "RUNNING", "COMPLETED") for s in states):
            return finish(folder, "FAILED", None, "DependencyNeverSatisfied")
        if all(s == "COMPLETED" for s in states):
            break
        time.sleep(0.5)
    if cancelled():
        return finish(folder, "CANCELLED", None, "cancelled while pending")
    env = dict(os.environ)
    env.update(
        LOCAL_JOB_ID=job_id,
        LOCAL_SUBMIT_DIR=meta["workdir"],
        LOCAL_SUBMIT_HOST=meta["submit_host"],
        LOCAL_JOB_NAME=meta["name"],
        LOCAL_JOB_NODELIST=socket.gethostname(),
    )
    if meta.get("threads"):
        env["OMP_NUM_THREADS"] = str(meta["threads"])
    # The job holds its own copies of the output files; the supervisor closes its own at once.
    with contextlib.ExitStack() as files:
        stdout = files.enter_context(open(meta["stdout"], "ab"))
        stderr = (
            files.enter_context(open(meta["stderr"], "ab")) if meta["stderr"] else subprocess.STDOUT
        )
        try:
            proc = subprocess.Popen(
                [meta["script"]], cwd=meta["workdir"], env=env, stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            return finish(folder, "FAILED", None, f"cannot start {meta['script']}: {exc}")
    write_json(os.path.join(folder, "job"), {"pid": proc.pid, "pgid": proc.pid})
    with open(os.path.join(folder, "started"), "w", encoding="utf-8"):
        pass
    if cancelled():  # a cancel that raced with the start
        kill_group(proc.pid)
    try:
        returncode = proc.wait(timeout=meta["time"])
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        timed_out = True
        try:
            returncode = proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
    # Whatever the script left behind in its group goes with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if cancelled():
        finish(folder, "CANCELLED", returncode, "cancelled")
    elif timed_out:
        finish(folder, "FAILED", returncode, "TIMEOUT")
    else:
        finish(folder, "COMPLETED" if returncode == 0 else "FAILED", returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local_runner.py")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submit").add_argument("script")
    commands.add_parser("status").add_argument("job_ids", nargs="+")
    commands.add_parser("cancel").add_argument("job_id")
    commands.add_parser("find-tag").add_argument("tag")
    commands.add_parser("supervise").add_argument("job_id")
    args = parser.parse_args(argv)
    if args.command == "submit":
        print(submit(args.script))
    elif args.command == "status":
        # "ID exit-code N" on a line of its own: a parser that knows only "ID STATE" skips it.
        for job_id in args.job_ids:
            print(job_id, state_of(job_id) if job_id.isdigit() else "UNKNOWN")
            code = exit_code_of(job_id) if job_id.isdigit() else None
            if code is not None:
                print(job_id, "exit-code", code)
    elif args.command == "cancel":
        cancel(args.job_id)
    elif args.command == "find-tag":
        # "ID TAG": a line that a login shell printed cannot carry the tag by chance.
        for job_id in find_tag(args.tag):
            print(job_id, args.tag)
    else:
        supervise(args.job_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
