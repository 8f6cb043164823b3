"""``clusterjob status``, ``wait`` and ``cancel``: the cached jobs, asked about in one poll.

The scheduler is asked once per backend and host for all the jobs named
(batched, as :func:`clusterjob.polling.poll` does), and each job's new status is
written back to its cache file.
"""

from __future__ import annotations

import argparse
from typing import Any

from clusterjob.cli.common import (
    EXIT_COMPLETED,
    add_selection_arguments,
    load_results,
    outcome,
    print_jobs,
    report_problems,
    result_object,
    selected_files,
    wait_with_progress,
)
from clusterjob.polling import poll, wait_deadline

__all__ = ["add_parsers"]

STATUS_EXAMPLE = """\
exit status: 0 no job failed or was cancelled (pending and running jobs are fine),
1 some job failed or was cancelled, 2 usage error or an unreadable cache file.

example:
  $ clusterjob status --cache-folder c
  cache_id  job_id  backend  host  status     exit  name
  --------  ------  -------  ----  ---------  ----  -----
  hello     1       local    -     COMPLETED  0     hello
  long      2       local    -     RUNNING    -     long
  $ clusterjob status --cache-folder c --json long | jq -r '.[].status'
  RUNNING
"""

WAIT_EXAMPLE = """\
Progress goes to stderr: one line redrawn in place on a terminal, a plain line per
change when stderr is a pipe or a file.

exit status: 0 all jobs completed, 1 some failed, were cancelled or did not finish
within --timeout, 2 usage error or an unreadable cache file.

example:
  $ clusterjob wait --cache-folder c --timeout 3600
  [clusterjob] 2/2 finished: 0 pending, 0 running, 2 completed, 0 failed
  cache_id  job_id  backend  host  status     exit  name
  --------  ------  -------  ----  ---------  ----  -----
  hello     1       local    -     COMPLETED  0     hello
  long      2       local    -     COMPLETED  0     long
"""

CANCEL_EXAMPLE = """\
Jobs that finished already are left alone.

exit status: 0 every job named is finished now, 2 usage error or an unreadable cache file.

example:
  $ clusterjob cancel --cache-folder c long
  cache_id  job_id  backend  host  status     exit  name
  --------  ------  -------  ----  ---------  ----  ----
  long      2       local    -     CANCELLED  -     long
"""


def cmd_status(args: argparse.Namespace) -> int:
    results, problems = load_results(selected_files(args))
    poll(results)
    print_jobs([result_object(r) for r in results], args.json)
    return report_problems(problems, outcome(results, unfinished_ok=True))


def cmd_wait(args: argparse.Namespace) -> int:
    results, problems = load_results(selected_files(args))
    wait_with_progress(results, args.timeout)
    print_jobs([result_object(r) for r in results], args.json)
    return report_problems(problems, outcome(results, unfinished_ok=False))


def cmd_cancel(args: argparse.Namespace) -> int:
    results, problems = load_results(selected_files(args))
    poll(results)  # one batched query, so that cancel() asks no one about a finished job
    for result in results:
        result.cancel()
    print_jobs([result_object(r) for r in results], args.json)
    return report_problems(problems, EXIT_COMPLETED)


def _seconds(text: str) -> float:
    """``--timeout``'s value: what :func:`clusterjob.polling.wait_deadline` accepts."""
    try:
        seconds = float(text)
        wait_deadline(seconds, 0.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds >= 0 (for example --timeout 3600)"
        ) from None
    return seconds


def add_parsers(commands: Any, formatter: type[argparse.HelpFormatter]) -> None:
    for name, func, summary, example in (
        (
            "status",
            cmd_status,
            "ask the scheduler about cached jobs; one line each",
            STATUS_EXAMPLE,
        ),
        ("wait", cmd_wait, "wait for cached jobs to finish, showing progress", WAIT_EXAMPLE),
        ("cancel", cmd_cancel, "cancel cached jobs", CANCEL_EXAMPLE),
    ):
        parser = commands.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}: the jobs of the cache files "
            "named, or of --cache-folder DIR (all of them, or those whose cache ids are named).",
            epilog=example,
            formatter_class=formatter,
        )
        add_selection_arguments(parser)
        if name == "wait":
            parser.add_argument(
                "--timeout",
                type=_seconds,
                default=None,
                metavar="SECONDS",
                help="stop waiting after SECONDS (default: when every job finished)",
            )
        parser.add_argument("--json", action="store_true", help="print the jobs as JSON")
        parser.set_defaults(func=func, command_parser=parser)
