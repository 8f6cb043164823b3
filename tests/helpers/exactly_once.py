"""What the exactly-once tests share: a workflow run in a subprocess, and what it left behind.

The tests (``tests/remote/test_exactly_once.py`` for ``submit()``,
``tests/remote/test_submit_all_exactly_once.py`` for ``submit_all()``) kill a
workflow, rerun it and count jobs. A workflow is Python source run with
``python -c`` and one JSON argument, ``cfg``; :data:`WORKFLOW_SETUP` is its
first part, which points ``JobScript`` at the scenario's backend, folders and
remote. The workflow runs with its own local-backend spool
(``<folder>/spool``) and, if asked, ``CLUSTERJOB_FAULT_INJECT`` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

#: The start of every workflow: ``cfg`` read, ``JobScript`` configured from it.
#: ``cfg["remote_runner"]``: how the remote runs the local backend's runner (see
#: ``local_runner_on_the_remote`` in tests/remote/conftest.py), for the local backend over ssh.
WORKFLOW_SETUP = textwrap.dedent(
    """
    import json, sys
    from clusterjob import JobScript, wait_all
    cfg = json.loads(sys.argv[1])
    JobScript.backend = cfg["backend"]
    JobScript.rootdir = cfg["rootdir"]
    JobScript.cache_folder = cfg["cache"]
    JobScript.max_sleep_interval = 2
    if cfg["remote"]:
        JobScript.remote, JobScript.ssh, JobScript.scp = cfg["remote"], cfg["ssh"], cfg["scp"]
    if cfg["remote_runner"]:
        from clusterjob.backends.local import LocalBackend

        class LocalOnTheRemote(LocalBackend):
            @staticmethod
            def _runner(remote):
                return cfg["remote_runner"] if remote else LocalBackend._runner(remote)

        JobScript.register_backend(LocalOnTheRemote(), name="local")
    """
)


def workflow_env(folder: Path, fault: str | None = None) -> dict[str, str]:
    """This process's environment, with the workflow's own spool and fault point (if any)."""
    env = dict(os.environ)
    env.pop("CLUSTERJOB_FAULT_INJECT", None)
    env["CLUSTERJOB_LOCAL_SPOOL"] = str(folder / "spool")
    if fault:
        env["CLUSTERJOB_FAULT_INJECT"] = fault
    return env


def run_workflow(
    source: str, folder: Path, cfg: dict[str, Any], fault: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run workflow ``source`` with ``cfg`` in ``folder`` to its end (or its crash)."""
    return subprocess.run(
        [sys.executable, "-c", source, json.dumps(cfg)], env=workflow_env(folder, fault),
        cwd=folder, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def start_workflow(source: str, folder: Path, cfg: dict[str, Any]) -> subprocess.Popen[str]:
    """Start workflow ``source`` with ``cfg`` in ``folder``, for a test that runs several at once
    or kills it from outside."""
    return subprocess.Popen(
        [sys.executable, "-c", source, json.dumps(cfg)], env=workflow_env(folder), cwd=folder,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def last_json_line(stdout: str) -> Any:
    """What a workflow printed last (its answer: statuses and job IDs)."""
    return json.loads(stdout.strip().splitlines()[-1])


def local_jobs(folder: Path, prefix: str) -> dict[str, list[str]]:
    """Job name -> IDs of the local backend's jobs named ``prefix*`` in the workflow's spool."""
    jobs: dict[str, list[str]] = {}
    for meta in sorted((folder / "spool").glob("*/meta.json")):
        data = json.loads(meta.read_text())
        if data["name"].startswith(prefix):
            jobs.setdefault(data["name"], []).append(data["job_id"])
    return jobs


def cached_record(cache: Path, cache_id: str) -> dict[str, Any] | None:
    """The record of ``cache_id`` in cache folder ``cache`` (None: no file)."""
    path = cache / f"clusterjob.{cache_id}.cache"
    return json.loads(path.read_text()) if path.exists() else None


def cached_job_id(cache: Path, cache_id: str) -> str | None:
    """The job ID the cache holds for ``cache_id``, if its submission was completed."""
    record = cached_record(cache, cache_id)
    return record.get("job_id") if record and record.get("state") == "submitted" else None


def fixture_or_reason(request: pytest.FixtureRequest, name: str) -> Any:
    """Fixture ``name``, or the error text if its scheduler is not running (reported per scenario)."""
    try:
        return request.getfixturevalue(name)
    except BaseException as exc:  # noqa: BLE001 - pytest.fail() of a missing scheduler
        return f"{name} is not available: {exc}"


def scheduler_marks(scenario: str) -> list[pytest.MarkDecorator]:
    """The marks of a scenario named ``<backend>-<where>[-...]``: what it needs running."""
    backend, where = scenario.split("-")[:2]
    return [
        mark
        for mark, needed in (
            (pytest.mark.slurm, backend == "slurm"),
            (pytest.mark.ssh, where == "ssh"),
        )
        if needed
    ]
