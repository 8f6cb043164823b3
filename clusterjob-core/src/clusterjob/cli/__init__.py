"""The ``clusterjob`` command: submit, render, follow and cancel jobs, and read the cache.

``status``, ``wait``, ``cancel`` and ``cache`` work on cache files
(``<cache_folder>/*.cache``), so that a workflow started in a notebook or a
script can be followed and cancelled from a shell. Exit status: 0 all jobs
completed, 1 some failed or were cancelled, 2 usage or configuration error
(with the message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

from clusterjob.cli import backends, cache_commands, jobs, submit
from clusterjob.cli.common import EXIT_ERROR
from clusterjob.errors import ClusterjobError

__all__ = ["main"]

EPILOG = """\
exit status:
  0  all jobs completed (commands that only list or remove: done)
  1  some job failed or was cancelled (wait: or did not finish in time);
     backends: a plugin failed to load
  2  usage or configuration error: the message says what and where

example:
  $ clusterjob backends
  $ clusterjob submit --backend local --cache-folder c --cache-id hello --wait hello.sh
  $ clusterjob cache list --cache-folder c --json
  $ clusterjob status --cache-folder c

'clusterjob COMMAND --help' shows the options of a command and an example.
"""


DESCRIPTION = """\
Submit, render, follow and cancel batch jobs, and read the cache. status, wait, cancel
and cache work on cache files (<cache folder>/*.cache), so that a workflow started in a
notebook or a script can be followed and cancelled from a shell.
"""


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps paragraphs of prose; keeps indented ones (examples, tables) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = text.strip("\n").split("\n\n")
        return "\n\n".join(
            paragraph
            if any(line.startswith(" ") for line in paragraph.splitlines())
            else textwrap.fill(
                " ".join(paragraph.split()), width, initial_indent=indent, subsequent_indent=indent
            )
            for paragraph in paragraphs
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clusterjob", description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    submit.add_parsers(commands, _HelpFormatter)
    jobs.add_parsers(commands, _HelpFormatter)
    cache_commands.add_parsers(commands, _HelpFormatter)
    backends.add_parser(commands, _HelpFormatter)
    return parser


#: What a shell reports for a command that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command_parser = getattr(args, "command_parser", None)
    if command_parser is not None and not args.jobs and args.cache_folder is None:
        command_parser.error("name the jobs: --cache-folder DIR, or cache files")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (ClusterjobError, subprocess.CalledProcessError) as exc:
        if args.verbose:
            raise
        print(f"clusterjob: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader left (`clusterjob cache list --json | head`): stop quietly, as other
        # tools do, and keep Python from failing again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
