"""What the job commands share: exit codes, choosing and reading cache files, one row per job.

A job is named on the command line by its cache file, or, with
``--cache-folder DIR``, by its cache id; with ``--cache-folder`` alone, every
``*.cache`` file of the folder is meant. Its row and its JSON object carry the
same fields, read from the cache record (so an interrupted submission, which has
no job yet, is listed too).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterjob import cache
from clusterjob.async_result import AsyncResult
from clusterjob.errors import CacheError, ClusterjobError
from clusterjob.polling import as_completed
from clusterjob.status import CANCELLED, COMPLETED, FAILED

__all__ = [
    "EXIT_COMPLETED",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "CacheEntry",
    "CliError",
    "add_selection_arguments",
    "job_object",
    "load_results",
    "outcome",
    "print_columns",
    "print_jobs",
    "read_entries",
    "report_problems",
    "result_object",
    "selected_files",
    "wait_with_progress",
]

#: Every job completed (or, for commands that only look, nothing went wrong).
EXIT_COMPLETED = 0
#: Some job failed or was cancelled (``wait``: or did not finish in time).
EXIT_FAILED = 1
#: A usage or configuration error (argparse exits 2 as well): nothing, or not everything, was done.
EXIT_ERROR = 2

#: The columns of a job's row; ``cache_id``, ``job_id`` ... are its JSON fields.
JOB_COLUMNS = ["cache_id", "job_id", "backend", "host", "status", "exit", "name"]


class CliError(ClusterjobError):
    """The command line names what is not there (a script, a cache file, a cache id)."""


def print_columns(rows: Sequence[Sequence[str]]) -> None:
    """Rows as left-aligned columns, the first row as a header underlined with dashes."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [rows[0], ["-" * width for width in widths], *rows[1:]]
    for row in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def job_object(record: Mapping[str, Any], cache_file: str | None) -> dict[str, Any]:
    """The JSON object of one job, from its cache record (status None: not submitted yet)."""
    state = record.get("state")
    return {
        "cache_id": record.get("cache_id"),
        "job_id": record.get("job_id"),
        "name": record.get("jobname"),
        "backend": record.get("backend"),
        "remote": record.get("remote"),
        "state": state,
        "status": record.get("status") if state == "submitted" else None,
        "exit_code": record.get("exit_code"),
        "cache_file": cache_file,
    }


def result_object(result: AsyncResult) -> dict[str, Any]:
    """The JSON object of a result, from what it would write to its cache file."""
    return job_object(result.to_dict(), result.cache_file)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def job_row(job: Mapping[str, Any]) -> list[str]:
    """The table row of a job object (:data:`JOB_COLUMNS`); an intent shows its state."""
    status = job["status"] if job["status"] is not None else job["state"]
    return [
        _cell(job["cache_id"]),
        _cell(job["job_id"]),
        _cell(job["backend"]),
        _cell(job["remote"]),
        _cell(status),
        _cell(job["exit_code"]),
        _cell(job["name"]),
    ]


def print_jobs(jobs: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    """A JSON array of the job objects, or a table with one row per job (nothing for no job)."""
    if as_json:
        print(json.dumps(list(jobs), indent=2))
    elif jobs:
        print_columns([JOB_COLUMNS, *(job_row(job) for job in jobs)])


# -- which cache files ----------------------------------------------------------------


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-folder",
        metavar="DIR",
        help="the folder the jobs are cached in: every *.cache file in it, or the JOBs named",
    )
    parser.add_argument(
        "jobs",
        nargs="*",
        metavar="JOB",
        help="a cache file, or (with --cache-folder) a cache id",
    )


def selected_files(args: argparse.Namespace) -> list[str]:
    """The cache files the command line names; CliError for a name that is not there."""
    if not args.jobs:
        return folder_files(args.cache_folder)
    return [cache_file_of(job, args.cache_folder) for job in args.jobs]


def folder_files(folder: str) -> list[str]:
    path = os.path.expanduser(folder)
    if not os.path.isdir(path):
        raise CliError(
            f"cache folder {folder} does not exist: give the --cache-folder the jobs were "
            "submitted with"
        )
    return sorted(glob.glob(os.path.join(glob.escape(path), "*.cache")))


def cache_file_of(job: str, folder: str | None) -> str:
    """``job`` itself if it is a file, else the file of cache id ``job`` in ``folder``."""
    if os.path.isfile(job):
        return job
    if folder is None:
        raise CliError(
            f"{job}: no such cache file; name a cache file, or a cache id with --cache-folder DIR"
        )
    default = cache.cache_path(folder, "clusterjob", job)
    if os.path.isfile(default):
        return default
    for path in folder_files(folder):
        if os.path.basename(path).endswith(f".{job}.cache") and _cache_id_in(path) == job:
            return path
    raise CliError(
        f"no job with cache id {job!r} in {folder}; "
        f"`clusterjob cache list --cache-folder {folder}` lists them"
    )


def _cache_id_in(path: str) -> Any:
    """The cache id recorded in ``path`` (None if unreadable): a prefix may contain dots."""
    try:
        record = cache.read_record(path)
    except CacheError:
        return None
    return record.get("cache_id") if record else None


# -- reading them -----------------------------------------------------------------------


@dataclass
class CacheEntry:
    """One cache file: its record, or why it cannot be read."""

    path: str
    record: dict[str, Any] | None
    error: str | None = None


def read_entries(paths: Sequence[str]) -> list[CacheEntry]:
    entries = []
    for path in paths:
        try:
            record = cache.read_record(path)
        except CacheError as exc:
            entries.append(CacheEntry(path, None, str(exc)))
            continue
        if record is None:
            entries.append(CacheEntry(path, None, f"cache file {path} no longer exists"))
        else:
            entries.append(CacheEntry(path, record))
    return entries


def load_results(paths: Sequence[str]) -> tuple[list[AsyncResult], list[str]]:
    """The results cached in ``paths``, and a message for each file that holds none."""
    results, problems = [], []
    for path in paths:
        try:
            results.append(AsyncResult.from_cache(path))
        except ClusterjobError as exc:
            problems.append(str(exc))
    return results, problems


def report_problems(problems: Sequence[str], code: int) -> int:
    """Print each problem; the exit code is ``code``, or EXIT_ERROR if there were problems."""
    for problem in problems:
        print(f"clusterjob: error: {problem}", file=sys.stderr)
    return EXIT_ERROR if problems else code


def outcome(results: Sequence[AsyncResult], unfinished_ok: bool) -> int:
    """EXIT_FAILED if a job failed or was cancelled, or (unless ``unfinished_ok``) is unfinished."""
    statuses = [result._status for result in results]
    if any(status in (FAILED, CANCELLED) for status in statuses):
        return EXIT_FAILED
    if not unfinished_ok and any(status != COMPLETED for status in statuses):
        return EXIT_FAILED
    return EXIT_COMPLETED


def wait_with_progress(results: Sequence[AsyncResult], timeout: float | None) -> None:
    """Wait, with progress on stderr: redrawn on a terminal, plain lines elsewhere."""
    try:
        for _ in as_completed(results, timeout=timeout, progress=True):
            pass
    except TimeoutError as exc:
        print(f"clusterjob: {exc}", file=sys.stderr)
