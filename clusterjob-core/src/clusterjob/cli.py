"""Command line utilities: ``clusterjob backends|status|wait|cancel``.

``status``/``wait``/``cancel`` take cache files (``<cache_folder>/*.cache``),
so a workflow started in a notebook can be inspected from a shell.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from clusterjob.async_result import AsyncResult
from clusterjob.errors import ClusterjobError
from clusterjob.plugins import get_registry
from clusterjob.polling import poll, wait_all
from clusterjob.status import str_status

__all__ = ["main"]


def _load(paths: Sequence[str]) -> list[AsyncResult]:
    return [AsyncResult.from_cache(path) for path in paths]


def _print_table(results: Sequence[AsyncResult]) -> None:
    for result in results:
        backend = result.backend.name if result.backend else "?"
        print(f"{result.job_id}\t{backend}\t{str_status[result._status]}\t{result.jobname}\t{result.cache_file}")


def cmd_backends(args: argparse.Namespace) -> int:
    registry = get_registry()
    for name in sorted(registry.backends):
        print(f"{name}\t{registry.providers[name]}")
    for plugin, error in registry.failures.items():
        print(f"plugin {plugin} failed: {error}", file=sys.stderr)
    return 1 if registry.failures else 0


def cmd_status(args: argparse.Namespace) -> int:
    results = _load(args.cache_files)
    poll(results)
    _print_table(results)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    results = _load(args.cache_files)
    statuses = wait_all(results, timeout=args.timeout)
    _print_table(results)
    return 0 if all(s == 0 for s in statuses) else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    for result in _load(args.cache_files):
        result.cancel()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clusterjob", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list installed backends and plugins that failed to load").set_defaults(func=cmd_backends)
    for name, func, helptext in (
        ("status", cmd_status, "poll and print the status of cached jobs"),
        ("wait", cmd_wait, "wait for cached jobs; exit 1 unless all COMPLETED"),
        ("cancel", cmd_cancel, "cancel cached jobs"),
    ):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("cache_files", nargs="+", metavar="CACHE_FILE")
        if name == "wait":
            command.add_argument("--timeout", type=float, default=None)
        command.set_defaults(func=func)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ClusterjobError as exc:
        print(f"clusterjob: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
