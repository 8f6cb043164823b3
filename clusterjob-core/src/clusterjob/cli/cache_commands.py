"""``clusterjob cache list|show|clear``: the cache files as they are, without asking a scheduler.

The status shown is the one last written to the cache (``clusterjob status``
refreshes it). An interrupted submission (an intent, which has no job ID yet)
is listed with the state ``submitting``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Sequence
from typing import Any

from clusterjob import cache
from clusterjob.cli.common import (
    EXIT_COMPLETED,
    CacheEntry,
    add_selection_arguments,
    job_object,
    print_jobs,
    read_entries,
    report_problems,
    selected_files,
)
from clusterjob.status import FINISHED_STATUS, str_status

__all__ = ["add_parsers"]

FINISHED_NAMES = frozenset(str_status[code] for code in FINISHED_STATUS)

LIST_EXAMPLE = """\
exit status: 0 listed, 2 usage error or an unreadable cache file (named on stderr).

example:
  $ clusterjob cache list --cache-folder c
  cache_id  job_id  backend  host  status     exit  name
  --------  ------  -------  ----  ---------  ----  -----
  hello     1       local    -     COMPLETED  0     hello
  $ clusterjob cache list --cache-folder c --json
  [{"cache_id": "hello", "job_id": "1", "name": "hello", "backend": "local", ...}]
"""

SHOW_EXAMPLE = """\
exit status: 0 shown, 2 usage error or an unreadable cache file.

example:
  $ clusterjob cache show --cache-folder c hello
  cache_file          c/clusterjob.hello.cache
  backend             local
  cache_id            hello
  exit_code           0
  job_id              1
  jobname             hello
  status              COMPLETED
  ...
"""

CLEAR_EXAMPLE = """\
Only jobs whose cached status is finished are removed (COMPLETED, CANCELLED,
FAILED); a job that may still run is kept, so it is never forgotten and
submitted twice. --all removes every file, unreadable ones too (such as a
pickle cache file of the original clusterjob).

exit status: 0 done, 2 usage error.

example:
  $ clusterjob cache clear --cache-folder c
  removed c/clusterjob.hello.cache (hello: COMPLETED)
  kept c/clusterjob.long.cache (long: RUNNING): it may still run; cancel it, refresh its
  status with `clusterjob status`, or remove it anyway with --all
"""


def _objects(entries: Sequence[CacheEntry]) -> list[dict[str, Any]]:
    return [job_object(entry.record, entry.path) for entry in entries if entry.record is not None]


def _errors(entries: Sequence[CacheEntry]) -> list[str]:
    return [entry.error for entry in entries if entry.error is not None]


def cmd_list(args: argparse.Namespace) -> int:
    entries = read_entries(selected_files(args))
    print_jobs(_objects(entries), args.json)
    return report_problems(_errors(entries), EXIT_COMPLETED)


def cmd_show(args: argparse.Namespace) -> int:
    entries = read_entries(selected_files(args))
    readable = [(entry.path, entry.record) for entry in entries if entry.record is not None]
    if args.json:
        shown = [{**job_object(record, path), "record": record} for path, record in readable]
        print(json.dumps(shown, indent=2))
    elif readable:
        blocks = [
            "\n".join(_field_lines({"cache_file": path, **record})) for path, record in readable
        ]
        print("\n\n".join(blocks))
    return report_problems(_errors(entries), EXIT_COMPLETED)


def _field_lines(fields: dict[str, Any]) -> list[str]:
    """``key  value`` lines; a multi-line value (a prologue) indented under its key."""
    width = max(len(key) for key in fields) + 2
    lines = []
    for key, value in fields.items():
        text = value if isinstance(value, str) else json.dumps(value)
        first, *rest = text.split("\n") if text else [""]
        lines.append(f"{key.ljust(width)}{first}".rstrip())
        lines.extend(" " * width + line for line in rest)
    return lines


def _why_kept(entry: CacheEntry) -> str | None:
    """None if ``entry`` may be removed without --all, else why not."""
    if entry.record is None:
        return f"unreadable ({entry.error}); remove it with --all"
    status = entry.record.get("status") if entry.record.get("state") == "submitted" else None
    if status in FINISHED_NAMES:
        return None
    return (
        "it may still run; cancel it, refresh its status with `clusterjob status`, "
        "or remove it anyway with --all"
    )


def _remove(path: str) -> None:
    """Remove a cache file under its lock (no submission is halfway through it), then the lock
    and its journal entries."""
    with cache.locked(path), contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".lock")
    cache.forget([path])


def _label(entry: CacheEntry) -> str:
    record = entry.record
    if record is None:
        return entry.path
    status = record.get("status") if record.get("state") == "submitted" else record.get("state")
    return f"{entry.path} ({record.get('jobname')}: {status})"


def cmd_clear(args: argparse.Namespace) -> int:
    entries = read_entries(selected_files(args))
    report = []
    for entry in entries:
        why_kept = None if args.all else _why_kept(entry)
        if why_kept is None:
            _remove(entry.path)
        if not args.json:
            print(
                f"removed {_label(entry)}"
                if why_kept is None
                else f"kept {_label(entry)}: {why_kept}"
            )
        base = job_object(entry.record, entry.path) if entry.record else {"cache_file": entry.path}
        report.append({**base, "removed": why_kept is None, "kept_because": why_kept})
    if args.json:
        print(json.dumps(report, indent=2))
    return EXIT_COMPLETED


def add_parsers(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    parent = commands.add_parser(
        "cache",
        help="list, show or clear cache files (without asking a scheduler)",
        description="The cache files of --cache-folder DIR (or those named), as they are: "
        "the status shown is the one last cached (clusterjob status refreshes it).",
        epilog="example:\n  $ clusterjob cache list --cache-folder c --json\n",
        formatter_class=formatter,
    )
    actions = parent.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    for name, func, summary, example in (
        ("list", cmd_list, "one line per cached job", LIST_EXAMPLE),
        ("show", cmd_show, "every field of the cache files", SHOW_EXAMPLE),
        ("clear", cmd_clear, "remove the cache files of finished jobs", CLEAR_EXAMPLE),
    ):
        parser = actions.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}.",
            epilog=example,
            formatter_class=formatter,
        )
        add_selection_arguments(parser)
        if name == "clear":
            parser.add_argument(
                "--all",
                action="store_true",
                help="remove every cache file, unfinished jobs and unreadable files too",
            )
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(func=func, command_parser=parser)
